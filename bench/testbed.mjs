// The embedded default as an autoregressive testbed: how much an error made in one chunk costs the
// whole video through the KV cache (chunk-wise sensitivity, W8A8 round-to-nearest on every block
// linear, dynamic per-token activations, as `qarvd sensitivity`), how far an error of chunk 0
// travels, whether the video stays in a sane range over chunks, and what a video costs.
// `npm run bench -- testbed`, or `node bench/testbed.mjs --prompts 4` for more prompts.
import { CausalDit, ChunkScheduler, DEFAULT_PROMPTS, EMBEDDED_TESTBED, QuantizedLinear, backends, measureSensitivity } from '../dist/index.js';

const at = process.argv.indexOf('--prompts');
const promptCount = at > 0 ? Number(process.argv[at + 1]) : 2;
if (!Number.isInteger(promptCount) || promptCount < 1 || promptCount > DEFAULT_PROMPTS.length) {
  console.error(`testbed: --prompts must be an integer from 1 to ${DEFAULT_PROMPTS.length}`);
  process.exit(1);
}
const c = EMBEDDED_TESTBED;
const model = CausalDit.synthetic(c, { seed: 0 });
const w8a8 = {};
for (const name of model.blockLinearNames) {
  const { weight, bias } = model.floatWeights(name);
  w8a8[name] = QuantizedLinear.fromFloat(weight, { bias, weight: { dtype: 'int8' }, activation: { type: 'dynamic' } });
}
const request = { prompt: DEFAULT_PROMPTS[0], seed: 0 };
const perChunk = (fn) => {
  const size = c.framesPerChunk * c.inChannels * c.latentHeight * c.latentWidth;
  return Array.from({ length: c.chunks }, (_, k) => {
    let s = 0;
    for (let i = k * size; i < (k + 1) * size; i++) s += fn(i);
    return s / size;
  });
};

// Best of 3: the cores are shared, so the fastest round is the least disturbed one.
let seconds = Infinity, video;
for (let round = 0; round < 3; round++) {
  const t0 = performance.now();
  video = await new ChunkScheduler(model, () => null).generate(request);
  seconds = Math.min(seconds, (performance.now() - t0) / 1000);
}
const std = perChunk((i) => video.data[i] ** 2).map(Math.sqrt);
const fromChunk0 = await new ChunkScheduler(model, ChunkScheduler.onlyChunk(0, w8a8)).generate(request);
const travel = perChunk((i) => (fromChunk0.data[i] - video.data[i]) ** 2);
const { sensitivity } = await measureSensitivity(model, { quantized: w8a8, prompts: DEFAULT_PROMPTS.slice(0, promptCount) });

const row = (values, digits = 3) => values.map((v) => v.toFixed(digits)).join('  ');
console.log(`embedded default: ${c.layers} blocks, dim ${c.dim}, ${c.heads} heads, ${c.chunks} chunks of ${c.framesPerChunk} frames of ${c.latentHeight}x${c.latentWidth}; ${backends().cpu.isa}, ${backends().cpu.threads} threads`);
console.log(`video (FP32, ${c.chunks} chunks):     ${seconds.toFixed(3)} s (best of 3)`);
console.log(`latent RMS per chunk:        ${row(std, 2)}`);
console.log(`W8A8 in chunk 0 only, MSE per chunk / chunk 0's: ${row(travel.map((v) => v / travel[0]))}`);
console.log(`sensitivity (W8A8 RTN, ${promptCount} prompt${promptCount > 1 ? 's' : ''}): ${row(sensitivity)}`);
console.log(`  first / last chunk:        ${(sensitivity[0] / sensitivity[c.chunks - 1]).toFixed(1)}x`);
console.log('Self-Forcing (Q-ARVD paper): 0.546  0.167  0.119  0.079  0.053  0.026  0.010');
