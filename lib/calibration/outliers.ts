// Outlier input-channel detection for the dual-scale split (SPEC section 1): column L2 norms of
// W[N_out, K], a MAD z-score or IQR rule, the count rounded up to the alignment and capped at K/2.
import type { Tensor } from '../tensor/tensor.js';
import { describe, expectFiniteNumber, expectInteger, expectOneOf } from '../util/validate.js';
import { options } from './checks.js';
import { columnNorms, columnNormsSync } from './norms.js';
import { medianSorted, quantileSorted, type MedianConvention } from './quantile.js';

export type OutlierMethod = 'mad' | 'iqr';

export interface OutlierOptions {
  /** 'mad' (default, the reference's choice) or 'iqr'. */
  method?: OutlierMethod;
  /** MAD: z-score cut (default 3.5). IQR: the fence multiplier k of Q3 + k IQR (default 1.5). */
  threshold?: number;
  /** Outliers must also exceed minRatio * median (default 1.2). */
  minRatio?: number;
  /** The count is rounded up to a multiple of this (default 32; 1 disables rounding). */
  align?: number;
  /** Median of an even count: 'average' of the middle pair (default) or the 'lower' one (torch.median). */
  median?: MedianConvention;
}

export interface OutlierResult {
  /** Outlier columns, ascending. */
  outlierIdx: Int32Array;
  /** [...outlierIdx, ...the other columns], each segment ascending: the column order of the dual-scale layer. */
  perm: Int32Array;
  /** Column L2 norms c_j. */
  norms: Float64Array;
  /** Columns that passed the test, before rounding and capping. */
  count: number;
  method: OutlierMethod;
  /** median m, MAD (mad) or Q1, Q3 (iqr), and the norm a column must exceed to be detected. */
  stats: { median: number; mad?: number; q1?: number; q3?: number; threshold: number };
}

interface Settings {
  method: OutlierMethod;
  threshold: number;
  minRatio: number;
  align: number;
  median: MedianConvention;
}

function settings(opts: unknown): Settings {
  const o = options(opts);
  const method = o.method === undefined ? 'mad' : expectOneOf(o.method, 'method', ['mad', 'iqr'] as const);
  const threshold = o.threshold === undefined ? (method === 'mad' ? 3.5 : 1.5) : expectFiniteNumber(o.threshold, 'threshold', { min: 0 });
  const minRatio = o.minRatio === undefined ? 1.2 : expectFiniteNumber(o.minRatio, 'minRatio', { min: 0 });
  const align = o.align === undefined ? 32 : expectInteger(o.align, 'align', { min: 1, max: 1 << 20 });
  const median = o.median === undefined ? 'average' : expectOneOf(o.median, 'median', ['average', 'lower'] as const);
  return { method, threshold, minRatio, align, median };
}

/**
 * Detects outlier columns from their L2 norms c (length K), as SPEC section 1:
 * - 'mad': m = median(c), MAD = median(|c - m|); none when MAD < 1e-8; column j is detected when
 *   0.6745 (c_j - m) / MAD > threshold and c_j > minRatio m.
 * - 'iqr': Q1, Q3 = quantiles 0.25 and 0.75 (linear interpolation at q (K - 1)); detected when
 *   c_j > max(Q3 + threshold (Q3 - Q1), minRatio m).
 * With d detected, the outlier count is 0 when d = 0, else min(ceil(d / align) align, floor(K / 2)),
 * taken as the columns with the largest norms (ties: the lower index first). Medians of an even
 * count average the middle pair unless median: 'lower'.
 *
 * @example
 * const { outlierIdx, perm } = detectOutliersFromNorms(norms, { method: 'iqr' });
 */
export function detectOutliersFromNorms(norms: ArrayLike<number>, opts?: OutlierOptions): OutlierResult {
  if (!(Array.isArray(norms) || (ArrayBuffer.isView(norms) && !(norms instanceof DataView)))) {
    throw new TypeError(`Expected an array of column norms for norms but received ${describe(norms)}`);
  }
  const s = settings(opts);
  const c = Float64Array.from(norms as ArrayLike<number>);
  const K = c.length;
  if (K === 0) throw new RangeError('Expected at least one column in norms but received none');
  for (let j = 0; j < K; j++) {
    if (!Number.isFinite(c[j]) || c[j] < 0) {
      throw new RangeError(`Expected finite non-negative column norms (w must be finite) but column ${j} has norm ${c[j]}`);
    }
  }
  const sorted = c.slice().sort();
  const m = medianSorted(sorted, s.median);
  let detected: (cj: number) => boolean;
  let stats: OutlierResult['stats'];
  if (s.method === 'mad') {
    const dev = c.map((v) => Math.abs(v - m)).sort();
    const mad = medianSorted(dev, s.median);
    // Smallest norm passing both tests, for the report: m + threshold MAD / 0.6745 and minRatio m.
    stats = { median: m, mad, threshold: Math.max(m + (s.threshold * mad) / 0.6745, s.minRatio * m) };
    detected = mad < 1e-8 ? () => false : (cj) => (0.6745 * (cj - m)) / mad > s.threshold && cj > s.minRatio * m;
  } else {
    const q1 = quantileSorted(sorted, 0.25);
    const q3 = quantileSorted(sorted, 0.75);
    const fence = Math.max(q3 + s.threshold * (q3 - q1), s.minRatio * m);
    stats = { median: m, q1, q3, threshold: fence };
    detected = (cj) => cj > fence;
  }
  let count = 0;
  for (let j = 0; j < K; j++) if (detected(c[j])) count++;
  const n = count === 0 ? 0 : Math.min(Math.ceil(count / s.align) * s.align, Math.floor(K / 2));
  const byNorm = Array.from({ length: K }, (_, j) => j).sort((a, b) => c[b] - c[a] || a - b);
  const isOutlier = new Uint8Array(K);
  for (let i = 0; i < n; i++) isOutlier[byNorm[i]] = 1;
  const outlierIdx = new Int32Array(n);
  const perm = new Int32Array(K);
  let o = 0;
  let r = n;
  for (let j = 0; j < K; j++) {
    if (isOutlier[j]) {
      outlierIdx[o] = j;
      perm[o++] = j;
    } else {
      perm[r++] = j;
    }
  }
  return { outlierIdx, perm, norms: c, count, method: s.method, stats };
}

/**
 * Outlier input columns of a linear layer's weight W[N_out, K] (float32): the column norms
 * (columnNorms) and detectOutliersFromNorms. Runs the norms off the event loop.
 *
 * @example
 * const r = await detectOutliers(w, { method: 'mad' });
 * r.outlierIdx; // ascending, a multiple of 32 long unless capped at K/2
 * r.perm;       // outliers first, then the others
 */
export async function detectOutliers(w: Tensor<'float32'>, opts?: OutlierOptions): Promise<OutlierResult> {
  settings(opts);
  return detectOutliersFromNorms(await columnNorms(w), opts);
}

/** Synchronous detectOutliers. */
export function detectOutliersSync(w: Tensor<'float32'>, opts?: OutlierOptions): OutlierResult {
  settings(opts);
  return detectOutliersFromNorms(columnNormsSync(w), opts);
}
