// MSE clip search against brute-force TypeScript loops over the quant_math mirror.
import t from 'tap';
import { Histogram, Tensor, mseChannelClipSearch, mseChannelClipSearchSync, mseClipSearch, mseClipSearchSync, quantileSorted } from '../../lib/index.js';
import { qparamsFromRange, type Scheme } from '../../lib/primitives/qparams.js';
import type { QuantDType } from '../../lib/tensor/dtype.js';
import { close, gaussian, onEveryIsa, onEveryIsaAsync, refMse } from './helpers.js';

const DTYPES: QuantDType[] = ['int8', 'uint8', 'int4', 'uint4'];
const SCHEMES: Scheme[] = ['asymmetric', 'symmetric'];
const CANDIDATES: Array<[number, number]> = [[-4, 4], [-2.5, 3.1], [-1, 1], [0, 0], [0.5, 2], [-3.75, -0.25], [-0.0625 * 127, 0.0625 * 127]];

function argmin(v: ArrayLike<number>): number {
  let b = 0;
  for (let i = 1; i < v.length; i++) if (v[i] < v[b]) b = i;
  return b;
}

/** The best index, unless the two smallest errors are too close to order reliably (then -1). */
function clearBest(v: ArrayLike<number>): number {
  const b = argmin(v);
  for (let i = 0; i < v.length; i++) if (i !== b && close(v[i], v[b], 1e-9)) return -1;
  return b;
}

t.test('per tensor on raw values: every dtype, scheme and candidate matches the loop', (t) => {
  onEveryIsa((isa) => {
    for (const n of [1, 7, 8, 23, 4099, 40001]) {
      const x = gaussian(n, n, 1.3);
      // Exact ties for the power-of-two scale of the last candidate (2^-4): (k + 0.5) / 16.
      for (let i = 0; i < Math.min(n, 64); i += 2) x[i] = (i - 32 + 0.5) / 16;
      if (n > 10) x[5] = NaN;
      for (const dtype of DTYPES) {
        for (const scheme of SCHEMES) {
          const r = mseClipSearchSync(new Tensor('float32', [n], x), { candidates: CANDIDATES, dtype, scheme });
          const ref = CANDIDATES.map(([lo, hi]) => refMse(x, null, lo, hi, dtype, scheme));
          const ok = ref.every((e, c) => close(r.errors[c], e, 1e-10, 1e-300));
          t.ok(ok, `${isa} n=${n} ${dtype} ${scheme}`);
          const b = clearBest(ref);
          if (b >= 0) t.equal(r.best, b);
          t.same(
            { scale: r.scale, zeroPoint: r.zeroPoint },
            qparamsFromRange(CANDIDATES[r.best][0], CANDIDATES[r.best][1], dtype, scheme),
          );
          t.equal(r.nanCount, n > 10 ? 1 : 0);
        }
      }
    }
  });
  t.end();
});

t.test('per tensor with row weights (chunk weights per token)', async (t) => {
  await onEveryIsaAsync(async (isa) => {
    const rows = 61;
    const cols = 333;
    const x = gaussian(rows * cols, 3, 2);
    const rw = Array.from({ length: rows }, (_, r) => (r < 20 ? 3.5 : 0.25));
    const perElement = Array.from({ length: rows * cols }, (_, i) => rw[Math.floor(i / cols)]);
    const r = await mseClipSearch(new Tensor('float32', [rows, cols], x), { candidates: CANDIDATES, dtype: 'int4', rowWeights: rw });
    CANDIDATES.forEach(([lo, hi], c) => t.ok(close(r.errors[c], refMse(x, perElement, lo, hi, 'int4', 'asymmetric'), 1e-10), `${isa} candidate ${c}`));
    t.ok(close(r.weightSum, 20 * cols * 3.5 + 41 * cols * 0.25, 1e-12));
  });
});

t.test('per tensor from a histogram: bins are samples at their centres weighted by counts', (t) => {
  onEveryIsa((isa) => {
    const h = new Histogram({ lo: -5, hi: 5, bins: 32768 });
    h.addSync(Tensor.fromArray(gaussian(60000, 8, 1.5)), { weight: 0.7 });
    h.addSync(Tensor.fromArray(gaussian(1000, 9, 0.1)), { weight: 2 });
    const centres: number[] = [];
    const weights: number[] = [];
    for (let i = 0; i < h.bins; i++) {
      if (h.counts[i] === 0) continue;
      centres.push(Math.fround(-5 + (i + 0.5) * (10 / 32768)));
      weights.push(h.counts[i]);
    }
    for (const scheme of SCHEMES) {
      const r = mseClipSearchSync(h, { candidates: CANDIDATES, dtype: 'uint8', scheme });
      CANDIDATES.forEach(([lo, hi], c) => t.ok(close(r.errors[c], refMse(centres, weights, lo, hi, 'uint8', scheme), 1e-10), `${isa} ${scheme} candidate ${c}`));
    }
  });
  t.end();
});

function refChannel(w: Float32Array, rows: number, cols: number, pcts: number[], dtype: QuantDType, scheme: Scheme) {
  return Array.from({ length: rows }, (_, r) => {
    const row = w.subarray(r * cols, (r + 1) * cols);
    const sorted = Float64Array.from(row).sort();
    const cands = pcts.map((p) => {
      const lo = Math.fround(quantileSorted(sorted, 1 - p));
      const hi = Math.fround(quantileSorted(sorted, p));
      return { lo, hi, mse: refMse(row, null, lo, hi, dtype, scheme), ...qparamsFromRange(lo, hi, dtype, scheme) };
    });
    return { cands, best: argmin(cands.map((c) => c.mse)), clear: clearBest(cands.map((c) => c.mse)) };
  });
}

t.test('per channel: percentile clips of each row, best by MSE, against a sort-based loop', async (t) => {
  const shapes: Array<[number, number]> = [[1, 1], [3, 2], [5, 9], [4, 17], [33, 100], [17, 1536], [130, 257]];
  const pcts = [0.999, 0.9999, 0.99999, 0.9, 0.75, 1];
  await onEveryIsaAsync(async (isa) => {
    for (const [rows, cols] of shapes) {
      const w = gaussian(rows * cols, rows + cols, 0.02);
      // Heavy tails so that clipping matters.
      for (let i = 0; i < w.length; i += 97) w[i] *= 40;
      for (const [dtype, scheme] of [['int8', 'asymmetric'], ['int4', 'symmetric'], ['uint4', 'asymmetric']] as Array<[QuantDType, Scheme]>) {
        const r = await mseChannelClipSearch(new Tensor('float32', [rows, cols], w), { dtype, scheme, percentiles: pcts });
        const ref = refChannel(w, rows, cols, pcts, dtype, scheme);
        let bad = 0;
        for (let i = 0; i < rows; i++) {
          const e = ref[i];
          for (let c = 0; c < pcts.length; c++) if (!close(r.errors[i * pcts.length + c], e.cands[c].mse, 1e-10, 1e-300)) bad++;
          const chosen = e.cands[r.choice[i]];
          if (e.clear >= 0 && r.choice[i] !== e.clear) bad++;
          if (r.scale[i] !== chosen.scale || r.zeroPoint[i] !== chosen.zeroPoint || r.lo[i] !== chosen.lo || r.hi[i] !== chosen.hi) bad++;
        }
        t.equal(bad, 0, `${isa} [${rows}, ${cols}] ${dtype} ${scheme}`);
      }
    }
  });
});

t.test('per channel defaults: int8 asymmetric over 0.999 / 0.9999 / 0.99999', (t) => {
  const w = gaussian(8 * 4096, 77, 0.05);
  const r = mseChannelClipSearchSync(new Tensor('float32', [8, 4096], w));
  t.same(Array.from(r.percentiles), [0.999, 0.9999, 0.99999]);
  t.equal(r.dtype, 'int8');
  t.equal(r.scheme, 'asymmetric');
  t.equal(r.errors.length, 24);
  t.end();
});
