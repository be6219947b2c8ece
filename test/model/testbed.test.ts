import t from 'tap';
import { ChunkScheduler, QuantizedLinear, type Linear } from '../../lib/index.js';
import { CausalDit } from '../../lib/model/dit.js';
import { EMBEDDED_TESTBED } from '../../lib/model/config.js';
import { DEFAULT_PROMPTS } from '../../lib/model/prompts.js';

// The embedded default must behave like an autoregressive video model: later chunks depend on the
// KV cache, so an error made while generating chunk 0 is carried into every later chunk, and
// quantizing an early chunk costs the video more than quantizing the last one (SPEC section 1).
t.test('embedded default: an error made in chunk 0 reaches later chunks through the cache', async (t) => {
  const c = EMBEDDED_TESTBED;
  const chunks = 3;
  const model = CausalDit.synthetic(c, { seed: 0 });
  const quantized: Record<string, Linear> = {};
  for (const name of model.blockLinearNames) {
    const { weight, bias } = model.floatWeights(name);
    quantized[name] = QuantizedLinear.fromFloat(weight, { bias, weight: { dtype: 'int8' }, activation: { type: 'dynamic' } });
  }
  const request = { prompt: DEFAULT_PROMPTS[0], seed: 0, chunks };
  const reference = await new ChunkScheduler(model, () => null).generate(request);
  const size = c.framesPerChunk * c.inChannels * c.latentHeight * c.latentWidth;
  const perChunk = (fn: (i: number) => number) =>
    Array.from({ length: chunks }, (_, k) => {
      let s = 0;
      for (let i = k * size; i < (k + 1) * size; i++) s += fn(i);
      return s / size;
    });

  const rms = perChunk((i) => reference.data[i] ** 2).map(Math.sqrt);
  t.ok(reference.data.every(Number.isFinite), 'the video is finite');
  t.ok(rms.every((r) => r > 0.5 && r < 2), `latent RMS per chunk stays in 0.5..2: ${rms.map((r) => r.toFixed(2)).join(', ')}`);

  const errorOf = async (chunk: number) => {
    const video = await new ChunkScheduler(model, ChunkScheduler.onlyChunk(chunk, quantized)).generate(request);
    return perChunk((i) => (video.data[i] - reference.data[i]) ** 2);
  };
  const first = await errorOf(0);
  const last = await errorOf(chunks - 1);
  t.ok(first[0] > 0 && first.every(Number.isFinite), 'quantizing chunk 0 changes chunk 0');
  // Random weights carry about 1% of chunk 0's error into chunk 2; a model that continues the
  // previous frames carries a large part of it.
  const carried = first[2] / first[0];
  t.ok(carried > 0.1, `chunk 2 keeps ${(100 * carried).toFixed(1)}% of the error quantizing chunk 0 made there (over 10%)`);
  t.same(last.slice(0, chunks - 1), [0, 0], 'quantizing the last chunk leaves the earlier ones exactly as they were');
  const video = (e: number[]) => e.reduce((a, b) => a + b, 0);
  const ratio = video(first) / video(last);
  t.ok(ratio > 2, `quantizing chunk 0 costs the video ${ratio.toFixed(1)}x what quantizing the last chunk does (over 2x)`);
});
