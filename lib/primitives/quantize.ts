// The three stateless primitives (chooseQParams, quantize, dequantize) and the block range reduction,
// each as a Promise (work off the event loop; bad arguments reject it) and a Sync twin. Everything is
// validated here; the native kernels (csrc/kernels/quantize.h) get checked positional arguments.
import { native } from '../native/binding.js';
import { DTYPE_CODE, FLOAT_DTYPES, storageLength, type DType, type FloatDType, type QuantDType, type StorageOf } from '../tensor/dtype.js';
import { expectTensor, Tensor } from '../tensor/tensor.js';
import { describe, expectObject } from '../util/validate.js';
import { type BackendOptions, resolveBackend, syncBackend } from '../device/backend.js';
import { chooseQParamsOnCuda, dequantizeOnCuda, quantizeOnCuda } from '../device/host.js';
import { blockLayout, numScales, type BlockLayout, type Granularity } from './granularity.js';
import { type Scheme } from './qparams.js';
import { QTensor } from './qtensor.js';
import { checkComputedScales, fillEmpty, granularityOf, resolveChooseQParamsOptions, resolveQuantizeOptions } from './quantize_options.js';

type Pending = Promise<void> | undefined;
type FloatData = Float32Array | Uint16Array;
type QuantData = Int8Array | Uint8Array;
type Dims = [outer: number, axisLen: number, inner: number, mode: number, groupSize: number];

interface QuantizeNative {
  quantize(x: FloatData, xType: number, ...rest: [...Dims, scale: Float32Array, zeroPoint: Int32Array, qType: number, out: QuantData, async: boolean]): Pending;
  dequantize(q: QuantData, qType: number, ...rest: [...Dims, scale: Float32Array, zeroPoint: Int32Array, out: Float32Array, async: boolean]): Pending;
  chooseQParams(x: FloatData, xType: number, ...rest: [...Dims, qType: number, symmetric: boolean, scale: Float32Array, zeroPoint: Int32Array, async: boolean]): Pending;
  blockRange(x: FloatData, xType: number, ...rest: [...Dims, lo: Float32Array, hi: Float32Array, async: boolean]): Pending;
  quantizePerToken(x: FloatData, xType: number, rows: number, cols: number, qType: number, symmetric: boolean, out: QuantData, scale: Float32Array, zeroPoint: Int32Array, async: boolean): Pending;
}

const addon = (): QuantizeNative => native<QuantizeNative>();
const dims = (l: BlockLayout): Dims => [l.outer, l.axisLen, l.inner, l.mode, l.groupSize];

/** One native call, made now (async false) or returning a Promise; a primitive is a list of them. */
type Step = (async: boolean) => Pending;
interface Plan<T> {
  steps: Step[];
  result: () => T;
}
function runSync<T>(plan: Plan<T>): T {
  for (const step of plan.steps) step(false);
  return plan.result();
}
async function runAsync<T>(plan: Plan<T>): Promise<T> {
  for (const step of plan.steps) await step(true);
  return plan.result();
}

/** The quantized type: `dtype`, or `bits` (4 or 8) with `signed` (default true). */
export interface QuantTypeOptions {
  dtype?: QuantDType;
  bits?: 4 | 8;
  signed?: boolean;
}

export interface ChooseQParamsOptions extends QuantTypeOptions, BackendOptions {
  /** Default: 'symmetric' for int8/int4, 'asymmetric' for uint8/uint4. */
  scheme?: Scheme;
  /** Default: per tensor. */
  granularity?: Granularity;
}

export interface QuantizeOptions extends ChooseQParamsOptions {
  /** Given scales (one per block of the granularity); computed from x when absent. */
  scale?: Float32Array | readonly number[] | number;
  /** Given zero points; required with `scale` for the asymmetric scheme, fixed by the symmetric one. */
  zeroPoint?: Int32Array | readonly number[] | number;
  /**
   * A tensor of the quantized dtype and x's shape to write into (it becomes the result's `data`), so
   * that a hot loop reuses one buffer instead of allocating (and page-faulting) a new one each call.
   */
  out?: Tensor;
}

export interface DequantizeOptions extends BackendOptions {
  /** A float32 tensor of q's shape to write into (returned), instead of a new one. */
  out?: Tensor<'float32'>;
}

export interface QParams {
  scale: Float32Array;
  zeroPoint: Int32Array;
}

export interface BlockRangeOptions {
  /** Default: per tensor. */
  granularity?: Granularity;
}

/** Per-block extremes of a tensor. */
export interface BlockRange {
  min: Float32Array;
  max: Float32Array;
}

function overlaps(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return a.buffer === b.buffer && a.byteOffset < b.byteOffset + b.byteLength && b.byteOffset < a.byteOffset + a.byteLength;
}

// A tensor over memory that is not zeroed first: the kernels write every byte of their outputs (the
// padding nibble of an odd 4-bit count included; tests check this on pre-filled buffers), so zeroing
// would only cost a pass over memory, and recycled memory avoids fresh page faults.
function uninitializedTensor<D extends DType>(dtype: D, shape: readonly number[]): Tensor<D> {
  const length = storageLength(dtype, shape.reduce((a, b) => a * b, 1));
  const bytesPer = dtype === 'float32' ? 4 : 1;
  const { buffer, byteOffset } = Buffer.allocUnsafeSlow(length * bytesPer);
  const data = dtype === 'float32' ? new Float32Array(buffer, byteOffset, length) : dtype === 'int8' ? new Int8Array(buffer, byteOffset, length) : new Uint8Array(buffer, byteOffset, length);
  return new Tensor(dtype, shape, data as StorageOf[D]);
}

/** `out` checked against the dtype and the shape of `input` (and not overlapping it), or a new tensor. */
function outputTensor<D extends 'float32' | QuantDType>(out: unknown, dtype: D, input: Tensor): Tensor<D> {
  if (out === undefined) return input.size === 0 ? Tensor.zeros(dtype, input.shape) : uninitializedTensor(dtype, input.shape);
  const t = expectTensor(out, 'out', [dtype]);
  if (t.shape.length !== input.shape.length || t.shape.some((d, i) => d !== input.shape[i])) {
    throw new RangeError(`Expected out to have shape [${input.shape.join(', ')}] but received [${t.shape.join(', ')}]`);
  }
  if (overlaps(t.data, input.data)) throw new RangeError('Expected out not to share memory with the input');
  return t;
}

function inputTensor(x: unknown): Tensor<FloatDType> {
  return expectTensor(x, 'x', FLOAT_DTYPES);
}

function planChooseQParams(x: unknown, options: unknown): Plan<QParams> {
  const t = inputTensor(x);
  const { dtype, scheme, granularity, count } = resolveChooseQParamsOptions(t.shape, options);
  const scale = new Float32Array(count);
  const zeroPoint = new Int32Array(count);
  if (t.size === 0) {
    fillEmpty(scale, zeroPoint, dtype, scheme);
    return { steps: [], result: () => ({ scale, zeroPoint }) };
  }
  const l = dims(blockLayout(t.shape, granularity));
  const step: Step = (a) => addon().chooseQParams(t.data, DTYPE_CODE[t.dtype], ...l, DTYPE_CODE[dtype], scheme === 'symmetric', scale, zeroPoint, a);
  return {
    steps: [step],
    result: () => {
      checkComputedScales(scale);
      return { scale, zeroPoint };
    },
  };
}

function planQuantize(x: unknown, options: unknown): Plan<QTensor> {
  const t = inputTensor(x);
  const r = resolveQuantizeOptions(t.shape, options);
  const { dtype, scheme, granularity, count } = r;
  const hasScale = r.scale !== undefined;
  const scale = r.scale ?? new Float32Array(count);
  const zeroPoint = r.zeroPoint ?? new Int32Array(count);
  const o = expectObject(options, 'options');
  const data = outputTensor(o.out, dtype, t);
  const make = (): QTensor => {
    if (!hasScale) checkComputedScales(scale);
    return new QTensor({ data, scale, zeroPoint, scheme, granularity });
  };
  if (t.size === 0) {
    if (!hasScale) fillEmpty(scale, zeroPoint, dtype, scheme);
    return { steps: [], result: make };
  }
  const xType = DTYPE_CODE[t.dtype];
  const qType = DTYPE_CODE[dtype];
  const symmetric = scheme === 'symmetric';
  const steps: Step[] = [];
  if (!hasScale && granularity.type === 'perToken') {
    const cols = t.shape[t.shape.length - 1];
    steps.push((a) => addon().quantizePerToken(t.data, xType, count, cols, qType, symmetric, data.data, scale, zeroPoint, a));
  } else {
    const l = dims(blockLayout(t.shape, granularity));
    if (!hasScale) steps.push((a) => addon().chooseQParams(t.data, xType, ...l, qType, symmetric, scale, zeroPoint, a));
    steps.push((a) => addon().quantize(t.data, xType, ...l, scale, zeroPoint, qType, data.data, a));
  }
  return { steps, result: make };
}

function planDequantize(value: unknown, options: unknown): Plan<Tensor<'float32'>> {
  if (!(value instanceof QTensor)) throw new TypeError(`Expected a QTensor for q but received ${describe(value)}`);
  const q = value as QTensor;
  const out = outputTensor(expectObject(options, 'options').out, 'float32', q.data);
  if (out.size === 0) return { steps: [], result: () => out };
  const l = dims(blockLayout(q.shape, q.granularity));
  const step: Step = (a) => addon().dequantize(q.data.data, DTYPE_CODE[q.dtype], ...l, q.scale, q.zeroPoint, out.data, a);
  return { steps: [step], result: () => out };
}

function planBlockRange(x: unknown, options: unknown): Plan<BlockRange> {
  const t = inputTensor(x);
  const o = expectObject(options, 'options');
  const granularity = granularityOf(o, t.shape);
  const count = numScales(t.shape, granularity);
  const min = new Float32Array(count).fill(Infinity);
  const max = new Float32Array(count).fill(-Infinity);
  if (t.size === 0) return { steps: [], result: () => ({ min, max }) };
  const l = dims(blockLayout(t.shape, granularity));
  return { steps: [(a) => addon().blockRange(t.data, DTYPE_CODE[t.dtype], ...l, min, max, a)], result: () => ({ min, max }) };
}

/**
 * Scales and zero points for `x` (float32, float16 or bfloat16) at a granularity, from the range of
 * each block: for the range [lo, hi] of a block (widened to contain 0 when asymmetric),
 * - asymmetric: `scale = (hi - lo) / (qmax - qmin)`, `zeroPoint = clamp(qmin - round(lo / scale), qmin, qmax)`;
 * - symmetric: `scale = max(|lo|, |hi|) / (2^(bits-1) - 1)`, zeroPoint 0 (signed) or 2^(bits-1) (unsigned);
 * in float32, with the scale at least MIN_SCALE (exactly qparamsFromRange of qparams.ts).
 * Per token gives one pair per row. x must be finite (RangeError naming x otherwise); an empty x gives
 * the parameters of the range [0, 0] for each block.
 *
 * @example
 * const x = Tensor.fromArray([-1, 0.5, 3, 2], [2, 2]);
 * const { scale, zeroPoint } = await chooseQParams(x, { dtype: 'uint8', scheme: 'asymmetric', granularity: { type: 'perChannel', axis: 0 } });
 */
export async function chooseQParams(x: Tensor, options: ChooseQParamsOptions): Promise<QParams> {
  const target = resolveBackend(options);
  if (target.kind === 'cuda') {
    const t = inputTensor(x);
    resolveChooseQParamsOptions(t.shape, options);
    return chooseQParamsOnCuda(t, options, target.device);
  }
  return runAsync(planChooseQParams(x, options));
}

/**
 * chooseQParams on the calling thread (for small inputs).
 *
 * @example
 * const { scale, zeroPoint } = chooseQParamsSync(Tensor.fromArray([-1, 3]), { dtype: 'uint8' }); // 4/255, 64
 */
export function chooseQParamsSync(x: Tensor, options: ChooseQParamsOptions): QParams {
  syncBackend(options, 'chooseQParams');
  return runSync(planChooseQParams(x, options));
}

/**
 * Quantizes `x` (float32, float16 or bfloat16):
 * `q = clamp(roundHalfToEven(x / scale) + zeroPoint, qmin, qmax)` per block of the granularity, NaN
 * mapping to the zero point and +-Infinity saturating, exactly as ONNX QuantizeLinear. int4/uint4
 * results are packed two per byte (element 2i in the low nibble).
 *
 * Scales and zero points are computed as chooseQParams does unless `scale` (and, for the asymmetric
 * scheme, `zeroPoint`) are given. Per token without a scale is dynamic: each row's range and
 * parameters are computed and applied in one pass. Scheme default: given scale with zeroPoint ->
 * asymmetric, given scale alone -> symmetric, nothing given -> symmetric for int8/int4 and
 * asymmetric for uint8/uint4. An empty x gives an empty QTensor. `out` reuses an output buffer.
 *
 * @example
 * const x = Tensor.fromArray([0.1, -2, 3.5, 7], [2, 2]);
 * const q = await quantize(x, { dtype: 'int8', granularity: { type: 'perToken' } }); // dynamic, per row
 * const w = await quantize(x, { dtype: 'uint4', scale: [0.5], zeroPoint: [8] });       // given parameters
 */
export async function quantize(x: Tensor, options: QuantizeOptions): Promise<QTensor> {
  const target = resolveBackend(options);
  if (target.kind === 'cuda') {
    const t = inputTensor(x);
    const r = resolveQuantizeOptions(t.shape, options);
    const out = outputTensor(expectObject(options, 'options').out, r.dtype, t);
    return quantizeOnCuda(t, options, out, target.device);
  }
  return runAsync(planQuantize(x, options));
}

/**
 * quantize on the calling thread (for small inputs, or a hot loop with `out`).
 *
 * @example
 * const q = quantizeSync(Tensor.fromArray([0.5, -1, 1.5]), { bits: 4, scale: 0.5 }); // int4 [1, -2, 3]
 */
export function quantizeSync(x: Tensor, options: QuantizeOptions): QTensor {
  syncBackend(options, 'quantize');
  return runSync(planQuantize(x, options));
}

/**
 * The float32 values a QTensor stands for: `x' = (q - zeroPoint) * scale` per block (into
 * `options.out` when given).
 *
 * @example
 * const q = quantizeSync(Tensor.fromArray([0.1, -2, 3.5]), { dtype: 'int8' });
 * const back = await dequantize(q); // within scale / 2 of x
 */
export async function dequantize(q: QTensor, options: DequantizeOptions = {}): Promise<Tensor<'float32'>> {
  const target = resolveBackend(options);
  if (target.kind === 'cuda') {
    if (!(q instanceof QTensor)) throw new TypeError(`Expected a QTensor for q but received ${describe(q)}`);
    return dequantizeOnCuda(q, outputTensor(expectObject(options, 'options').out, 'float32', q.data), target.device);
  }
  return runAsync(planDequantize(q, options));
}

/**
 * dequantize on the calling thread (for small inputs).
 *
 * @example
 * dequantizeSync(quantizeSync(Tensor.fromArray([0.5, -1]), { dtype: 'int8', scale: 0.5 })).data; // [0.5, -1]
 */
export function dequantizeSync(q: QTensor, options: DequantizeOptions = {}): Tensor<'float32'> {
  syncBackend(options, 'dequantize');
  return runSync(planDequantize(q, options));
}

/**
 * The minimum and maximum of `x` over each block of a granularity (per token: each row), the
 * reduction behind chooseQParams. x must be finite (RangeError naming x otherwise); an empty x gives
 * +Infinity / -Infinity for each block.
 *
 * @example
 * const { min, max } = await blockRange(Tensor.fromArray([1, -2, 3, 4], [2, 2]), { granularity: { type: 'perChannel', axis: 1 } });
 * // min [1, -2], max [3, 4]
 */
export async function blockRange(x: Tensor, options: BlockRangeOptions = {}): Promise<BlockRange> {
  return runAsync(planBlockRange(x, options));
}

/**
 * blockRange on the calling thread (for small inputs).
 *
 * @example
 * blockRangeSync(Tensor.fromArray([1, -2, 3, 4], [2, 2]), { granularity: { type: 'perToken' } }); // min [-2, 3], max [1, 4]
 */
export function blockRangeSync(x: Tensor, options: BlockRangeOptions = {}): BlockRange {
  return runSync(planBlockRange(x, options));
}
