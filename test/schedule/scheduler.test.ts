import t from 'tap';
import { ChunkScheduler, measureSensitivity, QuantizedLinear, LinearF32, Tensor, type Linear, type LayerSet } from '../../lib/index.js';
import { CausalDit } from '../../lib/model/dit.js';
import { generate } from '../../lib/model/sampling.js';
import { type DitConfig, EMBEDDED_TESTBED } from '../../lib/model/config.js';

const tiny: DitConfig = { ...EMBEDDED_TESTBED, name: 'tiny', inChannels: 4, outChannels: 4, dim: 32, ffnDim: 48, heads: 2, layers: 2, freqDim: 16, textDim: 8, textLen: 5, latentHeight: 4, latentWidth: 4, framesPerChunk: 2, chunks: 3 };

function w8a8(model: CausalDit, names = model.blockLinearNames): Record<string, Linear> {
  const set: Record<string, Linear> = {};
  for (const n of names) {
    const { weight, bias } = model.floatWeights(n);
    set[n] = QuantizedLinear.fromFloat(weight, { bias, weight: { dtype: 'int4' }, activation: { type: 'dynamic' } });
  }
  return set;
}

/** A layer that records the chunk of each call (read from the scheduler) and computes like `inner`. */
function recording(inner: Linear, log: number[], scheduler: () => ChunkScheduler): Linear {
  return {
    inFeatures: inner.inFeatures, outFeatures: inner.outFeatures, weightBytes: inner.weightBytes, bias: inner.bias,
    forwardSync: (x) => inner.forwardSync(x),
    forward: (x) => (log.push(scheduler().current!.chunk), inner.forward(x)),
  };
}

t.test('onlyChunk installs the quantized layers for exactly one chunk and restores the model', async (t) => {
  const model = CausalDit.synthetic(tiny, { seed: 1 });
  const name = 'blocks.1.ffn.0';
  const original = model.linear(name);
  const log: number[] = [];
  let scheduler!: ChunkScheduler;
  const set: LayerSet = { [name]: recording(original, log, () => scheduler) };
  scheduler = new ChunkScheduler(model, ChunkScheduler.onlyChunk(1, set));
  const passes: string[] = [];
  await scheduler.generate({ prompt: 'p', seed: 1, beforePass: (p) => void passes.push(`${p.chunk}${p.kind[0]}`) });
  t.same(log, [1, 1, 1, 1, 1], 'four denoising passes and the cache pass of chunk 1, nothing else');
  t.equal(passes.length, 15, 'the caller\'s hook still runs');
  t.equal(model.linear(name), original, 'the model has its own layer back');
  t.equal(scheduler.current, undefined);
});

t.test('everyChunk equals installing the layers by hand', async (t) => {
  const model = CausalDit.synthetic(tiny, { seed: 2 });
  const set = w8a8(model);
  const scheduled = await new ChunkScheduler(model, ChunkScheduler.everyChunk(set)).generate({ prompt: 'p', seed: 3 });
  const originals = Object.fromEntries(model.blockLinearNames.map((n) => [n, model.linear(n)]));
  for (const [n, l] of Object.entries(set)) model.setLinear(n, l);
  const direct = await generate(model, { prompt: 'p', seed: 3 });
  for (const [n, l] of Object.entries(originals)) model.setLinear(n, l);
  t.ok(scheduled.data.every((v, i) => v === direct.data[i]), 'bit-identical');
});

t.test('switching cross-attention layers between chunks refreshes the context keys/values', async (t) => {
  const model = CausalDit.synthetic(tiny, { seed: 3 });
  const name = 'blocks.0.cross_attn.k';
  const { weight, bias } = model.floatWeights(name);
  const changed: LayerSet = { [name]: LinearF32.fromFloat(new Tensor('float32', weight.shape, weight.data.map((v, i) => (i % 7 === 0 ? -v : v))), { bias }) };
  const fp = await new ChunkScheduler(model, () => null).generate({ prompt: 'p', seed: 4 });
  const mixed = await new ChunkScheduler(model, ChunkScheduler.perChunk([null, changed, null])).generate({ prompt: 'p', seed: 4 });
  const frame = 4 * 4 * 4 * 2;
  const same = (a: number, b: number) => fp.data.subarray(a, b).every((v, i) => v === mixed.data[a + i]);
  t.ok(same(0, frame), 'chunk 0 untouched');
  t.notOk(same(frame, 2 * frame), 'chunk 1 used the changed cross-attention keys');
});

t.test('sensitivity: the definition, checked by hand-made swaps', async (t) => {
  const model = CausalDit.synthetic(tiny, { seed: 5 });
  const quantized = w8a8(model);
  let progress = 0;
  const r = await measureSensitivity(model, { quantized, prompts: ['a fox', 'waves'], seed: 10, onProgress: (d, total) => { progress = d; t.equal(total, 8); } });
  t.equal(progress, 8);
  t.ok(Math.abs(r.sensitivity.reduce((a, b) => a + b, 0) - 1) < 1e-12, 'sums to 1');
  // Independently: swap the layers with plain hooks and compute the MSE of the whole video.
  const originals = Object.fromEntries(model.blockLinearNames.map((n) => [n, model.linear(n)]));
  for (const [p, prompt] of ['a fox', 'waves'].entries()) {
    const fp = await generate(model, { prompt, seed: 10 + p });
    for (let k = 0; k < 3; k++) {
      const v = await generate(model, {
        prompt, seed: 10 + p,
        beforePass: (info) => {
          for (const n of model.blockLinearNames) model.setLinear(n, info.chunk === k ? quantized[n] : originals[n]);
        },
      });
      for (const n of model.blockLinearNames) model.setLinear(n, originals[n]);
      let s = 0;
      for (let i = 0; i < v.size; i++) s += (v.data[i] - fp.data[i]) ** 2;
      t.ok(Math.abs(r.perPrompt[p][k] - s / v.size) <= 1e-12 * (s / v.size), `prompt ${p}, chunk ${k}`);
    }
  }
  t.ok(r.mse.every((m) => m > 0));
});

t.test('bad input', async (t) => {
  const model = CausalDit.synthetic(tiny, { seed: 6 });
  const same = Object.fromEntries(model.blockLinearNames.map((n) => [n, model.linear(n)]));
  await t.rejects(measureSensitivity(model, { quantized: same, prompts: ['p'], chunks: 1 }), { name: 'RangeError', message: /changes no video/ });
  await t.rejects(measureSensitivity(model, { quantized: {}, prompts: ['p'] }), { name: 'TypeError', message: /options\.quantized/ });
  await t.rejects(measureSensitivity(model, { quantized: same, prompts: [] }), { name: 'TypeError', message: /options\.prompts/ });
  t.throws(() => new ChunkScheduler(model, 3 as never), { name: 'TypeError', message: /policy/ });
  t.throws(() => ChunkScheduler.onlyChunk(-1, same), { name: 'RangeError', message: /chunk/ });
  t.throws(() => ChunkScheduler.perChunk([]), { name: 'TypeError', message: /sets/ });
  // A failing pass still restores the model's layers.
  const name = 'blocks.0.ffn.0';
  const original = model.linear(name);
  const broken: Linear = { ...original, inFeatures: original.inFeatures, outFeatures: original.outFeatures, weightBytes: 0, bias: null, forwardSync: () => { throw new Error('boom'); }, forward: async () => { throw new Error('boom'); } };
  await t.rejects(new ChunkScheduler(model, ChunkScheduler.everyChunk({ [name]: broken })).generate({ prompt: 'p', seed: 1 }), /boom/);
  t.equal(model.linear(name), original);
});
