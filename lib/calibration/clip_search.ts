// MSE-optimal clipping ranges: per tensor over given candidate ranges (raw values or a histogram),
// and per output channel of a weight over percentile clips.
import { DTYPE_CODE, type QuantDType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { qparamsFromRange, type Scheme } from '../primitives/qparams.js';
import { describe, expectFiniteNumber } from '../util/validate.js';
import { expectDType, expectFinite, expectFloatTensor, expectScheme, expectWeights, options, rowsCols } from './checks.js';
import { Histogram } from './histogram.js';
import { calib, NO_WEIGHTS } from './native.js';

/** The percentile clips of the reference (weights per channel and activations per tensor). */
export const DEFAULT_PERCENTILES: readonly number[] = Object.freeze([0.999, 0.9999, 0.99999]);

export interface MseClipSearchOptions {
  /** Candidate ranges [lo, hi], finite with lo <= hi. */
  candidates: ArrayLike<readonly [number, number]>;
  /** Quantized type (default 'int8'). */
  dtype?: QuantDType;
  /** Default 'asymmetric'. */
  scheme?: Scheme;
  /** Tensor sources only: one weight per row of x seen as [rows, lastDim] (e.g. chunk weights per token). */
  rowWeights?: ArrayLike<number>;
}

export interface MseClipSearchResult {
  /** Weighted mean squared error of every candidate. */
  errors: Float64Array;
  /** Index of the best candidate (the first one on ties). */
  best: number;
  lo: number;
  hi: number;
  scale: number;
  zeroPoint: number;
  dtype: QuantDType;
  scheme: Scheme;
  /** Total weight of the values that entered the mean (NaN values excluded). */
  weightSum: number;
  nanCount: number;
}

interface SearchArgs {
  x: Float32Array;
  rows: number;
  cols: number;
  rowWeights: Float64Array;
  candLo: Float32Array;
  candHi: Float32Array;
  dtype: QuantDType;
  scheme: Scheme;
  sse: Float64Array;
  totals: Float64Array;
}

function prepare(source: unknown, opts: unknown): SearchArgs {
  const o = options(opts);
  const dtype = expectDType(o.dtype, 'dtype', 'int8');
  const scheme = expectScheme(o.scheme, 'scheme', 'asymmetric');
  const cands = o.candidates as ArrayLike<unknown>;
  if (!Array.isArray(cands)) throw new TypeError(`Expected an array of [lo, hi] pairs for candidates but received ${describe(cands)}`);
  if (cands.length === 0) throw new RangeError('Expected at least one range in candidates but received an empty array');
  const candLo = new Float32Array(cands.length);
  const candHi = new Float32Array(cands.length);
  for (let c = 0; c < cands.length; c++) {
    const pair = cands[c];
    if (!Array.isArray(pair) || pair.length !== 2) throw new TypeError(`Expected a [lo, hi] pair for candidates[${c}] but received ${describe(pair)}`);
    const lo = expectFiniteNumber(pair[0], `candidates[${c}][0]`);
    const hi = expectFiniteNumber(pair[1], `candidates[${c}][1]`);
    if (lo > hi) throw new RangeError(`Expected lo <= hi in candidates[${c}] but received [${lo}, ${hi}]`);
    candLo[c] = lo;
    candHi[c] = hi;
  }
  const common = { candLo, candHi, dtype, scheme, sse: new Float64Array(cands.length), totals: new Float64Array(2) };
  if (source instanceof Histogram) {
    if (o.rowWeights !== undefined) throw new TypeError('Expected no rowWeights for a Histogram source (its counts are the weights)');
    // Every bin is one sample at its centre, weighted by its count.
    return { x: source.centres(), rows: source.bins, cols: 1, rowWeights: source.counts.slice(), ...common };
  }
  const t = expectFloatTensor(source, 'source');
  const { rows, cols } = rowsCols(t);
  const rowWeights = o.rowWeights === undefined ? NO_WEIGHTS : expectWeights(o.rowWeights, 'rowWeights', rows);
  return { x: t.data, rows, cols, rowWeights, ...common };
}

function finish(a: SearchArgs): MseClipSearchResult {
  const weightSum = a.totals[0];
  if (!(weightSum > 0)) throw new RangeError('Expected source to hold values with a positive total weight (all NaN, or all weights 0)');
  const errors = a.sse.map((s) => s / weightSum);
  let best = 0;
  for (let c = 1; c < errors.length; c++) if (errors[c] < errors[best]) best = c;
  const lo = a.candLo[best];
  const hi = a.candHi[best];
  return { errors, best, lo, hi, ...qparamsFromRange(lo, hi, a.dtype, a.scheme), dtype: a.dtype, scheme: a.scheme, weightSum, nanCount: a.totals[1] };
}

function call(a: SearchArgs, async: boolean): Promise<void> | undefined {
  return calib().calibFakeQuantSse(a.x, a.rows, a.cols, a.rowWeights, a.candLo, a.candHi, DTYPE_CODE[a.dtype], a.scheme === 'symmetric', a.sse, a.totals, async);
}

/**
 * For every candidate range [lo_c, hi_c], the weighted mean squared error of fake quantization
 * `mean_w (x' - x)^2`, `x' = (clamp(roundHalfToEven(x / s) + z) - z) s` with `(s, z)` from
 * qparamsFromRange(lo_c, hi_c, dtype, scheme), exactly as the quantize kernels round; and the best
 * candidate with its qparams. The source is a float32 tensor (NaN values left out; optional
 * per-row weights) or a Histogram, whose bins count as samples at their centres
 * `lo + (i + 0.5) * width` weighted by their counts. Runs off the event loop.
 *
 * @example
 * const h = new Histogram({ lo: -8, hi: 8, bins: 32768 });
 * h.addSync(x);
 * const r = await mseClipSearch(h, { candidates: [[-6, 6], [-4, 4]], dtype: 'int8' });
 * r.best; r.scale; r.zeroPoint;
 */
export async function mseClipSearch(source: Tensor<'float32'> | Histogram, options: MseClipSearchOptions): Promise<MseClipSearchResult> {
  const a = prepare(source, options);
  await call(a, true);
  return finish(a);
}

/** Synchronous mseClipSearch. */
export function mseClipSearchSync(source: Tensor<'float32'> | Histogram, options: MseClipSearchOptions): MseClipSearchResult {
  const a = prepare(source, options);
  call(a, false);
  return finish(a);
}

export interface ChannelClipSearchOptions {
  /** Default 'int8'. */
  dtype?: QuantDType;
  /** Default 'asymmetric' (the reference's weight quantizer). */
  scheme?: Scheme;
  /** Percentile clips in [0.5, 1] (default 0.999, 0.9999, 0.99999); 1 is the row's min/max. */
  percentiles?: ArrayLike<number>;
}

/** Per-output-channel qparams (axis 0 of W[N_out, K]) chosen by MSE among percentile clips. */
export interface ChannelClipSearchResult {
  axis: 0;
  scale: Float32Array;
  zeroPoint: Int32Array;
  lo: Float32Array;
  hi: Float32Array;
  /** Index into percentiles of the clip chosen for each row. */
  choice: Int32Array;
  /** Mean squared error of every row and candidate, row-major [N_out, percentiles.length]. */
  errors: Float64Array;
  percentiles: Float64Array;
  dtype: QuantDType;
  scheme: Scheme;
}

interface ChannelArgs {
  w: Tensor<'float32'>;
  pct: Float64Array;
  dtype: QuantDType;
  scheme: Scheme;
  out: ChannelClipSearchResult;
}

function prepareChannel(w: unknown, opts: unknown): ChannelArgs {
  const t = expectFloatTensor(w, 'w', 2);
  if (t.rank !== 2) throw new RangeError(`Expected w to have shape [outFeatures, inFeatures] but received shape [${t.shape.join(', ')}]`);
  expectFinite(t, 'w');
  const o = options(opts);
  const dtype = expectDType(o.dtype, 'dtype', 'int8');
  const scheme = expectScheme(o.scheme, 'scheme', 'asymmetric');
  const pct = expectWeights(o.percentiles ?? DEFAULT_PERCENTILES, 'percentiles');
  if (pct.length === 0) throw new RangeError('Expected at least one value in percentiles but received an empty array');
  pct.forEach((p, i) => {
    if (p < 0.5 || p > 1) throw new RangeError(`Expected percentiles in [0.5, 1] but percentiles[${i}] is ${p}`);
  });
  const rows = t.shape[0];
  const out: ChannelClipSearchResult = {
    axis: 0,
    scale: new Float32Array(rows),
    zeroPoint: new Int32Array(rows),
    lo: new Float32Array(rows),
    hi: new Float32Array(rows),
    choice: new Int32Array(rows),
    errors: new Float64Array(rows * pct.length),
    percentiles: pct,
    dtype,
    scheme,
  };
  return { w: t, pct, dtype, scheme, out };
}

function callChannel(a: ChannelArgs, async: boolean): Promise<void> | undefined {
  const { out } = a;
  return calib().calibChannelClipSearch(
    a.w.data, a.w.shape[0], a.w.shape[1], a.pct, DTYPE_CODE[a.dtype], a.scheme === 'symmetric',
    out.scale, out.zeroPoint, out.lo, out.hi, out.choice, out.errors, async,
  );
}

/**
 * Per-output-channel MSE clip search for a weight W[N_out, K] (the reference's weight quantizer).
 * For row r and percentile p the candidate range is [Q_r(1 - p), Q_r(p)], Q_r being the quantile of
 * the row's values (sorted, linear interpolation at position q (K - 1), as quantileSorted); the
 * candidate with the least mean squared fake-quantization error over the row wins (the first on
 * ties), and its scale and zero point (qparamsFromRange of that range) are returned. W must be
 * finite. Runs off the event loop.
 *
 * @example
 * const r = await mseChannelClipSearch(w, { dtype: 'int4' });
 * r.scale[0]; r.zeroPoint[0]; r.choice[0]; // 0, 1 or 2: which percentile won for row 0
 */
export async function mseChannelClipSearch(w: Tensor<'float32'>, options?: ChannelClipSearchOptions): Promise<ChannelClipSearchResult> {
  const a = prepareChannel(w, options);
  await callChannel(a, true);
  return a.out;
}

/** Synchronous mseChannelClipSearch. */
export function mseChannelClipSearchSync(w: Tensor<'float32'>, options?: ChannelClipSearchOptions): ChannelClipSearchResult {
  const a = prepareChannel(w, options);
  callChannel(a, false);
  return a.out;
}
