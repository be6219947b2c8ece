// Outlier column detection (SPEC section 1) on constructed weights and hand-computed norms.
import t from 'tap';
import { Tensor, detectOutliers, detectOutliersFromNorms, detectOutliersSync } from '../../lib/index.js';
import { gaussian, rng } from './helpers.js';

/** W[n, k] with N(0, 0.02) entries, every column scaled by a mild factor, planted columns by `boost`. */
function weights(n: number, k: number, planted: number[], boost: number, seed: number): Tensor<'float32'> {
  const w = gaussian(n * k, seed, 0.02);
  const r = rng(seed + 1);
  const colScale = Array.from({ length: k }, () => 0.8 + 0.4 * r());
  for (const j of planted) colScale[j] *= boost;
  for (let i = 0; i < n; i++) for (let j = 0; j < k; j++) w[i * k + j] *= colScale[j];
  return new Tensor('float32', [n, k], w);
}

/** Independent reference: norms, the rule, the rounding and cap, the top columns. */
function reference(w: Tensor<'float32'>, method: 'mad' | 'iqr', align = 32) {
  const [n, k] = w.shape;
  const c = Array.from({ length: k }, (_, j) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += w.data[i * k + j] ** 2;
    return Math.sqrt(s);
  });
  const med = (v: number[]) => {
    const s = [...v].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const q = (v: number[], p: number) => {
    const s = [...v].sort((a, b) => a - b);
    const pos = p * (s.length - 1);
    const f = Math.floor(pos);
    return f + 1 < s.length ? s[f] + (pos - f) * (s[f + 1] - s[f]) : s[f];
  };
  const m = med(c);
  let hit: boolean[];
  if (method === 'mad') {
    const mad = med(c.map((v) => Math.abs(v - m)));
    hit = c.map((v) => mad >= 1e-8 && (0.6745 * (v - m)) / mad > 3.5 && v > 1.2 * m);
  } else {
    const q1 = q(c, 0.25);
    const q3 = q(c, 0.75);
    const fence = Math.max(q3 + 1.5 * (q3 - q1), 1.2 * m);
    hit = c.map((v) => v > fence);
  }
  const count = hit.filter(Boolean).length;
  const nOut = count === 0 ? 0 : Math.min(Math.ceil(count / align) * align, Math.floor(k / 2));
  const order = c.map((v, j) => [v, j]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const idx = order.slice(0, nOut).map((e) => e[1]).sort((a, b) => a - b);
  const rest = Array.from({ length: k }, (_, j) => j).filter((j) => !idx.includes(j));
  return { count, idx, perm: [...idx, ...rest], norms: c };
}

t.test('planted outlier columns are found by MAD and IQR, rounded up to 32, largest norms first', async (t) => {
  const planted = [3, 17, 100, 101, 250];
  const w = weights(64, 256, planted, 20, 1);
  for (const method of ['mad', 'iqr'] as const) {
    const r = await detectOutliers(w, { method });
    const e = reference(w, method);
    t.equal(r.count, 5, `${method}: the planted five`);
    t.equal(r.count, e.count);
    t.equal(r.outlierIdx.length, 32, `${method}: rounded up to 32`);
    t.same(Array.from(r.outlierIdx), e.idx);
    t.same(Array.from(r.perm), e.perm);
    for (const j of planted) t.ok(r.outlierIdx.includes(j), `${method} includes ${j}`);
    t.equal(r.method, method);
    t.ok(r.norms.every((v, j) => Math.abs(v - e.norms[j]) <= 1e-12 * e.norms[j]));
  }
  t.end();
});

t.test('the count rounds up to the alignment: 40 detected become 64', (t) => {
  const planted = Array.from({ length: 40 }, (_, i) => i * 7);
  const w = weights(16, 512, planted, 30, 2);
  const r = detectOutliersSync(w);
  t.equal(r.count, 40);
  t.equal(r.outlierIdx.length, 64);
  t.same(Array.from(r.outlierIdx), reference(w, 'mad').idx);
  const exact = detectOutliersSync(w, { align: 1 });
  t.same(Array.from(exact.outlierIdx), planted);
  t.end();
});

t.test('the count is capped at floor(K / 2)', (t) => {
  const w = weights(8, 41, [1, 5, 9], 25, 3);
  const r = detectOutliersSync(w);
  t.equal(r.count, 3);
  t.equal(r.outlierIdx.length, 20);
  t.same(Array.from(r.outlierIdx), reference(w, 'mad').idx);
  const one = detectOutliersSync(new Tensor('float32', [2, 1], new Float32Array([1, 2])));
  t.equal(one.outlierIdx.length, 0, 'K = 1 allows none');
  t.end();
});

t.test('no outliers when MAD < 1e-8, even with a huge column', (t) => {
  const k = 64;
  const w = new Float32Array(4 * k).fill(0.5);
  for (let i = 0; i < 4; i++) w[i * k + 10] = 50;
  const r = detectOutliersSync(new Tensor('float32', [4, k], w));
  t.equal(r.count, 0);
  t.equal(r.outlierIdx.length, 0);
  t.equal(r.stats.mad, 0);
  t.same(Array.from(r.perm), Array.from({ length: k }, (_, j) => j));
  // IQR has no such guard: the same column is caught.
  const iqr = detectOutliersSync(new Tensor('float32', [4, k], w), { method: 'iqr', align: 1 });
  t.same(Array.from(iqr.outlierIdx), [10]);
  t.end();
});

t.test('hand-computed norms: medians of even counts, MAD and IQR statistics, ties', (t) => {
  const norms = [1, 2, 3, 4, 5, 6, 7, 100];
  const mad = detectOutliersFromNorms(norms);
  t.same(mad.stats.median, 4.5); // average of the middle pair
  t.same(mad.stats.mad, 2); // |c - 4.5| sorted: 0.5 0.5 1.5 1.5 2.5 2.5 3.5 95.5
  t.equal(mad.count, 1);
  t.same(Array.from(mad.outlierIdx), [4, 5, 6, 7], 'rounded to 32, capped at 4: the four largest');
  t.same(Array.from(mad.perm), [4, 5, 6, 7, 0, 1, 2, 3]);
  t.same(Array.from(detectOutliersFromNorms(norms, { align: 1 }).outlierIdx), [7]);
  const lower = detectOutliersFromNorms(norms, { median: 'lower' });
  t.equal(lower.stats.median, 4);
  t.equal(lower.stats.mad, 2);
  const iqr = detectOutliersFromNorms(norms, { method: 'iqr', align: 1 });
  t.same([iqr.stats.q1, iqr.stats.q3, iqr.stats.threshold], [2.75, 6.25, 11.5]);
  t.same(Array.from(iqr.outlierIdx), [7]);
  // minRatio 25 asks for c > 112.5 (25 * 4.5); a z-score cut of 40 is above 100's 32.2.
  t.equal(detectOutliersFromNorms(norms, { minRatio: 25 }).count, 0);
  t.equal(detectOutliersFromNorms(norms, { threshold: 40 }).count, 0);
  // Ties: the lower index wins the last slot.
  const tie = detectOutliersFromNorms([1, 2, 3, 4, 5, 9, 9, 100], { align: 2 });
  t.same(Array.from(tie.outlierIdx), [5, 7]);
  t.end();
});

t.test('perm is a permutation with the outlier segment first', (t) => {
  const w = weights(32, 300, [0, 299, 150], 15, 9);
  const r = detectOutliersSync(w);
  const seen = new Set(r.perm);
  t.equal(seen.size, 300);
  t.same(Array.from(r.perm.subarray(0, r.outlierIdx.length)), Array.from(r.outlierIdx));
  const rest = Array.from(r.perm.subarray(r.outlierIdx.length));
  t.same(rest, [...rest].sort((a, b) => a - b));
  t.end();
});
