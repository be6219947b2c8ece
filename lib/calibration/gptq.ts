// GPTQ weight reconstruction with a (chunk-weighted) Hessian, per channel, per group or in the
// two-segment (dual-scale) form of Q-ARVD. The kernel is csrc/kernels/gptq.
import { native } from '../native/binding.js';
import type { QuantDType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Scheme } from '../primitives/qparams.js';
import { describe, expectFiniteNumber, expectObject } from '../util/validate.js';
import type { Gram } from './gram.js';
import { expectHessian, expectPermutation, planGptq, type GptqPlan, type SegmentPlan } from './gptq_plan.js';

interface GptqNative {
  gptqRun(
    w: Float32Array, rows: number, cols: number, h: Float64Array, order: Int32Array, groupOf: Int32Array,
    groupDtype: Int32Array, groupSymmetric: Uint8Array, groupMode: Int32Array, damp: number, blockSize: number,
    rtnLoss: boolean, outQ: Uint8Array, scale: Float32Array, zeroPoint: Int32Array, outStats: Float64Array, async: boolean,
  ): Promise<void> | undefined;
  gptqHessianFactor(h: Float64Array, cols: number, order: Int32Array, damp: number, outR: Float64Array, outStats: Float64Array, async: boolean): Promise<void> | undefined;
}

/** How one set of columns is quantized: per output channel, or per group of `groupSize` columns along K. */
export interface GptqQuantizer {
  /** Default 'int8'. */
  dtype?: QuantDType;
  /** Default 'asymmetric' (the reference's weight quantizer). */
  scheme?: Scheme;
  /**
   * Groups of `groupSize` consecutive input columns (of the segment, in ascending original order)
   * share a scale per output channel; it must divide the number of columns. Omitted: per channel.
   */
  groupSize?: number;
  /**
   * Given scales, e.g. from mseChannelClipSearch: `[N_out]` per channel or `[N_out, groups]`
   * row-major per group. Omitted: computed from the min/max of the weights (see gptq).
   */
  scale?: ArrayLike<number>;
  /** Zero points of the given scales (required when asymmetric; symmetric: 0, or 2^(b-1) unsigned). */
  zeroPoint?: ArrayLike<number>;
}

/** Options of {@link gptq}. */
export interface GptqOptions extends GptqQuantizer {
  /** Dampening: `lambda = damp * mean(diag H)` is added to the diagonal (default 0.01). */
  damp?: number;
  /** Columns per lazy batch update (default 128); the result does not depend on it. */
  blockSize?: number;
  /** Quantize columns in descending diag(H) order (per segment), un-permuted on output. Default false. */
  actOrder?: boolean;
  /** Also compute the loss of round-to-nearest with the same quantizers (default true; about N K^2 / 2 extra multiply-adds). */
  rtnLoss?: boolean;
  /**
   * Dual-scale mode: the outlier input columns (strictly ascending, e.g. detectOutliers().outlierIdx,
   * may be empty). GPTQ then runs over perm = [...outlierIdx, ...the others], so errors of the
   * outlier segment are compensated in the normal columns that follow.
   */
  outlierIdx?: ArrayLike<number>;
  /** Dual mode: quantizer of the outlier segment (dtype, scheme and groupSize default to the top-level ones). */
  outlier?: GptqQuantizer;
  /** Dual mode: quantizer of the normal segment. */
  normal?: GptqQuantizer;
}

/** Integer weights of one segment (or of the whole layer) with their qparams. */
export interface GptqSegment {
  /** `[N_out, columns]` row-major, unpacked; Int8Array for int8/int4, Uint8Array for uint8/uint4. */
  q: Int8Array | Uint8Array;
  /** Input columns, in the column order of `q`. */
  columns: number;
  /** `[N_out]` (per channel) or `[N_out, columns / groupSize]`. */
  scale: Float32Array;
  zeroPoint: Int32Array;
  dtype: QuantDType;
  scheme: Scheme;
  /** 0 when per output channel. */
  groupSize: number;
}

/** Reconstruction losses `trace(D H D^T)`, `D = W - dequantize(q)`, in the units of H. */
export interface GptqLoss {
  /** Round-to-nearest with the same quantizers ("before"); null when rtnLoss is false. */
  rtn: number | null;
  /** GPTQ ("after"). */
  gptq: number;
}

interface GptqResultBase {
  outFeatures: number;
  inFeatures: number;
  loss: GptqLoss;
  /** The absolute dampening added to the diagonal of H. */
  lambda: number;
  /** Columns with H[j, j] == 0: their weights are zeroed (their inputs are always 0). */
  deadColumns: Int32Array;
  /** The column quantized at each step. */
  order: Int32Array;
}

/** Result of a single-quantizer run: `q` is `[N_out, K]` in the original column order. */
export interface GptqSingleResult extends GptqResultBase, GptqSegment {
  type: 'single';
}

/**
 * Result of a dual-scale run: each segment's `q` is `[N_out, columns]` with the segment's columns
 * in ascending original order, i.e. `[outlier, normal]` are the columns of `perm` (the layout of
 * DualScaleLinear.fromQuantized). A segment with no columns is null.
 */
export interface GptqDualResult extends GptqResultBase {
  type: 'dual';
  outlierIdx: Int32Array;
  /** [...outlierIdx, ...the normal columns]. */
  perm: Int32Array;
  outlier: GptqSegment | null;
  normal: GptqSegment | null;
}

export type GptqResult = GptqSingleResult | GptqDualResult;

type SingleOptions = Omit<GptqOptions, 'outlierIdx' | 'outlier' | 'normal'>;
type DualOptions = Omit<GptqOptions, 'scale' | 'zeroPoint'> & { outlierIdx: ArrayLike<number> };

interface Call {
  plan: GptqPlan;
  q: Uint8Array;
  stats: Float64Array;
}

function call(c: Call, async: boolean): Promise<void> | undefined {
  const p = c.plan;
  return native<GptqNative>().gptqRun(
    p.w.data, p.rows, p.cols, p.h, p.order, p.groupOf, p.groupDtype, p.groupSymmetric, p.groupMode, p.damp, p.blockSize,
    p.rtnLoss, c.q, p.scale, p.zeroPoint, c.stats, async,
  );
}

function prepare(w: unknown, h: unknown, opts: unknown): Call {
  const plan = planGptq(w, h, opts);
  return { plan, q: new Uint8Array(plan.rows * plan.cols), stats: new Float64Array(4) };
}

function segment(c: Call, seg: SegmentPlan, whole: boolean): GptqSegment {
  const { rows, cols: k } = c.plan;
  const len = seg.cols.length;
  const signed = seg.dtype === 'int8' || seg.dtype === 'int4';
  let bytes: Uint8Array;
  if (whole) {
    bytes = c.q;
  } else {
    bytes = new Uint8Array(rows * len);
    for (let r = 0; r < rows; r++) for (let m = 0; m < len; m++) bytes[r * len + m] = c.q[r * k + seg.cols[m]];
  }
  const total = c.plan.segments.reduce((n, s) => n + s.groups, 0);
  const scale = new Float32Array(rows * seg.groups);
  const zeroPoint = new Int32Array(rows * seg.groups);
  for (let r = 0; r < rows; r++) {
    for (let g = 0; g < seg.groups; g++) {
      scale[r * seg.groups + g] = c.plan.scale[r * total + seg.base + g];
      zeroPoint[r * seg.groups + g] = c.plan.zeroPoint[r * total + seg.base + g];
    }
  }
  return {
    q: signed ? new Int8Array(bytes.buffer, bytes.byteOffset, bytes.length) : bytes,
    columns: len,
    scale,
    zeroPoint,
    dtype: seg.dtype,
    scheme: seg.scheme,
    groupSize: seg.groupSize,
  };
}

function finish(c: Call): GptqResult {
  const p = c.plan;
  const base: GptqResultBase = {
    outFeatures: p.rows,
    inFeatures: p.cols,
    loss: { rtn: p.rtnLoss ? c.stats[0] : null, gptq: c.stats[1] },
    lambda: c.stats[2],
    deadColumns: p.deadColumns,
    order: p.order,
  };
  if (!p.dual) return { type: 'single', ...base, ...segment(c, p.segments[0], true) };
  const hasOutlier = p.outlierIdx.length > 0;
  return {
    type: 'dual',
    ...base,
    outlierIdx: p.outlierIdx,
    perm: p.perm,
    outlier: hasOutlier ? segment(c, p.segments[0], false) : null,
    normal: p.outlierIdx.length < p.cols ? segment(c, p.segments[hasOutlier ? 1 : 0], false) : null,
  };
}

/**
 * GPTQ (Frantar et al. 2022) of a linear layer `W[N_out, K]` (float32) against a Hessian proxy `H`
 * (`K x K`, float64, symmetric; a Float64Array or a Gram, whose matrix is used). With the
 * chunk-weighted Gram `H = sum_k w_k X_k^T X_k`, `w_k = s_k / mean(s)` (Gram.accumulate with
 * `weight: chunkWeights[chunk]`), the reconstruction error of early, sensitive chunks counts more.
 *
 * Columns are quantized one at a time, in order (or by descending diag(H) with actOrder, or
 * outliers first in the dual mode); after column j of every row,
 * `err = (w_j - dequant(q_j)) / U[j, j]` and `W[:, j+1:] -= err * U[j, j+1:]`, where
 * `U = cholesky(inverse(H + lambda I))` upper, `lambda = damp * mean(diag H)`, with the paper's
 * lazy batch updates over blockSize columns (computed in the equivalent left-looking form on
 * R = U^-1, the Cholesky factor of the column-reversed H_d, so no inverse is formed: K^3/6 + N K^2/2
 * multiply-adds, plus N K^2/2 for the RTN loss). Dead columns (H[j, j] == 0) get H[j, j] = 1 and
 * W[:, j] = 0, as the reference does. Quantization is exactly quantizeValue / qparamsFromRange
 * (round half to even of x / scale, float32). Everything else is float64; the integers do not
 * depend on blockSize, the thread count or the code path, up to float64 rounding (~1e-16 relative
 * in the updated weights).
 *
 * Qparams not given are computed from the min/max of the row's weights (qparamsFromRange): per
 * channel, from the initial weights of the segment's columns (dead columns zeroed), as the
 * reference computes them before the loop; per group, when the group's first column is reached,
 * from the weights as updated by every column quantized before it (the reference uses the weights
 * updated up to the start of the current block; we wait for every update, so the result is the
 * unblocked algorithm's and does not depend on blockSize). With actOrder a group's columns are no
 * longer visited together, so group qparams come from the initial weights ("static groups").
 * groupSize must divide the number of columns (of each segment in the dual mode), as the perGroup
 * granularity of the GEMM layers requires; a group longer than blockSize is done as one block.
 * The schemes are those of qparamsFromRange: symmetric int4 uses [-7, 7] with scale amax / 7 (the
 * reference's GPTQ quantizer uses all 16 levels with scale 2 amax / 15 instead).
 *
 * Throws a RangeError naming H when `H + lambda I` is not positive definite (raise damp). H is only
 * checked for symmetry to a relative 1e-6; the entry used for columns i, j is the one in the row of
 * the column quantized first. Memory: about `8 K^2` bytes of workspace besides H. Runs off the event
 * loop; do not modify w or H (or accumulate into the Gram) until it settles.
 *
 * @example
 * const g = new Gram(K);
 * for (const { x, chunk } of calibration) await g.accumulate(x, { weight: chunkWeights[chunk] });
 * const r = await gptq(w, g, { dtype: 'int4', scheme: 'asymmetric', groupSize: 128 });
 * r.q;      // Int8Array [N_out, K]
 * r.scale;  // Float32Array [N_out, K / 128]
 * r.loss;   // { rtn, gptq }
 *
 * @example
 * // Dual scale: 8-bit outlier columns, 4-bit normal ones.
 * const { outlierIdx } = await detectOutliers(w);
 * const d = await gptq(w, g, { outlierIdx, outlier: { dtype: 'int8' }, normal: { dtype: 'int4' } });
 * d.outlier?.q; d.normal?.q; d.perm;
 */
export function gptq(w: Tensor<'float32'>, H: Float64Array | Gram, options: DualOptions): Promise<GptqDualResult>;
export function gptq(w: Tensor<'float32'>, H: Float64Array | Gram, options?: SingleOptions): Promise<GptqSingleResult>;
export function gptq(w: Tensor<'float32'>, H: Float64Array | Gram, options?: GptqOptions): Promise<GptqResult>;
export async function gptq(w: Tensor<'float32'>, H: Float64Array | Gram, options?: GptqOptions): Promise<GptqResult> {
  const c = prepare(w, H, options);
  await call(c, true);
  return finish(c);
}

/** Synchronous {@link gptq} (blocks the event loop: for small layers). */
export function gptqSync(w: Tensor<'float32'>, H: Float64Array | Gram, options: DualOptions): GptqDualResult;
export function gptqSync(w: Tensor<'float32'>, H: Float64Array | Gram, options?: SingleOptions): GptqSingleResult;
export function gptqSync(w: Tensor<'float32'>, H: Float64Array | Gram, options?: GptqOptions): GptqResult;
export function gptqSync(w: Tensor<'float32'>, H: Float64Array | Gram, options?: GptqOptions): GptqResult {
  const c = prepare(w, H, options);
  call(c, false);
  return finish(c);
}

function dequantSegment(out: Float32Array, k: number, seg: GptqSegment, cols: ArrayLike<number> | null): void {
  const rows = seg.q.length / seg.columns;
  const groups = seg.groupSize ? seg.columns / seg.groupSize : 1;
  for (let r = 0; r < rows; r++) {
    for (let m = 0; m < seg.columns; m++) {
      const g = r * groups + (seg.groupSize ? Math.floor(m / seg.groupSize) : 0);
      const v = Math.fround((seg.q[r * seg.columns + m] - seg.zeroPoint[g]) * seg.scale[g]);
      out[r * k + (cols ? cols[m] : m)] = v;
    }
  }
}

/**
 * The dequantized weight `[N_out, K]` (float32, original column order) of a gptq result:
 * `(q - zeroPoint) * scale` per element, as dequantizeValue.
 *
 * @example
 * const wHat = gptqDequantize(await gptq(w, H, { dtype: 'int4' })); // Float32Array [N_out * K]
 */
export function gptqDequantize(result: GptqResult): Float32Array {
  const r = expectObject(result, 'result') as unknown as GptqResult;
  if (r.type !== 'single' && r.type !== 'dual') throw new TypeError(`Expected a gptq result for result but received ${describe(result)}`);
  const out = new Float32Array(r.outFeatures * r.inFeatures);
  if (r.type === 'single') {
    dequantSegment(out, r.inFeatures, r, null);
  } else {
    const normalCols = r.perm.subarray(r.outlierIdx.length);
    if (r.outlier) dequantSegment(out, r.inFeatures, r.outlier, r.outlierIdx);
    if (r.normal) dequantSegment(out, r.inFeatures, r.normal, normalCols);
  }
  return out;
}

/**
 * The factor GPTQ works with: R upper triangular (`K x K` row-major, strict lower part zero, positive
 * diagonal) with `R R^T = H_d`, `H_d = P^T H P + lambda I` with dead columns fixed (H[j, j] == 0 -> 1),
 * `lambda = damp * mean(diag)`, P the processing order `order` (default the identity). The paper's
 * `U = cholesky(inverse(H_d))` (upper) is `R^-1`. Computed in float64 as the Cholesky factor of the
 * column-reversed matrix, reversed back. For diagnostics and tests.
 *
 * @example
 * const { r, lambda } = gptqHessianFactorSync(H, { damp: 0.01 });
 */
export function gptqHessianFactorSync(H: Float64Array | Gram, options?: { damp?: number; order?: ArrayLike<number> }): { r: Float64Array; lambda: number; dead: number } {
  const o = options === undefined ? {} : expectObject(options, 'options');
  const k = H instanceof Float64Array ? Math.round(Math.sqrt(H.length)) : (H as Gram)?.cols;
  if (typeof k !== 'number' || k < 1) throw new TypeError(`Expected a Float64Array or a Gram for H but received ${describe(H)}`);
  const h = expectHessian(H, k);
  const damp = o.damp === undefined ? 0.01 : expectFiniteNumber(o.damp, 'damp', { min: 0 });
  const order = o.order === undefined ? Int32Array.from({ length: k }, (_, c) => c) : expectPermutation(o.order, 'order', k);
  const r = new Float64Array(k * k);
  const stats = new Float64Array(2);
  native<GptqNative>().gptqHessianFactor(h, k, order, damp, r, stats, false);
  return { r, lambda: stats[0], dead: stats[1] };
}
