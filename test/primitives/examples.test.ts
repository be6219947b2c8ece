// The README's quantize tour, run as written, with its claims checked.
import t from 'tap';
import { blockRangeSync, chooseQParams, chooseQParamsSync, dequantize, dequantizeSync, QTensor, quantize, quantizeSync, Tensor } from '../../lib/index.js';

t.test('README tour', async (t) => {
  const x = new Tensor('float32', [4, 8], Float32Array.from({ length: 32 }, (_, i) => Math.sin(i)));

  const a = await quantize(x, { dtype: 'int8', granularity: { type: 'perToken' } });
  t.equal(a.scale.length, 4);
  const rowMax = Math.max(...Array.from(x.data.slice(8, 16), Math.abs));
  t.equal(a.scale[1], Math.fround(Math.fround(rowMax) / 127));
  const back = await dequantize(a);
  t.same(back.shape, [4, 8]);
  for (let i = 0; i < 32; i++) t.ok(Math.abs(back.data[i] - x.data[i]) <= a.scale[i >> 3] / 2 + 1e-7);

  const w = quantizeSync(x, { bits: 4, signed: false, granularity: { type: 'perChannel', axis: 0 } });
  t.equal(w.dtype, 'uint4');
  t.equal(w.scheme, 'asymmetric');
  t.equal(w.data.data.length, 16);

  const g = quantizeSync(x, { dtype: 'int4', granularity: { type: 'perGroup', axis: -1, groupSize: 4 } });
  t.same(g.scaleShape, [4, 2]);
  const p = await chooseQParams(x, { dtype: 'uint8', scheme: 'asymmetric' });
  const s = quantizeSync(x, { dtype: 'uint8', scale: p.scale, zeroPoint: p.zeroPoint });
  t.same(Array.from(s.data.data), Array.from(quantizeSync(x, { dtype: 'uint8' }).data.data));

  const out = Tensor.zeros('int8', [4, 8]);
  t.equal(quantizeSync(x, { dtype: 'int8', granularity: { type: 'perToken' }, out }).data, out);
});

t.test('JSDoc examples', (t) => {
  const q = new QTensor({
    data: new Tensor('int8', [2], new Int8Array([-3, 5])),
    scale: new Float32Array([0.5]),
    zeroPoint: new Int32Array([0]),
    scheme: 'symmetric',
    granularity: { type: 'perTensor' },
  });
  t.same(Array.from(dequantizeSync(q).data), [-1.5, 2.5]);
  const c = chooseQParamsSync(Tensor.fromArray([-1, 3]), { dtype: 'uint8' });
  t.equal(c.scale[0], Math.fround(4 / 255));
  t.equal(c.zeroPoint[0], 64);
  t.same(Array.from(quantizeSync(Tensor.fromArray([0.5, -1, 1.5]), { bits: 4, scale: 0.5 }).data.data), [0xe1, 0x03]);
  t.same(Array.from(dequantizeSync(quantizeSync(Tensor.fromArray([0.5, -1]), { dtype: 'int8', scale: 0.5 })).data), [0.5, -1]);
  const r = blockRangeSync(Tensor.fromArray([1, -2, 3, 4], [2, 2]), { granularity: { type: 'perToken' } });
  t.same([Array.from(r.min), Array.from(r.max)], [[-2, 3], [1, 4]]);
  const cr = blockRangeSync(Tensor.fromArray([1, -2, 3, 4], [2, 2]), { granularity: { type: 'perChannel', axis: 1 } });
  t.same([Array.from(cr.min), Array.from(cr.max)], [[1, -2], [3, 4]]);
  t.end();
});
