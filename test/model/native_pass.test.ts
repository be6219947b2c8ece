// The native pass (one job per forward) against the op-by-op forward it replaces: the same floats,
// bit for bit, for FP32, W8A8, W4A8 and dual-scale models, across chunks (KV cache, commits, the
// cross-attention keys computed once), and the fallback for layers that have no native form.
import t from 'tap';
import { DualScaleLinear, ForwardProfile, QuantizedLinear, Tensor, type Linear } from '../../lib/index.js';
import { CausalDit } from '../../lib/model/dit.js';
import { type DitConfig, EMBEDDED_TESTBED } from '../../lib/model/config.js';
import { encodePrompt } from '../../lib/model/weights.js';
import { Rng } from '../../lib/model/random.js';
import { generate } from '../../lib/model/sampling.js';

const tiny: DitConfig = { ...EMBEDDED_TESTBED, name: 'tiny', inChannels: 4, outChannels: 4, dim: 32, ffnDim: 48, heads: 2, layers: 2, freqDim: 16, textDim: 8, textLen: 5, latentHeight: 4, latentWidth: 6, framesPerChunk: 2, chunks: 3 };

type Variant = (name: string, w: Tensor<'float32'>, bias: Tensor<'float32'>) => Linear;

const variants: Record<string, Variant | null> = {
  fp32: null,
  w8a8: (_n, w, bias) => QuantizedLinear.fromFloat(w, { bias, weight: { dtype: 'int8' }, activation: { type: 'dynamic' } }),
  'w4a8 group 16, static uint8': (_n, w, bias) =>
    QuantizedLinear.fromFloat(w, { bias, weight: { dtype: 'int4', groupSize: 16, scheme: 'asymmetric' }, activation: { type: 'static', dtype: 'uint8', scale: 0.05, zeroPoint: 128 } }),
  'dual-scale 8 + 4': (_n, w, bias) =>
    DualScaleLinear.fromFloat(w, { bias, outlierIdx: [1, 5, 9], outlier: { weight: { dtype: 'int8' } }, normal: { weight: { dtype: 'int4' } } }),
};

function build(variant: Variant | null): CausalDit {
  const model = CausalDit.synthetic(tiny, { seed: 4 });
  if (variant) for (const name of model.blockLinearNames) {
    const { weight, bias } = model.floatWeights(name);
    model.setLinear(name, variant(name, weight, bias));
  }
  return model;
}

// Runs 3 chunks of (two denoising passes, a commit pass) with one execution mode; returns every
// output, the caches and the cross-attention keys.
async function run(model: CausalDit, execution: 'native' | 'ops' | 'auto') {
  const ctx = await model.embedContext(encodePrompt('a test prompt', tiny));
  const state = model.createState();
  const rng = new Rng(7);
  const outs: Float32Array[] = [];
  for (let chunk = 0; chunk < 3; chunk++) {
    for (const [timestep, commit] of [[1000, false], [500, false], [0, true]] as const) {
      const x = new Tensor('float32', [2, 4, 4, 6], rng.fillNormal(new Float32Array(2 * 4 * 4 * 6)));
      outs.push((await model.forward(x, { timestep, context: ctx, state, commit, execution })).data);
    }
  }
  return { outs, state };
}

function identical(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

for (const [label, variant] of Object.entries(variants)) {
  t.test(`${label}: the native pass gives the op-by-op forward's floats, bit for bit`, async (t) => {
    const model = build(variant);
    const ops = await run(model, 'ops');
    const nat = await run(model, 'native');
    t.equal(nat.outs.length, 9);
    nat.outs.forEach((o, i) => t.ok(identical(o, ops.outs[i]), `pass ${i}: identical`));
    t.equal(nat.state.committedTokens, ops.state.committedTokens, 'same committed tokens');
    for (let b = 0; b < tiny.layers; b++) {
      t.equal(nat.state.caches[b].length, ops.state.caches[b].length, `block ${b}: cache length`);
      t.ok(identical(nat.state.caches[b].keys.data, ops.state.caches[b].keys.data), `block ${b}: cached keys`);
      t.ok(identical(nat.state.caches[b].values.data, ops.state.caches[b].values.data), `block ${b}: cached values`);
      t.ok(identical(nat.state.crossKv[b]!.k.data, ops.state.crossKv[b]!.k.data), `block ${b}: cross-attention keys`);
    }
  });
}

t.test('a model with a layer that has no native form runs op by op; execution "native" then refuses', async (t) => {
  const model = build(null);
  const inner = model.linear('blocks.1.ffn.0');
  // A user's own Linear (here a wrapper that counts its calls).
  let calls = 0;
  const wrapper: Linear = {
    inFeatures: inner.inFeatures,
    outFeatures: inner.outFeatures,
    weightBytes: inner.weightBytes,
    bias: inner.bias,
    forward: (x) => (calls++, inner.forward(x)),
    forwardSync: (x) => (calls++, inner.forwardSync(x)),
  };
  const reference = await run(model, 'ops');
  model.setLinear('blocks.1.ffn.0', wrapper);
  const auto = await run(model, 'auto');
  t.equal(calls, 9, 'the wrapper ran in every pass');
  auto.outs.forEach((o, i) => t.ok(identical(o, reference.outs[i]), `pass ${i}: same result`));
  const ctx = await model.embedContext(encodePrompt('x', tiny));
  const x = new Tensor('float32', [2, 4, 4, 6], new Float32Array(2 * 4 * 4 * 6));
  await t.rejects(model.forward(x, { timestep: 0, context: ctx, state: model.createState(), execution: 'native' }), TypeError);
  await t.rejects(model.forward(x, { timestep: 0, context: ctx, state: model.createState(), execution: 'fast' as never }), RangeError);
  // Emulated quantized layers run op by op too (the native pass runs the fast kernels only).
  const q = build(variants.w8a8);
  const { weight, bias } = build(null).floatWeights('blocks.0.ffn.2');
  q.setLinear('blocks.0.ffn.2', QuantizedLinear.fromFloat(weight, { bias, mode: 'emulated' }));
  await t.rejects(q.forward(x, { timestep: 0, context: ctx, state: q.createState(), execution: 'native' }), TypeError);
});

t.test('a profile splits the wall time of the passes into kernels and the rest', async (t) => {
  for (const execution of ['native', 'ops'] as const) {
    const model = build(variants.w8a8);
    const ctx = await model.embedContext(encodePrompt('p', tiny));
    const state = model.createState();
    state.profile = new ForwardProfile();
    const x = new Tensor('float32', [2, 4, 4, 6], new Rng(1).fillNormal(new Float32Array(2 * 4 * 4 * 6)));
    for (let i = 0; i < 4; i++) await model.forward(x, { timestep: 500, context: ctx, state, execution });
    const p = state.profile;
    t.equal(p.passes, 4, `${execution}: passes counted`);
    t.ok(p.linears > 0 && p.attention > 0 && p.norms > 0 && p.activations > 0, `${execution}: every kernel category timed`);
    const parts = p.linears + p.attention + p.norms + p.activations + p.copies;
    t.ok(parts <= p.total * (1 + 1e-9), `${execution}: the categories fit in the wall time`);
    const s = p.summary();
    t.ok(Math.abs(Object.values(s).reduce((a, b) => a + b, 0) - 1) < 1e-9, `${execution}: fractions sum to 1`);
  }
});

t.test('generate({ profile }) adds every pass of the video to the profile, and leaves the video unchanged', async (t) => {
  const model = build(variants.w8a8);
  const profile = new ForwardProfile();
  const plain = await generate(model, { prompt: 'p', seed: 3, timesteps: [1000, 500] });
  const profiled = await generate(model, { prompt: 'p', seed: 3, timesteps: [1000, 500], profile });
  t.equal(profile.passes, tiny.chunks * (2 + 1), 'two denoising passes and a cache pass per chunk');
  t.ok(profile.linears > 0 && profile.attention > 0 && profile.total >= profile.linears + profile.attention);
  t.same(Array.from(profiled.data), Array.from(plain.data));
  await t.rejects(generate(model, { prompt: 'p', seed: 3, profile: { linears: 0 } as unknown as ForwardProfile }), /Expected a ForwardProfile for options\.profile/);
});

t.test('the event loop stays free while a native pass runs', async (t) => {
  const model = CausalDit.synthetic({ ...EMBEDDED_TESTBED, layers: 8 }, { seed: 0 });
  const ctx = await model.embedContext(encodePrompt('p', model.config));
  const c = model.config;
  const x = new Tensor('float32', [3, c.inChannels, c.latentHeight, c.latentWidth], new Rng(2).fillNormal(new Float32Array(3 * c.inChannels * c.latentHeight * c.latentWidth)));
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const t0 = performance.now();
  await model.forward(x, { timestep: 1000, context: ctx, state: model.createState(), execution: 'native' });
  const ms = performance.now() - t0;
  clearInterval(timer);
  t.ok(ms < 20 || ticks > 0, `timers ran during a ${ms.toFixed(0)} ms pass (${ticks} ticks)`);
});
