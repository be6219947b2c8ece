// The method's own output through a checkpoint: calibrate, quantize with the full recipe (two-scale
// layers, GPTQ, bit allocation with per-chunk activations), save, load, generate.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ChunkScheduler, loadQuantizedModel, readQuantizedModel, saveQuantizedModel } from '../../lib/index.js';
import { CausalDit } from '../../lib/model/dit.js';
import { calibrate } from '../../lib/method/calibrate.js';
import { detectModelOutliers, quantizeModel } from '../../lib/method/quantize.js';
import { fullRecipe } from '../../lib/method/ablation.js';
import { buildLayerSets, fullPrecisionTensors } from '../../lib/method/spec.js';
import { small } from '../method/fixtures.js';

t.test('a W4A8 model from quantizeModel loads back and generates the identical video', async (t) => {
  const model = CausalDit.synthetic(small, { seed: 3 });
  const chunkWeights = [2.2, 0.6, 0.2];
  const stats = await calibrate(model, { prompts: ['a red fox'], seed: 1, chunkWeights, outliers: detectModelOutliers(model), bins: 512 });
  const recipe = fullRecipe('int4');
  const q = await quantizeModel(model, stats, recipe);
  t.ok(q.layers.some((l) => l.type === 'dual'), 'two-scale layers');
  const spec = { config: small, tensors: fullPrecisionTensors(model), layers: q.layers, info: { recipe, chunkWeights, report: q.report } };

  const file = path.join(mkdtempSync(path.join(tmpdir(), 'qarvd-ckpt-method-')), 'w4a8.safetensors');
  await saveQuantizedModel(file, spec);
  const back = await readQuantizedModel(file);
  t.same(back.info, JSON.parse(JSON.stringify(spec.info)), 'recipe, chunk weights and per-layer report kept');

  const sets = buildLayerSets(q.layers);
  const want = await new ChunkScheduler(model, ChunkScheduler.perChunk(sets)).generate({ prompt: 'ocean waves', seed: 4 });
  const loaded = await loadQuantizedModel(file);
  t.equal(sets.length, 3, 'activations per chunk (bit allocation)');
  t.equal(loaded.layerSets.length, 3);
  const got = await new ChunkScheduler(loaded.model, loaded.policy).generate({ prompt: 'ocean waves', seed: 4 });
  t.ok(got.data.every((v, i) => Object.is(v, want.data[i])), 'bit-identical video');
});
