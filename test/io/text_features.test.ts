// Prompts as text-encoder features: the file layouts, the zero padding of short contexts (against
// the plain TypeScript model of Wan's definition, which reads a full textLen context), and the CLI.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readTextFeatures } from '../../lib/io/text_features.js';
import { writeSafetensors } from '../../lib/io/safetensors.js';
import { readVideos } from '../../lib/io/videos.js';
import { Tensor } from '../../lib/tensor/tensor.js';
import { toFloat32 } from '../../lib/tensor/convert.js';
import { CausalDit } from '../../lib/model/dit.js';
import { EMBEDDED_DEFAULT } from '../../lib/model/config.js';
import { generate } from '../../lib/model/sampling.js';
import { saveSyntheticModel } from '../../lib/model/io.js';
import { syntheticWeights } from '../../lib/model/weights.js';
import { Rng } from '../../lib/model/random.js';
import { small } from '../method/fixtures.js';
import { refForward, refState } from '../model/reference-dit.js';
import { run } from '../helpers/cli.js';

const dir = mkdtempSync(path.join(tmpdir(), 'qarvd-features-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const f = (name: string) => path.join(dir, name);
const normal = (shape: number[], seed: number) => new Tensor('float32', shape, new Rng(seed).fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1))));
/** float32 to bfloat16 by truncation (exactly representable values, so the widened result is known). */
const bf16 = (x: Tensor<'float32'>) => new Tensor('bfloat16', x.shape, Uint16Array.from(new Uint32Array(x.data.buffer, x.data.byteOffset, x.size), (u) => u >>> 16));

t.test('both layouts, in their order, bf16 kept; mismatches are clear errors', async (t) => {
  const a = normal([3, small.textDim], 1), b = normal([5, small.textDim], 2);
  await writeSafetensors(f('per-prompt.safetensors'), { 'waves at dusk': a, 'a red fox': bf16(b) });
  const byName = await readTextFeatures(f('per-prompt.safetensors'), small);
  t.same(byName.prompts.map((p) => p.prompt), ['a red fox', 'waves at dusk'], 'name order without a list');
  t.equal(byName.prompts[0].context.dtype, 'bfloat16');
  await writeSafetensors(f('listed.safetensors'), { 'waves at dusk': a, 'a red fox': bf16(b) }, { prompts: JSON.stringify(['waves at dusk', 'a red fox']) });
  const listed = await readTextFeatures(f('listed.safetensors'), small);
  t.same(listed.prompts.map((p) => p.prompt), ['waves at dusk', 'a red fox'], 'the listed order');
  t.same(listed.prompts[0].context.data, a.data);
  t.equal(listed.digest, (await readTextFeatures(f('listed.safetensors'))).digest);
  t.not(listed.digest, byName.digest, 'another order is other features');

  const stacked = normal([2, 4, small.textDim], 3);
  await writeSafetensors(f('stacked.safetensors'), { features: stacked }, { prompts: JSON.stringify(['one', 'two']) });
  const s = await readTextFeatures(f('stacked.safetensors'), small);
  t.same(s.prompts.map((p) => p.prompt), ['one', 'two']);
  t.same(s.prompts[1].context.shape, [4, small.textDim]);
  t.same([...s.prompts[1].context.data], [...stacked.data.subarray(4 * small.textDim)]);

  const bad: [string, Record<string, Tensor>, Record<string, string>, RegExp][] = [
    ['no-list', { features: stacked }, {}, /needs the 2 prompts as a JSON list under "prompts"/],
    ['short-list', { features: stacked }, { prompts: '["one"]' }, /holds 2 contexts but .* lists 1/],
    ['not-json', { a }, { prompts: 'one, two' }, /not JSON/],
    ['unlisted', { a, b }, { prompts: '["a"]' }, /1 tensor\(s\) are not in/],
    ['missing', { a }, { prompts: '["a", "b"]' }, /lists "b", which has no tensor/],
    ['wide', { p: normal([2, small.textDim + 1], 4) }, {}, /9 wide but the model's text encoder width \(textDim\) is 8/],
    ['long', { p: normal([small.textLen + 1, small.textDim], 4) }, {}, /6 tokens, more than the model's textLen \(5\)/],
    ['ints', { p: Tensor.zeros('int8', [2, small.textDim]) }, {}, /int8; features are float32/],
    ['rank', { p: normal([small.textDim], 4) }, {}, /one \[tokens, dim\] tensor per prompt/],
  ];
  for (const [name, tensors, metadata, message] of bad) {
    await writeSafetensors(f(`${name}.safetensors`), tensors, metadata);
    await t.rejects(readTextFeatures(f(`${name}.safetensors`), small), { name: 'RangeError', message }, name);
  }
});

t.test('a context shorter than textLen is zero-padded before text_embedding, as Wan does', async (t) => {
  const { tensors } = syntheticWeights(small, { seed: 5 });
  const model = CausalDit.fromTensors(small, tensors);
  const short = normal([3, small.textDim], 6);
  const padded = new Float32Array(small.textLen * small.textDim);
  padded.set(short.data);
  // Wan's definition (the reference model reads textLen rows) with the padded context.
  const x = normal([small.framesPerChunk, small.inChannels, small.latentHeight, small.latentWidth], 7);
  const want = refForward(small, tensors, x.data, small.framesPerChunk, 937.5, padded, refState(small), false);
  const got = await model.forward(x, { timestep: 937.5, context: await model.embedContext(short), state: model.createState() });
  let err = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got.data[i] - want[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  t.ok(err / scale < 2e-4, `max relative error ${(err / scale).toExponential(2)} against Wan's padded context`);
  t.same((await model.embedContext(short)).data, (await model.embedContext(new Tensor('float32', [small.textLen, small.textDim], padded))).data, 'the same as padding by hand');
  // bf16 features are widened exactly; a PromptFeatures prompt generates what its context does.
  const half = bf16(short);
  t.same((await model.embedContext(half)).data, (await model.embedContext(toFloat32(half))).data);
  const v1 = await generate(model, { prompt: { prompt: 'x', context: half }, seed: 2, chunks: 1 });
  const v2 = await generate(model, { prompt: toFloat32(half), seed: 2, chunks: 1 });
  t.same(v1.data, v2.data);
  await t.rejects(model.embedContext(normal([small.textLen + 1, small.textDim], 1)), { name: 'RangeError', message: /at most textLen = 5 tokens but received 6/ });
});

t.test('generate, sensitivity, quantize and eval take --features', async (t) => {
  const model = f('small.safetensors');
  await saveSyntheticModel(model, small, 3);
  await writeSafetensors(f('prompts.safetensors'), { features: normal([2, 4, small.textDim], 8) }, { prompts: JSON.stringify(['a red fox', 'waves']) });
  const g = await run(['generate', '--model', model, '--features', f('prompts.safetensors'), '--chunks', '1', '--out', f('gen'), '--no-frames', '--quiet']);
  t.equal(g.code, 0, g.err);
  const set = await readVideos(path.join(f('gen'), 'videos.safetensors'));
  t.same(set.videos.map((v) => v.prompt), ['a red fox', 'waves']);
  t.match(set.info.features, { file: 'prompts.safetensors', digest: /^[0-9a-f]{64}$/ });
  const direct = await generate(CausalDit.synthetic(small, { seed: 3 }), { prompt: (await readTextFeatures(f('prompts.safetensors'))).prompts[1], seed: 1, chunks: 1 });
  t.same(set.videos[1].latents.data, direct.data, 'video 1: the second context, seed 1');

  // The same names from text prompts are other videos: eval refuses to pair them.
  t.equal((await run(['generate', '--model', model, '--prompt', 'a red fox', '--prompt', 'waves', '--chunks', '1', '--out', f('text'), '--no-frames', '--quiet'])).code, 0);
  const mixed = await run(['eval', path.join(f('gen'), 'videos.safetensors'), path.join(f('text'), 'videos.safetensors')]);
  t.equal(mixed.code, 1);
  t.match(mixed.err, /generated from text features [0-9a-f]{12} but .* from text prompts/);
  const e = await run(['eval', path.join(f('gen'), 'videos.safetensors'), path.join(f('gen'), 'videos.safetensors'), '--features', f('prompts.safetensors')]);
  t.equal(e.code, 0, e.err);
  const other = await run(['eval', path.join(f('text'), 'videos.safetensors'), path.join(f('text'), 'videos.safetensors'), '--features', f('prompts.safetensors')]);
  t.match(other.err, /from text prompts, not from/);

  const s = await run(['sensitivity', '--model', model, '--features', f('prompts.safetensors'), '--chunks', '2', '--quiet']);
  t.equal(s.code, 0, s.err);
  t.match(JSON.parse(s.out), { prompts: ['a red fox', 'waves'], features: { file: 'prompts.safetensors' } });
  const q = await run(['quantize', '--model', model, '--features', f('prompts.safetensors'), '--bins', '256', '--stats-out', f('stats.json'), '--quiet']);
  t.equal(q.code, 0, q.err);
  t.match(JSON.parse(q.out), { prompts: 2 });
  const both = await run(['generate', '--model', model, '--features', f('prompts.safetensors'), '--prompt', 'x']);
  t.match(both.err, /give --features or --prompt\/--prompts, not both/);
  // Without --model: the embedded default, whose text encoder width is not the features' 8.
  const wide = await run(['generate', '--features', f('prompts.safetensors'), '--quiet']);
  t.match(wide.err, new RegExp(`8 wide but the model's text encoder width \\(textDim\\) is ${EMBEDDED_DEFAULT.textDim}`));
});
