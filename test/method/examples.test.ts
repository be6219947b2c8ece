// The README's method tour, run as written (on a small model), with its claims checked.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  CausalDit, DEFAULT_PROMPTS, roundToNearest, measureSensitivity, chunkWeightsFromSensitivity, detectModelOutliers, calibrate,
  quantizeModel, fullRecipe, buildLayerSets, ChunkScheduler, saveQuantizedModel, loadQuantizedModel, fullPrecisionTensors,
} from '../../lib/index.js';
import { small } from './fixtures.js';

t.test('README method tour', async (t) => {
  const model = CausalDit.synthetic(small);
  const { sensitivity } = await measureSensitivity(model, { quantized: roundToNearest(model, { dtype: 'int8' }), prompts: DEFAULT_PROMPTS.slice(0, 2) });
  const chunkWeights = chunkWeightsFromSensitivity(sensitivity);
  t.ok(Math.abs(chunkWeights.reduce((a, b) => a + b, 0) / chunkWeights.length - 1) < 1e-12, 'chunk weights have mean 1');

  const outliers = detectModelOutliers(model, { method: 'mad' });
  const stats = await calibrate(model, { prompts: DEFAULT_PROMPTS.slice(2, 4), seed: 1000, chunkWeights, outliers, bins: 1024 });
  const q = await quantizeModel(model, stats, fullRecipe('int8'));
  t.equal(q.report.filter((l) => l.type === 'dual').length, Object.keys(outliers).length, 'every layer with outliers is two-scale');
  const dynamic = Object.values(q.plans.chunks!.choices).filter((c) => c.label === 'dynamic').length;
  t.equal(dynamic, 2, 'two chunks run dynamic activations');
  const video = await new ChunkScheduler(model, ChunkScheduler.perChunk(buildLayerSets(q.layers))).generate({ prompt: 'a red fox', seed: 1 });

  const file = path.join(mkdtempSync(path.join(tmpdir(), 'qarvd-readme-')), 'w8a8.safetensors');
  await saveQuantizedModel(file, { config: model.config, tensors: fullPrecisionTensors(model), layers: q.layers, info: { report: q.report } });
  const { model: quantized, policy, spec } = await loadQuantizedModel(file);
  const same = await new ChunkScheduler(quantized, policy).generate({ prompt: 'a red fox', seed: 1 });
  t.ok(same.data.every((v, i) => v === video.data[i]), 'the same video, bit for bit');
  t.same((spec.info.report as unknown[]).length, q.report.length);
});
