// The reference model on CPU: generating the embedded default with FP32 layers against W8A8 and
// W4A8 layers (dynamic per-token int8 activations), with float32, bf16 or int8 attention and float32,
// bf16 or int8 KV caches, side by side in one run, and the weight and cache bytes.
import { CausalDit, EMBEDDED_TESTBED, SELF_FORCING_1_3B, ForwardProfile, QuantizedLinear, generate, backends, videoMetrics, encodePrompt, Tensor, Rng } from '../dist/index.js';

// `node bench/model.mjs --1.3b`: the real Self-Forcing 1.3B widths (dim 1536, 12 heads, FFN 8960,
// 4680 tokens a chunk) on 2 blocks of synthetic weights, one chunk's pass against a 4-chunk cache
// (3 committed chunks of random keys and values, then the chunk itself: 18720 keys), FP32 against
// W8A8 (dynamic per-token int8 activations), with float32, bf16 or int8 attention, with the profile
// of each pass. (30 blocks would need about 17 GB of KV cache and weights; a block's time is what the
// ratios are about.)
if (process.argv.includes('--1.3b')) {
  const c = { ...SELF_FORCING_1_3B, name: 'self-forcing-1.3b-2-blocks', layers: 2 };
  const tokens = 3 * (c.latentHeight / 2) * (c.latentWidth / 2);
  let t0 = performance.now();
  const fp = CausalDit.synthetic(c, { seed: 0 });
  const w8 = CausalDit.synthetic(c, { seed: 0 });
  for (const name of w8.blockLinearNames) {
    const { weight: w, bias } = fp.floatWeights(name);
    w8.setLinear(name, QuantizedLinear.fromFloat(w, { bias, weight: { dtype: 'int8', scheme: 'symmetric' }, activation: { type: 'dynamic' } }));
  }
  console.log(`self-forcing-1.3b widths, 2 blocks (${backends().cpu.isa}, ${backends().cpu.threads} threads): built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const ctx = await fp.embedContext(encodePrompt('a red fox running through fresh snow at dawn', c));
  const rng = new Rng(1);
  const x = new Tensor('float32', [3, c.inChannels, c.latentHeight, c.latentWidth], rng.fillNormal(new Float32Array(3 * c.inChannels * c.latentHeight * c.latentWidth)));
  const committed = 3 * tokens;
  const kv = new Tensor('float32', [committed, c.dim], rng.fillNormal(new Float32Array(committed * c.dim)));
  for (const [name, model, attention] of [['FP32', fp, 'fp32'], ['FP32, bf16 attention', fp, 'bf16'], ['FP32, int8 attention', fp, 'int8'], ['W8A8', w8, 'fp32'], ['W8A8, int8 attention', w8, 'int8']]) {
    const state = model.createState(12);
    for (const cache of state.caches) cache.append(kv, kv);
    state.committedTokens = committed;
    state.committedFrames = 9;
    await model.forward(x, { timestep: 1000, context: ctx, state, attention }); // the context's keys, warm caches
    state.profile = new ForwardProfile();
    t0 = performance.now();
    await model.forward(x, { timestep: 750, context: ctx, state, attention });
    const seconds = (performance.now() - t0) / 1000;
    const p = state.profile;
    console.log(`  ${name}: one chunk ${seconds.toFixed(2)} s (per block ${(seconds / c.layers).toFixed(2)} s): linears ${p.linears.toFixed(2)} s, attention ${p.attention.toFixed(2)} s, norms ${p.norms.toFixed(2)} s, rest ${p.rest.toFixed(2)} s`);
  }
  process.exit(0);
}

const seeds = [1];
const prompt = 'a red fox running through fresh snow at dawn';

function quantized(model, weight) {
  const q = CausalDit.synthetic(EMBEDDED_TESTBED, { seed: 0 });
  for (const name of q.blockLinearNames) {
    const { weight: w, bias } = model.floatWeights(name);
    q.setLinear(name, QuantizedLinear.fromFloat(w, { bias, weight, activation: { type: 'dynamic' } }));
  }
  return q;
}

// One timed video; `execution` 'ops' runs the op-by-op forward (the reference), 'native' one job per
// pass; `generation` the attention precision and KV cache storage. The profile of the passes comes back with it.
async function timeVideo(model, execution, generation = {}) {
  const profile = new ForwardProfile();
  const forward = model.forward.bind(model);
  model.forward = (x, o) => {
    o.state.profile = profile;
    return forward(x, { ...o, execution });
  };
  try {
    const t0 = performance.now();
    const video = await generate(model, { prompt, seed: seeds[0], ...generation });
    return { seconds: (performance.now() - t0) / 1000, video, profile };
  } finally {
    model.forward = forward;
  }
}

const fp = CausalDit.synthetic(EMBEDDED_TESTBED, { seed: 0 });
const w8 = quantized(fp, { dtype: 'int8', scheme: 'symmetric' });
const w4 = quantized(fp, { dtype: 'int4', scheme: 'symmetric' });
// [name, model, execution, generation]: the native pass, and the op-by-op forward for comparison.
const variants = [
  ['FP32', fp, 'native'],
  ['W8A8', w8, 'native'],
  ['W4A8 (per channel)', w4, 'native'],
  ['FP32, op by op', fp, 'ops'],
  ['W8A8, op by op', w8, 'ops'],
  ['FP32, bf16 attention', fp, 'native', { attention: 'bf16' }],
  ['FP32, int8 attention', fp, 'native', { attention: 'int8' }],
  ['FP32, bf16 KV cache', fp, 'native', { kvCache: 'bf16' }],
  ['FP32, int8 KV cache', fp, 'native', { kvCache: 'int8' }],
  ['W8A8, int8 attention', w8, 'native', { attention: 'int8' }],
  ['W8A8, int8 attn + cache', w8, 'native', { attention: 'int8', kvCache: 'int8' }],
  ['W4A8, int8 attention', w4, 'native', { attention: 'int8' }],
];
console.log(`embedded testbed: ${EMBEDDED_TESTBED.layers} blocks, dim ${EMBEDDED_TESTBED.dim}, ${EMBEDDED_TESTBED.chunks} chunks of ${EMBEDDED_TESTBED.framesPerChunk} frames; ${backends().cpu.isa}, ${backends().cpu.threads} threads`);
// Interleave rounds so that background load hits every variant alike.
const results = new Map(variants.map(([n]) => [n, { seconds: Infinity }]));
for (let round = 0; round < 3; round++) {
  for (const [name, model, execution, generation] of variants) {
    const r = await timeVideo(model, execution, generation);
    const prev = results.get(name);
    if (r.seconds < prev.seconds) results.set(name, r);
  }
}
const base = results.get('FP32');
const cacheBytes = (kvCache = 'fp32') => fp.createState(undefined, { kvCache }).cacheBytes;
console.log('variant                   video s   chunk ms  speed-up   block-linear MB  ratio   model MB  ratio   KV cache MB  ratio   PSNR vs FP32');
for (const [name, model, , generation] of variants) {
  const r = results.get(name);
  const psnr = name === 'FP32' ? '' : videoMetrics(r.video, base.video).psnr.toFixed(2) + ' dB';
  const cache = cacheBytes(generation?.kvCache);
  console.log(
    `${name.padEnd(25)} ${r.seconds.toFixed(3).padStart(7)}  ${((r.seconds / EMBEDDED_TESTBED.chunks) * 1000).toFixed(1).padStart(8)}  ${(base.seconds / r.seconds).toFixed(2).padStart(7)}x` +
      `   ${(model.blockLinearBytes / 1e6).toFixed(2).padStart(14)}  ${(model.blockLinearBytes / fp.blockLinearBytes).toFixed(3)}` +
      `   ${(model.weightBytes / 1e6).toFixed(2).padStart(7)}  ${(model.weightBytes / fp.weightBytes).toFixed(3)}` +
      `   ${(cache / 1e6).toFixed(2).padStart(10)}  ${(cache / cacheBytes()).toFixed(3)}   ${psnr}`,
  );
}
// Where each variant's time goes (the fastest run's passes; fused steps count in the linears).
console.log('\nprofile of the passes (share of the wall time)');
const cats = ['linears', 'attention', 'norms', 'activations', 'copies', 'rest'];
console.log(`${'variant'.padEnd(25)} ${cats.map((c) => c.padStart(11)).join('')}     wall s`);
for (const [name] of variants) {
  const p = results.get(name).profile;
  const s = p.summary();
  console.log(`${name.padEnd(25)} ${cats.map((c) => `${(100 * s[c]).toFixed(1)}%`.padStart(11)).join('')}   ${p.total.toFixed(3).padStart(8)}`);
}
