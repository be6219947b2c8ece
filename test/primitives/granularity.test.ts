import t from 'tap';
import { checkGranularity, numScales, QTensor, quantizeSync, scaleShape, Tensor } from '../../lib/index.js';
import { blockLayout } from '../../lib/primitives/granularity.js';
import { refScaleShape } from './reference.js';

t.test('checkGranularity normalises negative axes and keeps the rest', (t) => {
  t.same(checkGranularity({ type: 'perChannel', axis: -1 }, [4, 8]), { type: 'perChannel', axis: 1 });
  t.same(checkGranularity({ type: 'perGroup', axis: -2, groupSize: 2 }, [4, 8]), { type: 'perGroup', axis: 0, groupSize: 2 });
  t.same(checkGranularity({ type: 'perTensor' }, []), { type: 'perTensor' });
  t.same(checkGranularity({ type: 'perToken' }, [3]), { type: 'perToken' });
  t.end();
});

t.test('scaleShape follows the definitions', (t) => {
  const shape = [2, 6, 4];
  const cases = [
    { type: 'perTensor' },
    { type: 'perChannel', axis: 0 },
    { type: 'perChannel', axis: 1 },
    { type: 'perChannel', axis: 2 },
    { type: 'perGroup', axis: 1, groupSize: 3 },
    { type: 'perGroup', axis: 2, groupSize: 2 },
    { type: 'perGroup', axis: 0, groupSize: 2 },
    { type: 'perToken' },
  ] as const;
  for (const g of cases) {
    const checked = checkGranularity(g, shape);
    t.same(scaleShape(shape, checked), refScaleShape(shape, g), JSON.stringify(g));
    t.equal(numScales(shape, checked), refScaleShape(shape, g).reduce((a, b) => a * b, 1));
    const l = blockLayout(shape, checked);
    t.equal(l.outer * l.axisLen * l.inner, 48, `layout covers the tensor ${JSON.stringify(g)}`);
  }
  t.end();
});

t.test('QTensor exposes shape, dtype and scale shape; bits/signed select the dtype', (t) => {
  const x = new Tensor('float32', [3, 5], Float32Array.from({ length: 15 }, (_, i) => i / 3 - 2));
  const q = quantizeSync(x, { bits: 4, signed: false, granularity: { type: 'perGroup', axis: -1, groupSize: 5 } });
  t.ok(q instanceof QTensor);
  t.equal(q.dtype, 'uint4');
  t.equal(q.scheme, 'asymmetric');
  t.same(q.shape, [3, 5]);
  t.same(q.scaleShape, [3, 1]);
  t.same(q.granularity, { type: 'perGroup', axis: 1, groupSize: 5 });
  t.equal(q.data.data.length, 8);
  t.equal(quantizeSync(x, { bits: 8 }).dtype, 'int8');
  t.match(String(q), /QTensor<uint4, asymmetric, perGroup>\[3, 5\]/);
  t.end();
});

t.test('default schemes', (t) => {
  const x = Tensor.fromArray([-1, 2]);
  t.equal(quantizeSync(x, { dtype: 'int8' }).scheme, 'symmetric');
  t.equal(quantizeSync(x, { dtype: 'uint8' }).scheme, 'asymmetric');
  t.equal(quantizeSync(x, { dtype: 'uint8', scale: 0.1 }).scheme, 'symmetric');
  t.same(Array.from(quantizeSync(x, { dtype: 'uint8', scale: 0.1 }).zeroPoint), [128]);
  t.equal(quantizeSync(x, { dtype: 'int8', scale: 0.1, zeroPoint: 3 }).scheme, 'asymmetric');
  t.end();
});
