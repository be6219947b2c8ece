import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Tensor, writeSafetensors } from '../../lib/index.js';
import { EMBEDDED_TESTBED, type DitConfig } from '../../lib/model/config.js';
import { loadModel, saveModelWeights, saveSyntheticModel } from '../../lib/model/io.js';
import { CausalDit } from '../../lib/model/dit.js';
import { syntheticWeights, encodePrompt } from '../../lib/model/weights.js';

const tiny: DitConfig = { ...EMBEDDED_TESTBED, name: 'tiny', inChannels: 4, outChannels: 4, dim: 24, ffnDim: 40, heads: 2, layers: 1, freqDim: 16, textDim: 8, textLen: 5, latentHeight: 4, latentWidth: 4, framesPerChunk: 1, chunks: 2 };

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
  // Wan names without a configuration: everything but the heads follows from the shapes.
  await t.rejects(loadModel(bare), { name: 'RangeError', message: /heads of a Wan DiT of width 24.*give heads/ });
  t.ok(await loadModel(bare, tiny), 'an explicit configuration works');
  t.match((await loadModel(bare, { heads: 2 })).config, { dim: 24, ffnDim: 40, layers: 1, heads: 2, textLen: 512 }, 'or only the heads');
  const other = path.join(dir, 'other.safetensors');
  await writeSafetensors(other, { w: Tensor.zeros('float32', [2]) });
  await t.rejects(loadModel(other), { name: 'RangeError', message: /no qarvd.config metadata and is not a Wan-named DiT/ });
  await t.rejects(loadModel(bare, 'embedded-default'), { name: 'RangeError', message: /shape/ });
  const wrong = path.join(dir, 'wrong.safetensors');
  await saveModelWeights(wrong, tiny, syntheticWeights(tiny).tensors);
  await t.rejects(loadModel(wrong, 'nope'), { name: 'RangeError', message: /embedded-default/ });
  const corrupt = path.join(dir, 'corrupt.safetensors');
  writeFileSync(corrupt, Buffer.from('not a model at all'));
  await t.rejects(loadModel(corrupt), { name: 'SafetensorsError' });
});

t.test('bf16 and fp16 checkpoints load, widened exactly to float32', async (t) => {
  const { toFloat32, halfToFloat } = await import('../../lib/index.js');
  // Hand-checked bit patterns: bf16 0x3fc0 = 1.5, 0xc040 = -3; fp16 0x3c00 = 1, 0xc000 = -2, 0x0001 = 2^-24, 0x7c00 = inf.
  t.same([...toFloat32(new Tensor('bfloat16', [2], new Uint16Array([0x3fc0, 0xc040]))).data], [1.5, -3]);
  t.same([...toFloat32(new Tensor('float16', [3], new Uint16Array([0x3c00, 0xc000, 0x0001]))).data], [1, -2, 2 ** -24]);
  t.equal(halfToFloat(0x7c00), Infinity);
  t.ok(Number.isNaN(halfToFloat(0x7e00)));
  // A model whose weights are stored as bf16 computes what the float32 model with those values does.
  const { tensors } = syntheticWeights(tiny, { seed: 2 });
  const bf16: Record<string, Tensor> = {}, rounded: Record<string, Tensor> = {};
  for (const [name, v] of Object.entries(tensors)) {
    const bits = new Uint16Array(new Uint32Array(Float32Array.from(v.data).buffer).map((u) => u >>> 16));
    bf16[name] = new Tensor('bfloat16', v.shape, bits);
    rounded[name] = new Tensor('float32', v.shape, new Float32Array(new Uint32Array(Array.from(bits, (b) => b << 16)).buffer));
  }
  t.same(await flowOf(CausalDit.fromTensors(tiny, bf16)), await flowOf(CausalDit.fromTensors(tiny, rounded)));
  t.throws(() => CausalDit.fromTensors(tiny, { ...tensors, 'head.head.bias': Tensor.zeros('int8', [16]) }), { name: 'TypeError', message: /head\.head\.bias/ });
});
