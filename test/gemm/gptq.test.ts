import t from 'tap';
import { DualScaleLinear, QuantizedLinear, gptqDequantize, gptqSync, outlierPermutation, type QuantizedWeight } from '../../lib/index.js';
import { randTensor, rng } from './reference.js';

// Layers built from GPTQ results hold exactly GPTQ's integers: their dequantized weights equal
// gptqDequantize's, value for value (unsigned results run as signed ones with shifted zero points).

function dequantized(w: QuantizedWeight, n: number, len: number): Float32Array {
  const out = new Float32Array(n * len);
  const groups = w.groupSize ? Math.ceil(len / w.groupSize) : 1;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < len; j++) {
      const flat = i * len + j;
      let q: number;
      if (w.q.dtype === 'int8') q = (w.q.data as Int8Array)[flat];
      else {
        const nib = flat % 2 === 0 ? w.q.data[flat >> 1] & 15 : w.q.data[flat >> 1] >> 4;
        q = nib >= 8 ? nib - 16 : nib;
      }
      const g = i * groups + (w.groupSize ? Math.floor(j / w.groupSize) : 0);
      out[flat] = Math.fround((q - w.zeroPoint.data[g]) * w.scale.data[g]);
    }
  return out;
}

function gram(x: Float32Array, m: number, k: number): Float64Array {
  const h = new Float64Array(k * k);
  for (let r = 0; r < m; r++) for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) h[i * k + j] += x[r * k + i] * x[r * k + j];
  return h;
}

const r = rng(41);
const n = 20;
const k = 96;
const w = randTensor(r, [n, k]);
const x = randTensor(r, [64, k]);
const H = gram(x.data, 64, k);

t.test('QuantizedLinear.fromGptq keeps GPTQ integers for every dtype', async (t) => {
  for (const dtype of ['int8', 'uint8', 'int4', 'uint4'] as const) {
    for (const groupSize of [0, 32]) {
      const res = gptqSync(w, H, { dtype, scheme: 'asymmetric', ...(groupSize ? { groupSize } : {}) });
      const layer = QuantizedLinear.fromGptq(res, { bias: randTensor(r, [n]) });
      t.equal(layer.config.dtype, dtype.endsWith('8') ? 'int8' : 'int4', `${dtype}: kernel width`);
      t.same(Array.from(dequantized(layer.quantizedWeight(), n, k)), Array.from(gptqDequantize(res)), `${dtype} g=${groupSize}: same weights`);
      t.same((await layer.forward(randTensor(r, [3, k]))).shape, [3, n]);
    }
  }
});

t.test('DualScaleLinear.fromGptq keeps both segments and the permutation', (t) => {
  const outlierIdx = [3, 10, 11, 40, 41, 42, 77, 90, 91, 92, 93, 94, 95, 0, 1, 2].sort((a, b) => a - b);
  const res = gptqSync(w, H, { outlierIdx, outlier: { dtype: 'int8', scheme: 'symmetric' }, normal: { dtype: 'uint4', scheme: 'asymmetric', groupSize: 16 } });
  const layer = DualScaleLinear.fromGptq(res);
  t.same(Array.from(layer.outlierIdx), outlierIdx);
  const qw = layer.quantizedWeight();
  const perm = outlierPermutation(Int32Array.from(outlierIdx), k);
  const o = dequantized(qw.outlier!, n, outlierIdx.length);
  const nm = dequantized(qw.normal!, n, k - outlierIdx.length);
  const full = new Float32Array(n * k);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < k; j++) full[i * k + perm[j]] = j < outlierIdx.length ? o[i * outlierIdx.length + j] : nm[i * (k - outlierIdx.length) + j - outlierIdx.length];
  t.same(Array.from(full), Array.from(gptqDequantize(res)));
  t.equal(layer.normalConfig?.dtype, 'int4');
  t.throws(() => DualScaleLinear.fromGptq(gptqSync(w, H) as never), { name: 'TypeError', message: /dual-scale gptq result/ });
  t.throws(() => QuantizedLinear.fromGptq(res as never), { name: 'TypeError', message: /single-quantizer/ });
  t.end();
});

t.test('group sizes the kernels cannot run are clear errors', (t) => {
  const res = gptqSync(w, H, { dtype: 'int4', groupSize: 8 });
  t.throws(() => QuantizedLinear.fromGptq(res), { name: 'RangeError', message: /result.weight.groupSize/ });
  t.end();
});
