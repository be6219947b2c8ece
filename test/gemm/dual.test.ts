import t from 'tap';
import { DualScaleLinear, QuantizedLinear, Tensor, detectOutliersSync, outlierPermutation, setIsa, type ActivationQuantOptions } from '../../lib/index.js';
import type { Scheme } from '../../lib/primitives/qparams.js';
import { type ActRef, firstOutside, isaPaths, useIsa, resetIsa, quantizeWeightRef, quantizedLinearRef, randInt, randTensor, rng } from './reference.js';

// Error bounds as in quantized.test.ts: fast path (G + 4) 2^-24 (|b| + sum |group terms|); float GEMMs
// over dequantized values (K + 8) 2^-24 (|b| + sum |products|).
const U = 2 ** -24;

interface Seg {
  dtype: 'int8' | 'int4';
  scheme: Scheme;
  groupSize: number;
  act: ActRef;
}

function actOption(a: ActRef): ActivationQuantOptions {
  return a.type === 'dynamic' ? { type: 'dynamic', dtype: a.dtype, scheme: a.scheme } : { type: 'static', dtype: a.dtype, scale: a.scale!, zeroPoint: a.zeroPoint! };
}

function segOption(s: Seg) {
  return { weight: { dtype: s.dtype, scheme: s.scheme, ...(s.groupSize ? { groupSize: s.groupSize } : {}) }, activation: actOption(s.act) };
}

function randomSeg(r: () => number): Seg {
  const dtype = r() < 0.5 ? 'int8' : 'int4';
  const actDtype = r() < 0.5 ? 'int8' : 'uint8';
  const act: ActRef =
    r() < 0.75
      ? { type: 'dynamic', dtype: actDtype, scheme: r() < 0.5 ? 'symmetric' : 'asymmetric' }
      : { type: 'static', dtype: actDtype, scheme: 'asymmetric', scale: 0.03, zeroPoint: actDtype === 'int8' ? 1 : 129 };
  return { dtype, scheme: r() < 0.5 ? 'symmetric' : 'asymmetric', groupSize: r() < 0.5 ? 0 : 16 * randInt(r, 1, 4), act };
}

function randomOutliers(r: () => number, k: number, count: number): number[] {
  const all = Array.from({ length: k }, (_, j) => j);
  for (let i = k - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, count).sort((a, b) => a - b);
}

/** Outlier columns get large weights (as planted outliers are) so the two scales differ. */
function weightWithOutliers(r: () => number, n: number, k: number, outliers: number[]): Tensor<'float32'> {
  const w = randTensor(r, [n, k]);
  for (const j of outliers) for (let i = 0; i < n; i++) w.data[i * k + j] *= 20;
  return w;
}

t.test('the fused dual-scale layer equals the reference: exact sums, both scales, every ISA path', async (t) => {
  const r = rng(21);
  for (const isa of isaPaths('gemmInt')) {
    useIsa(isa);
    for (let i = 0; i < 16; i++) {
      const k = randInt(r, 1, 300);
      const n = randInt(r, 1, 40);
      const m = i === 0 ? 290 : randInt(r, 1, 40);
      const count = [0, 1, k, k - 1, 32, randInt(r, 0, k)][i % 6];
      const nOut = Math.max(0, Math.min(k, count));
      const outlierIdx = randomOutliers(r, k, nOut);
      const so = randomSeg(r);
      const sn = randomSeg(r);
      const w = weightWithOutliers(r, n, k, outlierIdx);
      const x = randTensor(r, [m, k], 1.5);
      const bias = r() < 0.5 ? randTensor(r, [n]).data : null;
      const layer = DualScaleLinear.fromFloat(w, { outlierIdx, outlier: segOption(so), normal: segOption(sn), ...(bias ? { bias } : {}) });
      const label = `${isa.name} #${i} m=${m} n=${n} k=${k} outliers=${nOut} ${so.dtype}/${sn.dtype}`;
      const perm = Array.from(outlierPermutation(Int32Array.from(outlierIdx), k));
      const normalIdx = perm.slice(nOut);
      const segs = [];
      if (nOut > 0) {
        const q = quantizeWeightRef(w, outlierIdx, so.dtype, so.scheme, so.groupSize);
        segs.push({ cols: outlierIdx, act: so.act, q: q.q, scale: q.scale, zero: q.zero, groupSize: so.groupSize });
      }
      if (nOut < k) {
        const q = quantizeWeightRef(w, normalIdx, sn.dtype, sn.scheme, sn.groupSize);
        segs.push({ cols: normalIdx, act: sn.act, q: q.q, scale: q.scale, zero: q.zero, groupSize: sn.groupSize });
      }
      const ref = quantizedLinearRef(x, n, segs, bias);
      const dbg = layer.debugAccumulatorsSync(x);
      t.same(Array.from(dbg.actScale.data), ref.actScale, `${label}: activation scale per segment`);
      t.same(Array.from(dbg.actZeroPoint.data), ref.actZero, `${label}: activation zero point per segment`);
      t.equal(firstOutside(dbg.acc.data, ref.acc, () => 0), -1, `${label}: exact int32 sums`);
      const y = await layer.forward(x);
      const bad = firstOutside(y.data, ref.y, (j) => (ref.groups + 4) * U * ref.mag[j]);
      t.equal(bad, -1, `${label}: output${bad >= 0 ? ` element ${bad}: ${y.data[bad]} vs ${ref.y[bad]}` : ''}`);
      const qw = layer.quantizedWeight();
      t.same(qw.outlier === null, nOut === 0);
      t.same(qw.normal === null, nOut === k);
      t.same(Array.from(qw.outlierIdx), outlierIdx);
    }
  }
  resetIsa();
});

t.test('dual-scale equals two emulated GEMMs plus an add', async (t) => {
  const r = rng(22);
  const n = 29;
  const k = 203;
  const m = 17;
  const outlierIdx = randomOutliers(r, k, 32);
  const w = weightWithOutliers(r, n, k, outlierIdx);
  const x = randTensor(r, [m, k]);
  const bias = randTensor(r, [n]).data;
  const so: Seg = { dtype: 'int8', scheme: 'symmetric', groupSize: 0, act: { type: 'dynamic', dtype: 'int8', scheme: 'asymmetric' } };
  const sn: Seg = { dtype: 'int4', scheme: 'asymmetric', groupSize: 64, act: { type: 'dynamic', dtype: 'int8', scheme: 'asymmetric' } };
  const dual = DualScaleLinear.fromFloat(w, { outlierIdx, outlier: segOption(so), normal: segOption(sn), bias });
  const normalIdx = Array.from(outlierPermutation(Int32Array.from(outlierIdx), k)).slice(32);
  const take = (src: Tensor<'float32'>, rows: number, cols: number[]) => {
    const out = new Float32Array(rows * cols.length);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols.length; j++) out[i * cols.length + j] = src.data[i * k + cols[j]];
    return new Tensor('float32', [rows, cols.length], out);
  };
  const lo = QuantizedLinear.fromFloat(take(w, n, outlierIdx), { ...segOption(so), mode: 'emulated' });
  const ln = QuantizedLinear.fromFloat(take(w, n, normalIdx), { ...segOption(sn), bias, mode: 'emulated' });
  const yo = await lo.forward(take(x, m, outlierIdx));
  const yn = await ln.forward(take(x, m, normalIdx));
  const ref = quantizedLinearRef(x, n, [
    { cols: outlierIdx, act: so.act, ...qref(w, outlierIdx, so), groupSize: so.groupSize },
    { cols: normalIdx, act: sn.act, ...qref(w, normalIdx, sn), groupSize: sn.groupSize },
  ], bias);
  for (const isa of isaPaths('gemmInt')) {
    useIsa(isa);
    const y = await dual.forward(x);
    const bad = firstOutside(y.data, Array.from(yo.data, (v, i) => v + yn.data[i]), (j) => 2 * (k + 8) * U * ref.magK[j]);
    t.equal(bad, -1, `${isa.name}: fused == emulated(outlier) + emulated(normal)`);
    const ye = await dual.forward(x, { mode: 'emulated' });
    t.equal(firstOutside(ye.data, ref.y, (j) => (k + 8) * U * ref.magK[j]), -1, `${isa.name}: emulated dual layer`);
  }
  resetIsa();
});

function qref(w: Tensor<'float32'>, cols: number[], s: Seg) {
  const q = quantizeWeightRef(w, cols, s.dtype, s.scheme, s.groupSize);
  return { q: q.q, scale: q.scale, zero: q.zero };
}

t.test('without outliers the dual-scale layer is the plain quantized layer, bit for bit', async (t) => {
  const r = rng(23);
  const w = randTensor(r, [21, 130]);
  const x = randTensor(r, [11, 130]);
  const bias = randTensor(r, [21]).data;
  for (const weight of [{ dtype: 'int8' as const }, { dtype: 'int4' as const, groupSize: 32, scheme: 'asymmetric' as const }]) {
    const plain = QuantizedLinear.fromFloat(w, { weight, bias });
    const dual = DualScaleLinear.fromFloat(w, { outlierIdx: [], normal: { weight }, bias });
    t.equal(dual.outlierCount, 0);
    t.same((await dual.forward(x)).data, (await plain.forward(x)).data, `${weight.dtype}: outputs`);
    t.same(dual.debugAccumulatorsSync(x).acc.data, plain.debugAccumulatorsSync(x).acc.data, `${weight.dtype}: sums`);
    t.equal(dual.weightBytes, plain.weightBytes);
  }
});

t.test('fromQuantized rebuilds a dual-scale layer from its segments', async (t) => {
  const r = rng(24);
  const k = 100;
  const outlierIdx = randomOutliers(r, k, 20);
  const w = weightWithOutliers(r, 13, k, outlierIdx);
  const x = randTensor(r, [5, k]);
  const a = DualScaleLinear.fromFloat(w, { outlierIdx, outlier: { weight: { dtype: 'int8' } }, normal: { weight: { dtype: 'int4', groupSize: 16 } } });
  const qw = a.quantizedWeight();
  const b = DualScaleLinear.fromQuantized({
    inFeatures: k,
    outlierIdx: qw.outlierIdx,
    outlier: { weight: qw.outlier!.q, scale: qw.outlier!.scale, zeroPoint: qw.outlier!.zeroPoint },
    normal: { weight: qw.normal!.q, scale: qw.normal!.scale, zeroPoint: qw.normal!.zeroPoint, groupSize: 16 },
  });
  t.same((await b.forward(x)).data, (await a.forward(x)).data);
  t.throws(() => DualScaleLinear.fromQuantized({ inFeatures: k, outlierIdx: qw.outlierIdx, normal: { weight: qw.normal!.q, scale: qw.normal!.scale } }), {
    name: 'TypeError',
    message: /options.outlier/,
  });
});

t.test('detect: the outlier columns come from the weight through outlier detection', async (t) => {
  const r = rng(26);
  const k = 256;
  const planted = randomOutliers(r, k, 20);
  const w = weightWithOutliers(r, 24, k, planted);
  const x = randTensor(r, [6, k]);
  for (const method of ['mad', 'iqr'] as const) {
    const layer = DualScaleLinear.fromFloat(w, { detect: { method }, normal: { weight: { dtype: 'int4', groupSize: 64 } } });
    const det = detectOutliersSync(w, { method });
    t.same(Array.from(layer.outlierIdx), Array.from(det.outlierIdx), `${method}: the detector's columns`);
    t.equal(layer.outlierCount, 32, `${method}: 20 planted columns, rounded up to 32`);
    t.ok(planted.every((j) => layer.outlierIdx.includes(j)), `${method}: every planted column is an outlier`);
    t.equal(layer.detection?.method, method);
    const given = DualScaleLinear.fromFloat(w, { outlierIdx: det.outlierIdx, normal: { weight: { dtype: 'int4', groupSize: 64 } } });
    t.same((await layer.forward(x)).data, (await given.forward(x)).data);
  }
  t.throws(() => DualScaleLinear.fromFloat(w, { outlierIdx: [1], detect: {} }), { name: 'TypeError', message: /either options.outlierIdx or options.detect.*both/ });
  t.throws(() => DualScaleLinear.fromFloat(w, {} as never), { name: 'TypeError', message: /neither/ });
  t.throws(() => DualScaleLinear.fromFloat(w, { detect: { method: 'zscore' as never } }), { name: 'RangeError', message: /method/ });
});

t.test('bad outlierIdx and segment options are clear errors', (t) => {
  const r = rng(25);
  const w = randTensor(r, [4, 10]);
  const cases: Array<[unknown, string, RegExp]> = [
    [[3, 10], 'RangeError', /options.outlierIdx values between 0 and 9.*element 1 is 10/],
    [[-1], 'RangeError', /options.outlierIdx/],
    [[2, 2], 'RangeError', /strictly ascending.*element 1 \(2\) follows 2/],
    [[5, 1], 'RangeError', /strictly ascending/],
    [[1.5], 'TypeError', /integers in options.outlierIdx/],
    ['0,1', 'TypeError', /options.outlierIdx/],
    [null, 'TypeError', /options.outlierIdx/],
  ];
  for (const [outlierIdx, name, message] of cases) {
    t.throws(() => DualScaleLinear.fromFloat(w, { outlierIdx: outlierIdx as never }), { name, message }, `outlierIdx ${JSON.stringify(outlierIdx)}`);
  }
  t.throws(() => DualScaleLinear.fromFloat(w, { outlierIdx: [1], outlier: { weight: { groupSize: 20 } } }), { name: 'RangeError', message: /options.outlier.weight.groupSize/ });
  t.throws(() => DualScaleLinear.fromFloat(w, { outlierIdx: [1], normal: { weight: { dtype: 'int2' as never } } }), { name: 'RangeError', message: /options.normal.weight.dtype/ });
  t.throws(() => DualScaleLinear.fromFloat(w, { outlierIdx: [1], normal: { activation: { type: 'static', scale: NaN, zeroPoint: 0 } } }), {
    name: 'RangeError',
    message: /options.normal.activation.scale/,
  });
  t.throws(() => DualScaleLinear.fromFloat(w, { outlierIdx: [1], outlier: 3 as never }), { name: 'TypeError', message: /options.outlier/ });
  t.end();
});
