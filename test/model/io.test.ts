import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Tensor, writeSafetensors } from '../../lib/index.js';
import { EMBEDDED_DEFAULT, type DitConfig } from '../../lib/model/config.js';
import { loadModel, saveModelWeights, saveSyntheticModel } from '../../lib/model/io.js';
import { CausalDit } from '../../lib/model/dit.js';
import { syntheticWeights, encodePrompt } from '../../lib/model/weights.js';

const tiny: DitConfig = { ...EMBEDDED_DEFAULT, name: 'tiny', inChannels: 4, outChannels: 4, dim: 24, ffnDim: 40, heads: 2, layers: 1, freqDim: 16, textDim: 8, textLen: 5, latentHeight: 4, latentWidth: 4, framesPerChunk: 1, chunks: 2 };

async function flowOf(model: CausalDit) {
  const x = new Tensor('float32', [1, 4, 4, 4], Float32Array.from({ length: 64 }, (_, i) => Math.sin(i)));
  return (await model.forward(x, { timestep: 500, context: await model.embedContext(encodePrompt('p', tiny)), state: model.createState() })).data;
}

t.test('a saved model loads back and computes the same', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'qarvd-model-'));
  const file = path.join(dir, 'tiny.safetensors');
  await saveSyntheticModel(file, tiny, 4);
  const loaded = await loadModel(file);
  t.same(loaded.config, tiny);
  t.same(await flowOf(loaded), await flowOf(CausalDit.synthetic(tiny, { seed: 4 })));
});

t.test('files without a configuration, or with a wrong one, are clear errors', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'qarvd-model-'));
  const bare = path.join(dir, 'bare.safetensors');
  await writeSafetensors(bare, syntheticWeights(tiny).tensors);
  await t.rejects(loadModel(bare), { name: 'RangeError', message: /no qarvd.config metadata/ });
  t.ok(await loadModel(bare, tiny), 'an explicit configuration works');
  await t.rejects(loadModel(bare, 'embedded-default'), { name: 'RangeError', message: /shape/ });
  const wrong = path.join(dir, 'wrong.safetensors');
  await saveModelWeights(wrong, tiny, syntheticWeights(tiny).tensors);
  await t.rejects(loadModel(wrong, 'nope'), { name: 'RangeError', message: /embedded-default/ });
  const corrupt = path.join(dir, 'corrupt.safetensors');
  writeFileSync(corrupt, Buffer.from('not a model at all'));
  await t.rejects(loadModel(corrupt), { name: 'SafetensorsError' });
});
