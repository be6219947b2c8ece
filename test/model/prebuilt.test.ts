import t from 'tap';
import { QuantizedLinear, LinearF32, type Linear } from '../../lib/index.js';
import { CausalDit } from '../../lib/model/dit.js';
import { generate } from '../../lib/model/sampling.js';
import { type DitConfig, EMBEDDED_TESTBED } from '../../lib/model/config.js';
import { syntheticWeights } from '../../lib/model/weights.js';

const tiny: DitConfig = { ...EMBEDDED_TESTBED, name: 'tiny', inChannels: 4, outChannels: 4, dim: 24, ffnDim: 40, heads: 2, layers: 2, freqDim: 16, textDim: 8, textLen: 5, latentHeight: 4, latentWidth: 6, framesPerChunk: 2, chunks: 2 };

t.test('fromTensors with prebuilt block layers equals the float model with those layers set', async (t) => {
  const { tensors } = syntheticWeights(tiny, { seed: 4 });
  const names = ['blocks.0.ffn.0', 'blocks.1.cross_attn.k'];
  const layers: Record<string, Linear> = {};
  const withoutThem = { ...tensors };
  for (const n of names) {
    layers[n] = QuantizedLinear.fromFloat(tensors[`${n}.weight`], { bias: tensors[`${n}.bias`], weight: { dtype: 'int4' } });
    delete withoutThem[`${n}.weight`];
    delete withoutThem[`${n}.bias`];
  }
  const prebuilt = CausalDit.fromTensors(tiny, withoutThem, { layers });
  const reference = CausalDit.fromTensors(tiny, tensors);
  for (const n of names) reference.setLinear(n, layers[n]);
  const a = await generate(prebuilt, { prompt: 'p', seed: 2 });
  const b = await generate(reference, { prompt: 'p', seed: 2 });
  t.ok(a.data.every((v, i) => Object.is(v, b.data[i])), 'bit-identical');

  t.equal(prebuilt.linear('blocks.0.ffn.0'), layers['blocks.0.ffn.0']);
  t.ok(prebuilt.linear('blocks.0.ffn.2') instanceof LinearF32);
  t.throws(() => prebuilt.floatWeights('blocks.0.ffn.0'), { name: 'RangeError', message: /blocks\.0\.ffn\.0 was loaded as a prebuilt.*no float weights/ });
  t.throws(() => prebuilt.floatWeights('nope'), { name: 'RangeError', message: /"nope"/ });
  t.same(prebuilt.floatWeights('blocks.0.ffn.2').weight.data, tensors['blocks.0.ffn.2.weight'].data);
  // Given tensors of a prebuilt layer are not read (a layer replaces them).
  const both = CausalDit.fromTensors(tiny, tensors, { layers: { 'blocks.0.ffn.0': layers['blocks.0.ffn.0'] } });
  t.equal(both.linear('blocks.0.ffn.0'), layers['blocks.0.ffn.0']);
});

t.test('fromTensors checks options.layers', (t) => {
  const { tensors } = syntheticWeights(tiny, { seed: 4 });
  const ffn0 = LinearF32.fromFloat(tensors['blocks.0.ffn.0.weight']);
  t.throws(() => CausalDit.fromTensors(tiny, tensors, { layers: { 'head.head': ffn0 } }), { name: 'RangeError', message: /options\.layers.*"head\.head"/ });
  t.throws(() => CausalDit.fromTensors(tiny, tensors, { layers: { 'blocks.0.ffn.2': ffn0 } }), { name: 'TypeError', message: /40 -> 24 features for options\.layers\['blocks\.0\.ffn\.2'\]/ });
  t.throws(() => CausalDit.fromTensors(tiny, tensors, { layers: { 'blocks.0.ffn.0': {} as Linear } }), { name: 'TypeError', message: /options\.layers\['blocks\.0\.ffn\.0'\]/ });
  t.throws(() => CausalDit.fromTensors(tiny, tensors, { layers: [] as never }), { name: 'TypeError', message: /options\.layers/ });
  t.throws(() => CausalDit.fromTensors(tiny, tensors, null as never), { name: 'TypeError', message: /options/ });
  const missing = { ...tensors };
  delete missing['blocks.1.ffn.0.weight'];
  t.throws(() => CausalDit.fromTensors(tiny, missing, { layers: { 'blocks.0.ffn.0': ffn0 } }), { name: 'RangeError', message: /missing blocks\.1\.ffn\.0\.weight/ });
  t.end();
});
