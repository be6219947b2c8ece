// Wan-named checkpoints without a configuration, and conversion of Self-Forcing .pt files, against
// fixtures that torch wrote (test/fixtures/checkpoints/make_fixtures.py).
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SELF_FORCING_1_3B, type DitConfig } from '../../lib/model/config.js';
import { expectedShapes } from '../../lib/model/dit.js';
import { inferWanConfig, WAN_HEADS } from '../../lib/model/wan.js';
import { loadModel } from '../../lib/model/io.js';
import { convertCheckpoint } from '../../lib/model/convert.js';
import { generate } from '../../lib/model/sampling.js';
import { openSafetensors, readSafetensors } from '../../lib/io/safetensors.js';
import { encodePrompt } from '../../lib/model/weights.js';

const fixture = (name: string) => new URL(`../fixtures/checkpoints/${name}`, import.meta.url).pathname;
/** What the tiny fixture's weights cannot say: it is no released Wan size. */
const TINY: Partial<DitConfig> = { heads: 2, textLen: 8, latentHeight: 4, latentWidth: 4, chunks: 2 };

t.test('the configuration of Wan2.1 files follows from their shapes', async (t) => {
  const { name: _, ...sf } = SELF_FORCING_1_3B;
  const c = inferWanConfig(expectedShapes(SELF_FORCING_1_3B));
  t.same({ ...c, name: undefined }, { ...sf, name: undefined }, 'the 1.3B sizes: dim 1536, 30 blocks, 12 heads, FFN 8960, text 4096 x 512');
  t.equal(c.name, 'wan2.1-t2v-1.3b');
  const big = { ...SELF_FORCING_1_3B, dim: 5120, ffnDim: 13824, heads: 40, layers: 40 };
  const c14 = inferWanConfig(expectedShapes(big));
  t.match(c14, { dim: 5120, ffnDim: 13824, heads: 40, layers: 40, name: 'wan2.1-t2v-14b' });
  t.same(WAN_HEADS, { 1536: 12, 5120: 40 });
  // The tiny fixture: everything but the heads from its header alone.
  const f = await openSafetensors(fixture('tiny_wan.safetensors'));
  const shapes = new Map(f.entries.map((e) => [e.name, e.shape]));
  await f.close();
  t.throws(() => inferWanConfig(shapes), { name: 'RangeError', message: /heads of a Wan DiT of width 32 cannot be read.*give heads/ });
  t.match(inferWanConfig(shapes, { heads: 4 }), { dim: 32, ffnDim: 64, layers: 2, inChannels: 4, outChannels: 4, freqDim: 16, textDim: 24, heads: 4, textLen: 512, latentHeight: 60, latentWidth: 104 });
  t.throws(() => inferWanConfig(shapes, { heads: 2, dim: 64 }), { message: /dim 64 to match.*say 32/ });
  const prefixed = new Map([...shapes].map(([n, s]) => [`model.${n}`, s]));
  t.throws(() => inferWanConfig(prefixed, { heads: 2 }), { message: /no patch_embedding.weight.*qarvd convert/ });
});

t.test("Wan's own bf16 safetensors loads directly, with only what its tensors cannot say", async (t) => {
  await t.rejects(loadModel(fixture('tiny_wan.safetensors')), { name: 'RangeError', message: /give heads/ });
  const model = await loadModel(fixture('tiny_wan.safetensors'), TINY);
  t.match(model.config, { dim: 32, layers: 2, heads: 2, textLen: 8, name: 'wan-32x2' });
  // Widened exactly: the model's weights are the file's bf16 values.
  const { tensors } = await readSafetensors(fixture('tiny_wan.safetensors'));
  const bits = tensors['blocks.1.ffn.0.weight'].data as Uint16Array;
  const w = model.floatWeights('blocks.1.ffn.0').weight.data;
  t.ok(bits.every((b, i) => new Uint32Array(Float32Array.of(w[i]).buffer)[0] === (b << 16) >>> 0));
});

t.test('a Self-Forcing .pt converts to the same weights and the same video, bit for bit', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'qarvd-convert-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'tiny.safetensors');
  const progress: number[] = [];
  const r = await convertCheckpoint(fixture('tiny_self_forcing.pt'), out, { config: TINY, onProgress: (d) => progress.push(d) });
  t.match(r, { format: 'pytorch', key: 'generator_ema', prefix: 'model.', tensors: 69, dtypes: { bfloat16: 69 }, skipped: [] });
  t.equal(progress.at(-1), 69);
  // The converted file holds exactly the bytes of the safetensors that Python wrote (Wan's layout).
  const converted = await readSafetensors(out);
  const wan = await readSafetensors(fixture('tiny_wan.safetensors'));
  t.same(Object.keys(converted.tensors).sort(), Object.keys(wan.tensors).sort());
  for (const [name, x] of Object.entries(converted.tensors)) {
    t.equal(x.dtype, 'bfloat16');
    if (Buffer.compare(Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength), Buffer.from(wan.tensors[name].data.buffer, wan.tensors[name].data.byteOffset, wan.tensors[name].data.byteLength))) t.fail(`${name} differs`);
  }
  t.match(JSON.parse(converted.metadata['qarvd.config']), { heads: 2, dim: 32, textLen: 8 });
  t.same(JSON.parse(converted.metadata['qarvd.source']), { file: 'tiny_self_forcing.pt', key: 'generator_ema', prefix: 'model.' });
  // The same video from the converted file (no config needed now) and from Wan's layout.
  const a = await loadModel(out);
  const b = await loadModel(fixture('tiny_wan.safetensors'), TINY);
  const request = { prompt: encodePrompt('a red fox in the snow', a.config), seed: 3 };
  const va = await generate(a, request), vb = await generate(b, request);
  t.same(va.shape, [6, 4, 4, 4]);
  t.ok(Buffer.compare(Buffer.from(va.data.buffer), Buffer.from(vb.data.buffer)) === 0, 'bit for bit');
  // generator instead of generator_ema: other weights, another video.
  const g = path.join(dir, 'g.safetensors');
  t.equal((await convertCheckpoint(fixture('tiny_self_forcing.pt'), g, { key: 'generator', config: TINY })).key, 'generator');
  const vg = await generate(await loadModel(g), request);
  t.notOk(Buffer.compare(Buffer.from(vg.data.buffer), Buffer.from(va.data.buffer)) === 0);
});

t.test('conversion without the heads, of other files, and failures', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'qarvd-convert-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bare = path.join(dir, 'bare.safetensors');
  const r = await convertCheckpoint(fixture('tiny_self_forcing.pt'), bare);
  t.equal(r.config, null);
  t.match(r.note, /give heads.*--heads/);
  t.notOk((await readSafetensors(bare)).metadata['qarvd.config']);
  t.ok(await loadModel(bare, TINY), 'loads once the heads are given');
  // A safetensors input: Wan's layout gets its configuration.
  const fromWan = path.join(dir, 'wan.safetensors');
  t.match(await convertCheckpoint(fixture('tiny_wan.safetensors'), fromWan, { config: TINY }), { format: 'safetensors', prefix: '', tensors: 69 });
  // Not a Wan DiT: converted as it is, tensors of types qarvd does not store are listed.
  const views = path.join(dir, 'views.safetensors');
  const v = await convertCheckpoint(fixture('views.pt'), views);
  t.match(v, { key: 'state_dict', config: null, note: /not a Wan-named DiT/ });
  t.same(v.skipped, [{ name: 'long', why: 'int64 is not stored' }]);
  const expected = JSON.parse(readFileSync(fixture('views.json'), 'utf8'));
  const back = await readSafetensors(views);
  t.same([...back.tensors.transposed.data], expected.transposed.values, 'strided views written contiguous');
  t.same(back.tensors.transposed.shape, [6, 4]);
  // Failures leave nothing behind.
  const none = path.join(dir, 'none.safetensors');
  await t.rejects(convertCheckpoint(fixture('malicious.pt'), none), { name: 'PickleError', message: /posix\.system/ });
  await t.rejects(convertCheckpoint(fixture('tiny_self_forcing.pt'), none, { key: 'step' }), { name: 'CheckpointError' });
  await t.rejects(convertCheckpoint(fixture('tiny_self_forcing.pt'), none, { stripPrefix: 'module.' }), { message: /start with the prefix 'module.'/ });
  await t.rejects(convertCheckpoint(fixture('tiny_self_forcing.pt'), none, { config: { heads: 3 } }), { message: /multiple of config.heads/ });
  await t.rejects(convertCheckpoint(fixture('tiny_wan.safetensors'), none, { key: 'generator' }), { message: /drop --key/ });
  await t.rejects(convertCheckpoint(fixture('tiny_wan.safetensors'), fixture('tiny_wan.safetensors')), { message: /other than the input/ });
  t.same((await import('node:fs')).readdirSync(dir).filter((f) => f.startsWith('none') || f.startsWith('.none')), []);
});
