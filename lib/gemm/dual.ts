// The dual-scale (outlier-aware) linear layer of Q-ARVD as one fused integer GEMM.
import { detectOutliersSync, type OutlierOptions, type OutlierResult } from '../calibration/outliers.js';
import { Tensor } from '../tensor/tensor.js';
import { describe, expectObject } from '../util/validate.js';
import { expectWeight, toBias } from './linear.js';
import { checkWeightParams, groupCount, parseSegment, type ActivationQuantOptions, type SegmentConfig, type WeightDType, type WeightQuantOptions } from './options.js';
import {
  IntLinear,
  expectK,
  parseMode,
  unpackQuantized,
  type GemmMode,
  type QuantizedWeight,
  type SegmentSource,
} from './quantized.js';

/** Quantization of one segment (the outlier columns, or the normal ones). */
export interface SegmentQuantOptions {
  /** Default: int8, symmetric, per output channel. */
  weight?: WeightQuantOptions;
  /** Default: dynamic per token, int8, asymmetric. */
  activation?: ActivationQuantOptions;
}

/** Options of {@link DualScaleLinear.fromFloat}. */
export interface DualScaleLinearOptions {
  /** The outlier input columns, strictly ascending, each in [0, in). May be empty. */
  outlierIdx?: Int32Array | readonly number[];
  /**
   * Instead of outlierIdx: detect the outlier columns from the weight's column norms
   * (detectOutliers: MAD z-score or IQR, count rounded up to 32 and capped at in / 2).
   */
  detect?: OutlierOptions;
  outlier?: SegmentQuantOptions;
  normal?: SegmentQuantOptions;
  bias?: Tensor<'float32'> | Float32Array;
  mode?: GemmMode;
}

/** One segment of {@link DualScaleLinear.fromQuantized}: integer weights `[out, columns]` in segment order. */
export interface QuantizedSegmentInput {
  weight: Tensor<'int8'> | Tensor<'int4'>;
  scale: Float32Array | Tensor<'float32'>;
  zeroPoint?: Int32Array | Tensor<'int32'>;
  groupSize?: number;
  activation?: ActivationQuantOptions;
}

/** Options of {@link DualScaleLinear.fromQuantized}. */
export interface DualScaleLinearFromQuantizedOptions {
  inFeatures: number;
  outlierIdx: Int32Array | readonly number[];
  /** Required when there are outlier columns. */
  outlier?: QuantizedSegmentInput;
  /** Required when not every column is an outlier. */
  normal?: QuantizedSegmentInput;
  bias?: Tensor<'float32'> | Float32Array;
  mode?: GemmMode;
}

/** @internal Checks outlierIdx (integers in [0, k), strictly ascending) and returns it as an Int32Array. */
export function checkOutlierIdx(value: unknown, k: number, name: string): Int32Array {
  if (!(value instanceof Int32Array) && !Array.isArray(value)) {
    throw new TypeError(`Expected an Int32Array or an array of integers for ${name} but received ${describe(value)}`);
  }
  const idx = value as ArrayLike<unknown>;
  const out = new Int32Array(idx.length);
  for (let i = 0; i < idx.length; i++) {
    const v = idx[i];
    if (typeof v !== 'number' || !Number.isInteger(v)) throw new TypeError(`Expected integers in ${name} but element ${i} is ${describe(v)}`);
    if (v < 0 || v >= k) throw new RangeError(`Expected ${name} values between 0 and ${k - 1} (inFeatures - 1) but element ${i} is ${v}`);
    if (i > 0 && v <= out[i - 1]) {
      throw new RangeError(
        `Expected ${name} to be strictly ascending (no duplicates) but element ${i} (${v}) follows ${out[i - 1]}`,
      );
    }
    out[i] = v;
  }
  return out;
}

/**
 * The input permutation of a dual-scale layer: `perm = [...outlierIdx, ...normal columns]`, each
 * part ascending (the convention shared with outlier detection); position j reads column perm[j].
 *
 * @example
 * outlierPermutation(Int32Array.of(1, 4), 6); // Int32Array [1, 4, 0, 2, 3, 5]
 */
export function outlierPermutation(outlierIdx: Int32Array, k: number): Int32Array {
  const perm = new Int32Array(k);
  perm.set(outlierIdx);
  const isOutlier = new Uint8Array(k);
  for (const j of outlierIdx) isOutlier[j] = 1;
  let p = outlierIdx.length;
  for (let j = 0; j < k; j++) if (!isOutlier[j]) perm[p++] = j;
  return perm;
}

/**
 * The outlier-aware dual-scale linear layer of Q-ARVD as ONE fused integer GEMM:
 *
 *   y = Q(X_o) Q(W_o)^T + Q(X_n) Q(W_n)^T + b
 *
 * The input columns `outlierIdx` form the outlier segment (moved first: perm = [...outlierIdx,
 * ...normal]), the rest the normal segment. Each segment has its own weight quantizer (per output
 * channel or group, its own bit-width: e.g. int8 outliers with int4 normal columns) and its own
 * activation quantizer (e.g. a per-token scale each). In the kernel, each row is permuted and
 * quantized with its two scales in one pass; the two integer accumulations are exact and combine in
 * one fp32 epilogue (not two GEMMs and an add). With no outliers it is the plain quantized layer.
 *
 * @example
 * const layer = DualScaleLinear.fromFloat(w, {
 *   detect: { method: 'mad' },                   // or outlierIdx: [...] (ascending)
 *   outlier: { weight: { dtype: 'int8' } },
 *   normal: { weight: { dtype: 'int4', groupSize: 128 } },
 *   bias,
 * });
 * layer.outlierIdx;                              // the detected columns
 * const y = await layer.forward(x);
 */
export class DualScaleLinear extends IntLinear {
  /** The outlier columns (ascending). */
  readonly outlierIdx: Int32Array;
  /** The quantization of each segment; null when the segment is empty. */
  readonly outlierConfig: SegmentConfig | null;
  readonly normalConfig: SegmentConfig | null;
  /** The outlier detection that chose outlierIdx (with `detect`), else null. */
  readonly detection: OutlierResult | null;

  private constructor(
    n: number,
    k: number,
    outlierIdx: Int32Array,
    sources: SegmentSource[],
    bias: Float32Array | null,
    mode: GemmMode,
    detection: OutlierResult | null = null,
  ) {
    const perm = outlierIdx.length > 0 ? outlierPermutation(outlierIdx, k) : null;
    super(n, k, perm, sources, bias, mode);
    this.outlierIdx = outlierIdx;
    this.detection = detection;
    const nOut = outlierIdx.length;
    this.outlierConfig = nOut > 0 ? sources[0].cfg : null;
    this.normalConfig = nOut < k ? sources[sources.length - 1].cfg : null;
  }

  /** Number of outlier columns. */
  get outlierCount(): number {
    return this.outlierIdx.length;
  }

  /**
   * Quantizes the two segments of a float32 weight `[out, in]` and packs them. The outlier columns
   * are given (`outlierIdx`) or detected from the weight (`detect`, e.g. `{ method: 'mad' }`).
   */
  static fromFloat(weight: Tensor<'float32'>, options: DualScaleLinearOptions): DualScaleLinear {
    const opts = expectObject(options, 'options');
    const w = expectWeight(weight, 'weight');
    const [n, k] = w.shape;
    expectK(k, 'weight');
    if ((opts.outlierIdx === undefined) === (opts.detect === undefined)) {
      throw new TypeError(
        `Expected either options.outlierIdx or options.detect but received ${opts.outlierIdx === undefined ? 'neither' : 'both'}`,
      );
    }
    let detection: OutlierResult | null = null;
    if (opts.detect !== undefined) detection = detectOutliersSync(w, expectObject(opts.detect, 'options.detect') as OutlierOptions);
    const outlierIdx = detection ? detection.outlierIdx : checkOutlierIdx(opts.outlierIdx, k, 'options.outlierIdx');
    const nOut = outlierIdx.length;
    const sources: SegmentSource[] = [];
    const o = opts.outlier === undefined ? {} : expectObject(opts.outlier, 'options.outlier');
    const nm = opts.normal === undefined ? {} : expectObject(opts.normal, 'options.normal');
    if (nOut > 0) sources.push({ k0: 0, len: nOut, cfg: parseSegment(o.weight, o.activation, 'options.outlier', n, nOut), w: w.data });
    if (nOut < k) sources.push({ k0: nOut, len: k - nOut, cfg: parseSegment(nm.weight, nm.activation, 'options.normal', n, k - nOut), w: w.data });
    const bias = toBias(opts.bias, n, 'options.bias');
    return new DualScaleLinear(n, k, outlierIdx, sources, bias, parseMode(opts.mode, 'options.mode'), detection);
  }

  /**
   * A layer from integer weights already split into segments (each `[out, columns]` in segment
   * order, e.g. read from a checkpoint), with their scales.
   */
  static fromQuantized(options: DualScaleLinearFromQuantizedOptions): DualScaleLinear {
    const opts = expectObject(options, 'options');
    const k = opts.inFeatures;
    if (typeof k !== 'number' || !Number.isInteger(k) || k < 1) {
      throw new TypeError(`Expected a positive integer for options.inFeatures but received ${describe(k)}`);
    }
    expectK(k, 'options.inFeatures');
    const outlierIdx = checkOutlierIdx(opts.outlierIdx, k, 'options.outlierIdx');
    const nOut = outlierIdx.length;
    const parts: Array<{ key: 'outlier' | 'normal'; k0: number; len: number }> = [];
    if (nOut > 0) parts.push({ key: 'outlier', k0: 0, len: nOut });
    if (nOut < k) parts.push({ key: 'normal', k0: nOut, len: k - nOut });
    let n = -1;
    const sources: SegmentSource[] = parts.map(({ key, k0, len }) => {
      const path = `options.${key}`;
      if (opts[key] === undefined) throw new TypeError(`Expected ${path} (the ${len} ${key} columns) but received undefined`);
      const seg = expectObject(opts[key], path);
      const wt = seg.weight;
      if (!(wt instanceof Tensor) || wt.rank !== 2) throw new TypeError(`Expected an int8 or int4 Tensor [out, ${len}] for ${path}.weight but received ${describe(wt)}`);
      if (n < 0) n = wt.shape[0];
      if (n === 0) throw new RangeError(`Expected ${path}.weight to have at least one output channel`);
      const q = unpackQuantized(wt, `${path}.weight`, n, len);
      const dtype: WeightDType = wt.dtype === 'int8' ? 'int8' : 'int4';
      const cfg = parseSegment({ dtype, groupSize: seg.groupSize }, seg.activation, path, n, len);
      const params = checkWeightParams(seg.scale, seg.zeroPoint, dtype, n * groupCount(len, cfg.groupSize), path);
      cfg.scale = params.scale;
      cfg.zeroPoint = params.zeroPoint;
      cfg.scheme = params.zeroPoint.every((z) => z === 0) ? 'symmetric' : 'asymmetric';
      return { k0, len, cfg, q };
    });
    const bias = toBias(opts.bias, n, 'options.bias');
    return new DualScaleLinear(n, k, outlierIdx, sources, bias, parseMode(opts.mode, 'options.mode'));
  }

  /** The integer weights of each segment (null for an empty one), read back from native memory. */
  quantizedWeight(): { outlier: QuantizedWeight | null; normal: QuantizedWeight | null; outlierIdx: Int32Array } {
    const hasOutlier = this.outlierIdx.length > 0;
    const hasNormal = this.outlierIdx.length < this.inFeatures;
    return {
      outlier: hasOutlier ? this.exportSegment(0) : null,
      normal: hasNormal ? this.exportSegment(hasOutlier ? 1 : 0) : null,
      outlierIdx: Int32Array.from(this.outlierIdx),
    };
  }
}
