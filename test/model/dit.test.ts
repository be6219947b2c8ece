import t from 'tap';
import { Tensor, setIsa, backends, LinearF32 } from '../../lib/index.js';
import { CausalDit } from '../../lib/model/dit.js';
import { generate, sigmaOf } from '../../lib/model/sampling.js';
import { type DitConfig, EMBEDDED_TESTBED } from '../../lib/model/config.js';
import { encodePrompt, syntheticWeights } from '../../lib/model/weights.js';
import { Rng } from '../../lib/model/random.js';
import { refForward, refState } from './reference-dit.js';

const tiny: DitConfig = { ...EMBEDDED_TESTBED, name: 'tiny', inChannels: 4, outChannels: 4, dim: 24, ffnDim: 40, heads: 2, layers: 2, freqDim: 16, textDim: 8, textLen: 5, latentHeight: 4, latentWidth: 6, framesPerChunk: 2, chunks: 3 };

function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

for (const isa of ['scalar', backends().cpu.detectedIsa] as const) {
  t.test(`forward equals the plain TypeScript model, chunk after chunk (${isa})`, async (t) => {
    setIsa(isa);
    t.teardown(() => void setIsa('amx'));
    const { tensors } = syntheticWeights(tiny, { seed: 3 });
    const model = CausalDit.fromTensors(tiny, tensors);
    const prompt = encodePrompt('a small test prompt', tiny);
    const ctx = await model.embedContext(prompt);
    const state = model.createState();
    const ref = refState(tiny);
    const rng = new Rng(9);
    const shape = [2, 4, 4, 6];
    for (let chunk = 0; chunk < 3; chunk++) {
      // Two denoising passes (the second replaces the first's keys), then the commit pass.
      for (const [timestep, commit] of [[937.5, false], [625, false], [0, true]] as const) {
        const x = new Tensor('float32', shape, rng.fillNormal(new Float32Array(2 * 4 * 4 * 6)));
        const got = await model.forward(x, { timestep, context: ctx, state, commit });
        const want = refForward(tiny, tensors, x.data, 2, timestep, prompt.data, ref, commit);
        const err = maxRelErr(got.data, want);
        t.ok(err < 2e-4, `chunk ${chunk}, t=${timestep}: max relative error ${err.toExponential(2)}`);
      }
    }
  });
}

t.test('generation: the same seed gives the same video bit for bit; another seed another video', async (t) => {
  const model = CausalDit.synthetic(tiny, { seed: 1 });
  const a = await generate(model, { prompt: 'waves', seed: 5 });
  const b = await generate(model, { prompt: 'waves', seed: 5 });
  const c = await generate(model, { prompt: 'waves', seed: 6 });
  t.same(a.shape, [6, 4, 4, 6]);
  t.ok(a.data.every((v, i) => Object.is(v, b.data[i])), 'identical');
  t.notOk(a.data.every((v, i) => v === c.data[i]), 'different seed, different video');
  t.ok(a.data.every(Number.isFinite));
});

t.test('generation drives passes in Self-Forcing order and reports them', async (t) => {
  const model = CausalDit.synthetic(tiny, { seed: 1 });
  const seen: string[] = [];
  let progress = 0;
  await generate(model, {
    prompt: 'waves', seed: 1, chunks: 2,
    beforePass: (p) => void seen.push(`${p.chunk}:${p.kind}:${p.timestep}`),
    onProgress: (done, total) => { progress = done; t.equal(total, 10); },
  });
  t.same(seen, ['0:denoise:1000', '0:denoise:750', '0:denoise:500', '0:denoise:250', '0:cache:0', '1:denoise:1000', '1:denoise:750', '1:denoise:500', '1:denoise:250', '1:cache:0']);
  t.equal(progress, 10);
  t.equal(sigmaOf(1000), 1);
  t.equal(sigmaOf(500), Math.fround(2.5 / 3), 'float32, as the original schedule');
  t.equal(sigmaOf(0), 0);
});

t.test('the KV cache carries a change in chunk 0 into chunk 1', async (t) => {
  // A layer perturbed only while chunk 0 is generated (as sensitivity measurement does) changes
  // chunk 1 too, although chunk 1 runs with the original weights: through the keys/values of chunk 0.
  const { tensors } = syntheticWeights(tiny, { seed: 1 });
  const model = CausalDit.fromTensors(tiny, tensors);
  const clean = await generate(model, { prompt: 'waves', seed: 5, chunks: 2 });
  const name = 'blocks.0.ffn.0';
  const original = model.linear(name);
  const w = tensors[`${name}.weight`];
  const perturbed = LinearF32.fromFloat(new Tensor('float32', w.shape, w.data.map((v) => v * 1.05)), { bias: tensors[`${name}.bias`] });
  const swapped = await generate(model, {
    prompt: 'waves', seed: 5, chunks: 2,
    beforePass: (p) => model.setLinear(name, p.chunk === 0 ? perturbed : original),
  });
  const frame = 4 * 4 * 6 * 2;
  const diff = (from: number, to: number) => {
    let s = 0;
    for (let i = from; i < to; i++) s += (clean.data[i] - swapped.data[i]) ** 2;
    return s;
  };
  t.ok(diff(0, frame) > 0, 'chunk 0 changed');
  t.ok(diff(frame, 2 * frame) > 0, 'chunk 1 changed through the cache');
  model.setLinear(name, original);
  const again = await generate(model, { prompt: 'waves', seed: 5, chunks: 2 });
  t.ok(again.data.every((v, i) => v === clean.data[i]), 'restoring the layer restores the video');
});

t.test('bad input', async (t) => {
  const model = CausalDit.synthetic(tiny, { seed: 1 });
  const state = model.createState();
  const ctx = await model.embedContext(encodePrompt('x', tiny));
  const x = Tensor.zeros('float32', [2, 4, 4, 6]);
  await t.rejects(model.forward(Tensor.zeros('float32', [2, 3, 4, 6]), { timestep: 0, context: ctx, state }), { name: 'RangeError', message: /x of shape/ });
  await t.rejects(model.forward(x, { timestep: 2000, context: ctx, state }), { name: 'RangeError', message: /timestep/ });
  await t.rejects(model.forward(x, { timestep: 0, context: ctx, state: {} as never }), { name: 'TypeError', message: /state/ });
  await t.rejects(model.embedContext(Tensor.zeros('float32', [5, 7])), { name: 'RangeError', message: /context/ });
  t.throws(() => model.linear('blocks.9.ffn.0'), { name: 'RangeError' });
  t.throws(() => model.setLinear('head.head', model.linear('head.head')), { name: 'RangeError', message: /full precision/ });
  t.throws(() => model.setLinear('blocks.0.ffn.0', model.linear('blocks.0.ffn.2')), { name: 'RangeError', message: /features/ });
  const { tensors } = syntheticWeights(tiny, { seed: 1 });
  delete tensors['blocks.1.norm3.bias'];
  t.throws(() => CausalDit.fromTensors(tiny, tensors), { name: 'RangeError', message: /blocks\.1\.norm3\.bias/ });
  await t.rejects(generate(model, { prompt: 3 as never, seed: 1 }), { name: 'TypeError', message: /prompt/ });
  await t.rejects(generate(model, { prompt: 'x', seed: -1 }), { name: 'RangeError', message: /seed/ });
  // Filling the cache beyond its room is an error, not a crash.
  const small = model.createState(2);
  await model.forward(x, { timestep: 0, context: ctx, state: small, commit: true });
  await t.rejects(model.forward(x, { timestep: 0, context: ctx, state: small }), { name: 'RangeError', message: /KV cache/ });
});

t.test('self-forcing-1.3b sizes: one block at the real widths runs a chunk', async (t) => {
  // The real configuration with a single block (30 would take minutes on 2 CPU cores; the GPU
  // benchmark runs all of them): 3 frames of 60 x 104 latents = 4680 tokens, dim 1536, 12 heads.
  const { SELF_FORCING_1_3B } = await import('../../lib/model/config.js');
  const config = { ...SELF_FORCING_1_3B, layers: 1, textLen: 32 };
  const model = CausalDit.synthetic(config, { seed: 0 });
  t.same(model.floatWeights('blocks.0.ffn.0').weight.shape, [8960, 1536]);
  const state = model.createState(3);
  const ctx = await model.embedContext(encodePrompt('a red fox', config));
  const x = new Tensor('float32', [3, 16, 60, 104], new Rng(1).fillNormal(new Float32Array(3 * 16 * 60 * 104)));
  const flow = await model.forward(x, { timestep: 1000, context: ctx, state, commit: true });
  t.same(flow.shape, [3, 16, 60, 104]);
  t.ok(flow.data.every(Number.isFinite));
  t.equal(state.committedTokens, 4680);
});
