import t from 'tap';
import { CausalDit } from '../../lib/model/dit.js';
import { ChunkScheduler } from '../../lib/schedule/scheduler.js';
import { calibrate, CalibrationStats, complement, gatherColumns, perTokenSse } from '../../lib/method/calibrate.js';
import { detectModelOutliers } from '../../lib/method/quantize.js';
import type { Linear } from '../../lib/gemm/linear.js';
import { Tensor } from '../../lib/tensor/tensor.js';
import { qparamsFromRange, quantizeValue, dequantizeValue } from '../../lib/primitives/qparams.js';
import { small } from './fixtures.js';


/** Every input of layer `name` during generation of (prompt, seed), with its chunk: recorded by a plain wrapper. */
async function recordInputs(model: CausalDit, name: string, prompt: string, seed: number) {
  const seen: { x: Float32Array; rows: number; chunk: number }[] = [];
  const inner = model.linear(name);
  let scheduler: ChunkScheduler;
  const recorder: Linear = {
    inFeatures: inner.inFeatures, outFeatures: inner.outFeatures, weightBytes: inner.weightBytes, bias: inner.bias,
    forward: async (x) => {
      seen.push({ x: Float32Array.from(x.data as Float32Array), rows: x.size / inner.inFeatures, chunk: scheduler.current!.chunk });
      return inner.forward(x);
    },
    forwardSync: (x) => inner.forwardSync(x),
  };
  scheduler = new ChunkScheduler(model, ChunkScheduler.everyChunk({ [name]: recorder }));
  await scheduler.generate({ prompt, seed });
  return seen;
}

/** Per-token int8 fake-quantization error of one row, from the TypeScript mirror of the kernels' semantics. */
function rowSse(row: Float32Array): number {
  let lo = Infinity, hi = -Infinity;
  for (const v of row) (lo = Math.min(lo, v)), (hi = Math.max(hi, v));
  const { scale, zeroPoint } = qparamsFromRange(lo, hi, 'int8', 'asymmetric');
  let s = 0;
  for (const v of row) s += (dequantizeValue(quantizeValue(v, scale, zeroPoint, 'int8'), scale, zeroPoint) - v) ** 2;
  return s;
}

t.test('calibration statistics equal the same quantities computed from every recorded input', async (t) => {
  const model = CausalDit.synthetic(small, { seed: 3 });
  const outliers = detectModelOutliers(model);
  const dualName = Object.keys(outliers).find((n) => n.endsWith('ffn.0') || n.endsWith('.o')) ?? Object.keys(outliers)[0];
  t.ok(dualName, 'the synthetic model has a layer with outlier columns');
  const singleName = model.blockLinearNames.find((n) => !outliers[n] && !n.includes('cross_attn.k') && !n.includes('cross_attn.v'))!;
  const chunkWeights = [2, 0.5, 0.5];
  const stats = await calibrate(model, { prompts: ['a red fox'], seed: 5, chunkWeights, outliers, bins: 512 });
  t.same([...stats.layers.keys()], model.blockLinearNames);

  for (const name of [singleName, dualName]) {
    const s = stats.layer(name);
    const inputs = await recordInputs(model, name, 'a red fox', 5);
    const k = model.linear(name).inFeatures;
    // Gram: sum_r w_chunk x_r x_r^T in float64.
    const gram = new Float64Array(k * k);
    const sse = new Float64Array(3);
    const perChunk = [0, 1, 2].map(() => ({ count: 0, min: Infinity, max: -Infinity }));
    for (const { x, rows, chunk } of inputs) {
      for (let r = 0; r < rows; r++) {
        for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) gram[i * k + j] += chunkWeights[chunk] * x[r * k + i] * x[r * k + j];
      }
      const st = perChunk[chunk];
      for (const v of x) (st.count++, (st.min = Math.min(st.min, v)), (st.max = Math.max(st.max, v)));
      const idx = s.segments ? [s.segments.outlierIdx, complement(s.segments.outlierIdx, k)] : [Int32Array.from({ length: k }, (_, j) => j)];
      for (const cols of idx) for (let r = 0; r < rows; r++) sse[chunk] += rowSse(Float32Array.from(cols, (c) => x[r * k + c]));
    }
    let maxErr = 0, maxRef = 0;
    gram.forEach((v, i) => ((maxErr = Math.max(maxErr, Math.abs(v - s.gram.matrix[i]))), (maxRef = Math.max(maxRef, Math.abs(v)))));
    t.ok(maxErr <= 1e-5 * maxRef, `${name}: weighted Gram within 1e-5 (max error ${maxErr} of ${maxRef})`);
    t.equal(s.gram.weightSum, inputs.reduce((a, { rows, chunk }) => a + rows * chunkWeights[chunk], 0), `${name}: Gram weight sum`);
    for (let c = 0; c < 3; c++) {
      t.same(s.input.stats(c), { count: perChunk[c].count, nanCount: 0, min: perChunk[c].min, max: perChunk[c].max }, `${name}: chunk ${c} min/max/count`);
      t.ok(Math.abs(s.tokenSse[c] - sse[c]) <= 1e-9 * sse[c], `${name}: chunk ${c} per-token error ${s.tokenSse[c]} vs ${sse[c]}`);
    }
    if (name === dualName) {
      const seg = s.segments!;
      t.same([...seg.outlierIdx], [...outliers[name]]);
      let lo = Infinity, hi = -Infinity;
      for (const { x, rows } of inputs) for (let r = 0; r < rows; r++) for (const c of seg.outlierIdx) (lo = Math.min(lo, x[r * k + c])), (hi = Math.max(hi, x[r * k + c]));
      t.equal(seg.outlier.stats().min, lo, 'the outlier observer sees exactly the outlier columns');
      t.equal(seg.outlier.stats().max, hi);
      t.ok(s.gramUniform, 'dual candidates keep a uniform Gram');
      t.equal(s.gramUniform!.weightSum, inputs.reduce((a, { rows }) => a + rows, 0));
    } else {
      t.equal(s.segments, null);
      t.equal(s.gramUniform, null);
    }
  }
});

t.test('statistics of two processes merge into those of one', async (t) => {
  const model = CausalDit.synthetic(small, { seed: 3 });
  const outliers = detectModelOutliers(model);
  const opts = { chunkWeights: [1.5, 1, 0.5], outliers, bins: 256 };
  const whole = await calibrate(model, { ...opts, prompts: ['a red fox', 'ocean waves at dusk'], seed: 10 });
  const a = await calibrate(model, { ...opts, prompts: ['a red fox'], seed: 10 });
  const b = await calibrate(model, { ...opts, prompts: ['ocean waves at dusk'], seed: 11 });
  t.throws(() => CalibrationStats.fromJSON(b.toJSON()).merge(CalibrationStats.fromJSON(b.toJSON())), { name: 'RangeError', message: /seed/ });
  const merged = CalibrationStats.fromJSON(JSON.parse(JSON.stringify(a.toJSON()))).merge(CalibrationStats.fromJSON(JSON.parse(JSON.stringify(b.toJSON()))));
  t.same(merged.prompts, whole.prompts);
  for (const [name, s] of whole.layers) {
    const m = merged.layer(name);
    t.same(m.input.toJSON(), s.input.toJSON(), `${name}: histograms and ranges identical`);
    if (s.segments) t.same(m.segments!.normal.toJSON(), s.segments.normal.toJSON());
    let err = 0, ref = 0;
    s.gram.matrix.forEach((v, i) => ((err = Math.max(err, Math.abs(v - m.gram.matrix[i]))), (ref = Math.max(ref, Math.abs(v)))));
    t.ok(err <= 1e-12 * ref, `${name}: Gram equal up to the order of float64 additions`);
    s.tokenSse.forEach((v, c) => t.ok(Math.abs(v - m.tokenSse[c]) <= 1e-12 * v));
  }
});

t.test('helpers and bad input', async (t) => {
  const x = new Tensor('float32', [2, 4], Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
  t.same([...gatherColumns(x, Int32Array.from([1, 3])).data], [2, 4, 6, 8]);
  t.same([...complement(Int32Array.from([1, 3]), 5)], [0, 2, 4]);
  const row = Float32Array.from([0.1, -0.37, 2.5, 1e-3]);
  t.ok(Math.abs((await perTokenSse(new Tensor('float32', [1, 4], row))) - rowSse(row)) < 1e-15);
  const model = CausalDit.synthetic(small, { seed: 3 });
  await t.rejects(calibrate(model, { prompts: [1 as unknown as string] }), { name: 'TypeError', message: /options.prompts/ });
  await t.rejects(calibrate(model, { prompts: ['a'], layers: ['blocks.9.ffn.0'] }), { name: 'RangeError', message: /options.layers/ });
  await t.rejects(calibrate(model, { prompts: ['a'], chunkWeights: [1] }), { name: 'RangeError', message: /options.chunkWeights/ });
  await t.rejects(calibrate(model, { prompts: ['a'], outliers: { 'blocks.0.ffn.0': [1, 2] as unknown as Int32Array } }), { name: 'TypeError', message: /options.outliers/ });
  t.throws(() => CalibrationStats.fromJSON({ type: 'CalibrationStats', version: 2 }), { name: 'RangeError', message: /version 2/ });
  t.throws(() => CalibrationStats.fromJSON({ type: 'Gram' }), { name: 'TypeError', message: /CalibrationStats/ });
});
