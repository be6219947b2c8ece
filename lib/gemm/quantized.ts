// Quantized linear layers (W8A8, W4A8) on the integer GEMM family, and the machinery they share with
// the dual-scale layer (dual.ts): building the native layer segment by segment, forward in fast or
// emulated mode, reading the quantized weights back, and the raw int32 accumulators for debugging.
import type { GptqSegment, GptqSingleResult } from '../calibration/gptq.js';
import { Tensor, expectTensor } from '../tensor/tensor.js';
import { expectObject, expectOneOf } from '../util/validate.js';
import { PackedWeights, flattenInput, expectWeight, toBias, wrapHandle, type Linear } from './linear.js';
import { gemmNative } from './native.js';
import {
  MAX_QUANTIZED_K,
  checkWeightParams,
  groupCount,
  parseSegment,
  segmentSpec,
  type ActivationQuantOptions,
  type SegmentConfig,
  type WeightDType,
  type WeightQuantOptions,
} from './options.js';

/**
 * `fast`: the integer GEMM (exact int32 accumulation, fp32 epilogue). `emulated`: the same
 * quantization in floating point (weights dequantized, activations fake-quantized with the same
 * parameters, then the FP32 GEMM), for debugging and as a reference.
 */
export type GemmMode = 'fast' | 'emulated';
const MODES: readonly GemmMode[] = ['fast', 'emulated'];

/** Quantized weights of a layer (or of one segment), as stored: `w ≈ (q - zeroPoint) * scale`. */
export interface QuantizedWeight {
  /** `[out, in]` integers (int4: two per byte, element 2i in the low nibble). */
  q: Tensor<'int8'> | Tensor<'int4'>;
  /** `[out]` (per channel) or `[out, groups]` (per group). */
  scale: Tensor<'float32'>;
  zeroPoint: Tensor<'int32'>;
  dtype: WeightDType;
  /** 0 when per output channel. */
  groupSize: number;
}

/** The exact integer sums of a forward pass, for tests and debugging. */
export interface Accumulators {
  /**
   * `[M, out, G]`: for each row, output channel and weight group (segment by segment, G groups in
   * all), `sum_k (xq[m,k] - za[m,s]) * (wq[n,k] - zw[n,s,g])` in int32.
   */
  acc: Tensor<'int32'>;
  /** `[M, segments]`: the activation scale of each row and segment. */
  actScale: Tensor<'float32'>;
  /** `[M, segments]`: the activation zero point of each row and segment. */
  actZeroPoint: Tensor<'int32'>;
}

/** @internal One K segment: its columns (in permuted order) and how they are quantized. */
export interface SegmentSource {
  k0: number;
  len: number;
  cfg: SegmentConfig;
  /** The float weight [out, in] in the original column order, or the segment's quantized values. */
  w?: Float32Array;
  q?: Int8Array;
}

export function parseMode(value: unknown, name: string): GemmMode {
  return value === undefined ? 'fast' : expectOneOf(value, name, MODES);
}

/** Unpacks an int8 or int4 weight tensor `[out, len]` to one int8 per element. */
export function unpackQuantized(q: unknown, name: string, n: number, len: number): Int8Array {
  const t = expectTensor(q, name, ['int8', 'int4']);
  if (t.rank !== 2 || t.shape[0] !== n || t.shape[1] !== len) {
    throw new RangeError(`Expected ${name} to have shape [${n}, ${len}] but received [${t.shape.join(', ')}]`);
  }
  if (t.dtype === 'int8') return t.data as Int8Array;
  const bytes = t.data as Uint8Array;
  const out = new Int8Array(n * len);
  for (let i = 0; i < out.length; i++) {
    const nib = i % 2 === 0 ? bytes[i >> 1] & 15 : bytes[i >> 1] >> 4;
    out[i] = nib >= 8 ? nib - 16 : nib;
  }
  return out;
}

function packQuantized(q: Int8Array, dtype: WeightDType, n: number, len: number): Tensor<'int8'> | Tensor<'int4'> {
  if (dtype === 'int8') return new Tensor('int8', [n, len], q);
  const bytes = new Uint8Array(Math.ceil(q.length / 2));
  for (let i = 0; i < q.length; i++) bytes[i >> 1] |= (q[i] & 15) << (i % 2 === 0 ? 0 : 4);
  return new Tensor('int4', [n, len], bytes);
}

/** @internal The common implementation of QuantizedLinear and DualScaleLinear. */
export abstract class IntLinear implements Linear {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly bias: Float32Array | null;
  /** Default mode of forward()/forwardSync(). */
  readonly mode: GemmMode;
  /** The packed layer (kind 'quantized'); only its own layer type can run it. */
  readonly packed: PackedWeights;
  protected readonly segments: readonly SegmentSource[];

  protected constructor(n: number, k: number, perm: Int32Array | null, segments: SegmentSource[], bias: Float32Array | null, mode: GemmMode) {
    const nat = gemmNative();
    const handle = nat.gemmIntCreate(n, k, perm);
    try {
      for (const s of segments) {
        const spec = segmentSpec(s.cfg, s.k0, s.len);
        const { scale, zeroPoint } = s.cfg;
        if (s.w) nat.gemmIntAddSegment(handle, spec, s.cfg.activation.scale, s.w, null, scale, zeroPoint, null, null);
        else nat.gemmIntAddSegment(handle, spec, s.cfg.activation.scale, null, s.q!, scale, zeroPoint, null, null);
      }
    } catch (e) {
      nat.gemmDispose(handle);
      throw e;
    }
    this.packed = wrapHandle('quantized', n, k, handle);
    this.inFeatures = k;
    this.outFeatures = n;
    this.bias = bias;
    this.mode = mode;
    // The float weights are not kept: the native layer holds the only copy, as integers.
    this.segments = segments.map(({ k0, len, cfg }) => ({ k0, len, cfg }));
  }

  get weightBytes(): number {
    return this.packed.bytes;
  }

  /**
   * Frees the layer's native weights now instead of when the garbage collector collects the layer
   * (idempotent). forward() and the weight readers throw afterwards; a call in flight finishes first.
   */
  dispose(): void {
    this.packed.dispose();
  }

  /** True once {@link dispose} was called. */
  get disposed(): boolean {
    return this.packed.disposed;
  }

  private modeOf(options: unknown): GemmMode {
    if (options === undefined) return this.mode;
    return parseMode(expectObject(options, 'options').mode ?? this.mode, 'options.mode');
  }

  /** Runs on the calling thread; `options.mode` overrides the layer's mode for this call. */
  forwardSync(x: Tensor, options?: { mode?: GemmMode }): Tensor<'float32'> {
    const mode = this.modeOf(options);
    const { data, m, outShape } = flattenInput(x, this.inFeatures, this.outFeatures);
    const y = new Float32Array(m * this.outFeatures);
    if (m > 0) gemmNative().gemmIntForward(this.packed.handle, data, m, this.bias, y, mode === 'emulated', false);
    return new Tensor('float32', outShape, y);
  }

  /** Runs on the libuv pool; `options.mode` overrides the layer's mode for this call. */
  async forward(x: Tensor, options?: { mode?: GemmMode }): Promise<Tensor<'float32'>> {
    const mode = this.modeOf(options);
    const { data, m, outShape } = flattenInput(x, this.inFeatures, this.outFeatures);
    const y = new Float32Array(m * this.outFeatures);
    if (m > 0) await gemmNative().gemmIntForward(this.packed.handle, data, m, this.bias, y, mode === 'emulated', true);
    return new Tensor('float32', outShape, y);
  }

  /**
   * The exact int32 accumulators of the fast path for `x` (flattened to `[M, in]`), with the
   * activation parameters of each row and segment. For tests and debugging.
   */
  debugAccumulatorsSync(x: Tensor): Accumulators {
    const { data, m } = flattenInput(x, this.inFeatures, this.outFeatures);
    const groups = this.segments.reduce((g, s) => g + groupCount(s.len, s.cfg.groupSize), 0);
    const acc = new Int32Array(m * this.outFeatures * groups);
    const segs = this.segments.length;
    const actScale = new Float32Array(m * segs);
    const actZero = new Int32Array(m * segs);
    if (m > 0) gemmNative().gemmIntAccumulators(this.packed.handle, data, m, acc, actScale, actZero);
    return {
      acc: new Tensor('int32', [m, this.outFeatures, groups], acc),
      actScale: new Tensor('float32', [m, segs], actScale),
      actZeroPoint: new Tensor('int32', [m, segs], actZero),
    };
  }

  /** @internal The quantized weights of segment `index`, read back from native memory. */
  protected exportSegment(index: number): QuantizedWeight {
    const { len, cfg } = this.segments[index];
    const n = this.outFeatures;
    const groups = groupCount(len, cfg.groupSize);
    const q = new Int8Array(n * len);
    const scale = new Float32Array(n * groups);
    const zero = new Int32Array(n * groups);
    gemmNative().gemmIntExport(this.packed.handle, index, q, scale, zero);
    const shape = cfg.groupSize > 0 ? [n, groups] : [n];
    return {
      q: packQuantized(q, cfg.dtype, n, len),
      scale: new Tensor('float32', shape, scale),
      zeroPoint: new Tensor('int32', shape, zero),
      dtype: cfg.dtype,
      groupSize: cfg.groupSize,
    };
  }
}

/** Options of {@link QuantizedLinear.fromFloat}. */
export interface QuantizedLinearOptions {
  bias?: Tensor<'float32'> | Float32Array;
  /** Default: int8, symmetric, per output channel. */
  weight?: WeightQuantOptions;
  /** Default: dynamic per token, int8, asymmetric. */
  activation?: ActivationQuantOptions;
  /** Default 'fast'. */
  mode?: GemmMode;
}

/** Options of {@link QuantizedLinear.fromQuantized}: the weight is already integers. */
export interface QuantizedLinearFromQuantizedOptions {
  /** `[out]` or `[out, groups]`. */
  scale: Float32Array | Tensor<'float32'>;
  /** Default zeros. */
  zeroPoint?: Int32Array | Tensor<'int32'>;
  groupSize?: number;
  bias?: Tensor<'float32'> | Float32Array;
  activation?: ActivationQuantOptions;
  mode?: GemmMode;
}

/**
 * @internal A GPTQ segment as kernel input: unsigned types become the signed ones of the same
 * width (q - 2^(b-1), zeroPoint - 2^(b-1): the same dequantized values), int4 runs on the 4-bit
 * kernel.
 */
export function gptqSegmentSource(
  seg: GptqSegment,
  n: number,
  k0: number,
  activation: unknown,
  path: string,
): SegmentSource {
  const s = expectObject(seg, path) as unknown as GptqSegment;
  if (!['int8', 'uint8', 'int4', 'uint4'].includes(s.dtype)) throw new RangeError(`Expected a quantized dtype in ${path}.dtype but received ${String(s.dtype)}`);
  const len = s.columns;
  if (!(s.q instanceof Int8Array || s.q instanceof Uint8Array) || s.q.length !== n * len) {
    throw new RangeError(`Expected ${n} x ${len} quantized values in ${path}.q`);
  }
  const dtype: WeightDType = s.dtype === 'int8' || s.dtype === 'uint8' ? 'int8' : 'int4';
  const offset = s.dtype === 'uint8' ? 128 : s.dtype === 'uint4' ? 8 : 0;
  const q = offset ? Int8Array.from(s.q, (v) => v - offset) : Int8Array.from(s.q);
  const zeroPoint = Int32Array.from(s.zeroPoint, (z) => z - offset);
  const cfg = parseSegment({ dtype, ...(s.groupSize ? { groupSize: s.groupSize } : {}) }, activation, path, n, len);
  const params = checkWeightParams(s.scale, zeroPoint, dtype, n * groupCount(len, cfg.groupSize), path);
  cfg.scale = params.scale;
  cfg.zeroPoint = params.zeroPoint;
  cfg.scheme = s.scheme;
  return { k0, len, cfg, q };
}

export function expectK(k: number, name: string): void {
  if (k > MAX_QUANTIZED_K) {
    throw new RangeError(`Expected at most ${MAX_QUANTIZED_K} input features (the int32 accumulators' limit) in ${name} but received ${k}`);
  }
}

/**
 * A quantized linear layer `y = x W^T + b` with integer weights packed once at construction:
 *
 *   y[m,n] = b[n] + sa[m] * sum_g sw[n,g] * sum_{k in g} (xq[m,k] - za[m]) * (wq[n,k] - zw[n,g])
 *
 * W8A8 (`weight.dtype: 'int8'`) or W4A8 (`'int4'`, half the bytes), per output channel or per group
 * of `groupSize` inputs; activations int8/uint8, dynamic per token (quantized inside the call,
 * fused with the GEMM) or static. The integer sums are exact (int32); one epilogue applies the
 * scales, the zero points and the bias. `mode: 'emulated'` computes the same thing in float.
 *
 * @example
 * const layer = QuantizedLinear.fromFloat(w, {
 *   bias,
 *   weight: { dtype: 'int4', groupSize: 128 },
 *   activation: { type: 'dynamic' },
 * });
 * const y = await layer.forward(x);          // x: [..., in] float32
 * layer.weightBytes;                          // about half of the int8 layer's
 */
export class QuantizedLinear extends IntLinear {
  /** The weight quantization (dtype, scheme, groupSize) and activation quantization in use. */
  readonly config: SegmentConfig;

  private constructor(n: number, k: number, source: SegmentSource, bias: Float32Array | null, mode: GemmMode) {
    super(n, k, null, [source], bias, mode);
    this.config = source.cfg;
  }

  /**
   * Quantizes a float32 weight `[out, in]` (per channel or group: from the range, or with the given
   * scale and zero point) and packs it.
   */
  static fromFloat(weight: Tensor<'float32'>, options: QuantizedLinearOptions = {}): QuantizedLinear {
    const opts = expectObject(options, 'options');
    const w = expectWeight(weight, 'weight');
    const [n, k] = w.shape;
    expectK(k, 'weight');
    const cfg = parseSegment(opts.weight, opts.activation, 'options', n, k);
    const bias = toBias(opts.bias, n, 'options.bias');
    return new QuantizedLinear(n, k, { k0: 0, len: k, cfg, w: w.data }, bias, parseMode(opts.mode, 'options.mode'));
  }

  /** A layer from integer weights `[out, in]` (int8, or int4 for W4A8) and their scales. */
  static fromQuantized(weight: Tensor<'int8'> | Tensor<'int4'>, options: QuantizedLinearFromQuantizedOptions): QuantizedLinear {
    const opts = expectObject(options, 'options');
    const t = expectTensor(weight, 'weight', ['int8', 'int4']);
    if (t.rank !== 2 || t.shape[0] === 0 || t.shape[1] === 0) {
      throw new RangeError(`Expected weight to have shape [outFeatures, inFeatures] but received [${t.shape.join(', ')}]`);
    }
    const [n, k] = t.shape;
    expectK(k, 'weight');
    const dtype: WeightDType = t.dtype === 'int8' ? 'int8' : 'int4';
    const cfg = parseSegment({ dtype, groupSize: opts.groupSize }, opts.activation, 'options', n, k);
    const params = checkWeightParams(opts.scale, opts.zeroPoint, dtype, n * groupCount(k, cfg.groupSize), 'options');
    cfg.scale = params.scale;
    cfg.zeroPoint = params.zeroPoint;
    cfg.scheme = params.zeroPoint.every((z) => z === 0) ? 'symmetric' : 'asymmetric';
    const q = unpackQuantized(t, 'weight', n, k);
    const bias = toBias(opts.bias, n, 'options.bias');
    return new QuantizedLinear(n, k, { k0: 0, len: k, cfg, q }, bias, parseMode(opts.mode, 'options.mode'));
  }

  /**
   * A layer from a single-quantizer {@link gptq} result (its integers, scales and zero points as
   * they are; uint8/uint4 results run as int8/int4 with shifted zero points, the same values).
   *
   * @example
   * const r = await gptq(w, gram, { dtype: 'int4', groupSize: 128 });
   * const layer = QuantizedLinear.fromGptq(r, { bias });
   */
  static fromGptq(
    result: GptqSingleResult,
    options: { bias?: Tensor<'float32'> | Float32Array; activation?: ActivationQuantOptions; mode?: GemmMode } = {},
  ): QuantizedLinear {
    const opts = expectObject(options, 'options');
    const r = expectObject(result, 'result') as unknown as GptqSingleResult;
    if (r.type !== 'single') throw new TypeError(`Expected a single-quantizer gptq result for result but received type ${String(r.type)}`);
    const n = r.outFeatures;
    const k = r.inFeatures;
    expectK(k, 'result.inFeatures');
    const source = gptqSegmentSource(r, n, 0, opts.activation, 'result');
    const bias = toBias(opts.bias, n, 'options.bias');
    return new QuantizedLinear(n, k, source, bias, parseMode(opts.mode, 'options.mode'));
  }

  /** The integer weights, scales and zero points the layer holds (read back from native memory). */
  quantizedWeight(): QuantizedWeight {
    return this.exportSegment(0);
  }
}
