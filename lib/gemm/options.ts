// Options of the quantized layers: how weights and activations are quantized, checked and put in
// the normal form the native layer builder takes.
import type { Scheme } from '../primitives/qparams.js';
import { DTYPE_CODE, qrange } from '../tensor/dtype.js';
import { Tensor, expectTensor } from '../tensor/tensor.js';
import { describe, expectFiniteNumber, expectInteger, expectObject, expectOneOf } from '../util/validate.js';

/** Bit-width of the stored weights: int8, or int4 (two per byte, half the bytes). */
export type WeightDType = 'int8' | 'int4';
export const WEIGHT_DTYPES: readonly WeightDType[] = ['int8', 'int4'];
export type ActivationDType = 'int8' | 'uint8';
export const ACTIVATION_DTYPES: readonly ActivationDType[] = ['int8', 'uint8'];
const SCHEMES: readonly Scheme[] = ['symmetric', 'asymmetric'];

/** Group sizes are multiples of this (whole steps of the integer kernels). */
export const GROUP_MULTIPLE = 16;
/** The largest inFeatures of a quantized layer: 255 * 255 * 32768 < 2^31, so no int32 sum overflows. */
export const MAX_QUANTIZED_K = 32768;

/**
 * How a layer's weight `[out, in]` is quantized: per output channel, or per group of `groupSize`
 * consecutive inputs of each channel (the last group may be shorter when `in` is not a multiple).
 * Scales and zero points come from each channel's (group's) min/max through `qparamsFromRange`, or
 * are given (`scale` and optionally `zeroPoint`, shape `[out]` or `[out, groups]`), e.g. from a
 * calibration that searched clipping ranges.
 */
export interface WeightQuantOptions {
  /** Default 'int8'. */
  dtype?: WeightDType;
  /** Default 'symmetric'. */
  scheme?: Scheme;
  /** A multiple of 16; default: per output channel. */
  groupSize?: number;
  scale?: Float32Array | Tensor<'float32'>;
  /** Integers in the range of `dtype`; default zeros. Only with `scale`. */
  zeroPoint?: Int32Array | Tensor<'int32'>;
}

/**
 * How activations are quantized. `dynamic`: per token (row), the range of the row's values (NaN
 * ignored) gives the scale and zero point, computed inside the GEMM call. `static`: one calibrated
 * scale and zero point.
 */
export type ActivationQuantOptions =
  | { type: 'dynamic'; dtype?: ActivationDType; scheme?: Scheme }
  | { type: 'static'; scale: number; zeroPoint: number; dtype?: ActivationDType };

/** The normal form of one segment's quantization. */
export interface SegmentConfig {
  dtype: WeightDType;
  scheme: Scheme;
  groupSize: number; // 0: per channel
  scale: Float32Array | null;
  zeroPoint: Int32Array | null;
  activation: { type: 'dynamic' | 'static'; dtype: ActivationDType; scheme: Scheme; scale: number; zeroPoint: number };
}

export function groupCount(len: number, groupSize: number): number {
  return groupSize > 0 ? Math.ceil(len / groupSize) : 1;
}

function parseGroupSize(value: unknown, name: string): number {
  if (value === undefined) return 0;
  const g = expectInteger(value, name, { min: GROUP_MULTIPLE, max: MAX_QUANTIZED_K });
  if (g % GROUP_MULTIPLE !== 0) throw new RangeError(`Expected a multiple of ${GROUP_MULTIPLE} for ${name} but received ${g}`);
  return g;
}

function floatArray(value: unknown, name: string): Float32Array {
  if (value instanceof Tensor) return expectTensor(value, name, ['float32']).data;
  if (value instanceof Float32Array) return value;
  throw new TypeError(`Expected a float32 Tensor or a Float32Array for ${name} but received ${describe(value)}`);
}

function intArray(value: unknown, name: string): Int32Array {
  if (value instanceof Tensor) return expectTensor(value, name, ['int32']).data;
  if (value instanceof Int32Array) return value;
  throw new TypeError(`Expected an int32 Tensor or an Int32Array for ${name} but received ${describe(value)}`);
}

/** Checks given weight scales ([n * groups], positive and finite) and zero points (in range). */
export function checkWeightParams(
  scale: unknown,
  zeroPoint: unknown,
  dtype: WeightDType,
  count: number,
  path: string,
): { scale: Float32Array; zeroPoint: Int32Array } {
  const s = floatArray(scale, `${path}.scale`);
  if (s.length !== count) throw new RangeError(`Expected ${count} elements (outFeatures x groups) in ${path}.scale but received ${s.length}`);
  for (let i = 0; i < s.length; i++) {
    if (!Number.isFinite(s[i]) || !(s[i] > 0)) throw new RangeError(`Expected positive finite values in ${path}.scale but element ${i} is ${s[i]}`);
  }
  const z = zeroPoint === undefined ? new Int32Array(count) : intArray(zeroPoint, `${path}.zeroPoint`);
  if (z.length !== count) throw new RangeError(`Expected ${count} elements in ${path}.zeroPoint but received ${z.length}`);
  const { qmin, qmax } = qrange(dtype);
  for (let i = 0; i < z.length; i++) {
    if (z[i] < qmin || z[i] > qmax) throw new RangeError(`Expected ${path}.zeroPoint values between ${qmin} and ${qmax} for ${dtype} but element ${i} is ${z[i]}`);
  }
  return { scale: Float32Array.from(s), zeroPoint: Int32Array.from(z) };
}

export function parseActivation(value: unknown, path: string): SegmentConfig['activation'] {
  if (value === undefined) return { type: 'dynamic', dtype: 'int8', scheme: 'asymmetric', scale: 1, zeroPoint: 0 };
  const a = expectObject(value, path);
  const type = expectOneOf(a.type, `${path}.type`, ['dynamic', 'static'] as const);
  const dtype = a.dtype === undefined ? 'int8' : expectOneOf(a.dtype, `${path}.dtype`, ACTIVATION_DTYPES);
  if (type === 'dynamic') {
    const scheme = a.scheme === undefined ? 'asymmetric' : expectOneOf(a.scheme, `${path}.scheme`, SCHEMES);
    return { type, dtype, scheme, scale: 1, zeroPoint: 0 };
  }
  const scale = expectFiniteNumber(a.scale, `${path}.scale`, { positive: true });
  const { qmin, qmax } = qrange(dtype);
  const zeroPoint = expectInteger(a.zeroPoint, `${path}.zeroPoint`, { min: qmin, max: qmax });
  if (Math.fround(scale) === 0 || !Number.isFinite(Math.fround(scale))) {
    throw new RangeError(`Expected ${path}.scale to be representable as a positive float32 but received ${scale}`);
  }
  return { type, dtype, scheme: 'asymmetric', scale, zeroPoint };
}

/** Parses `{ weight, activation }` of a layer (or of one segment of a dual-scale layer). */
export function parseSegment(weight: unknown, activation: unknown, path: string, n: number, len: number): SegmentConfig {
  const w = weight === undefined ? {} : expectObject(weight, `${path}.weight`);
  const dtype = w.dtype === undefined ? 'int8' : expectOneOf(w.dtype, `${path}.weight.dtype`, WEIGHT_DTYPES);
  const scheme = w.scheme === undefined ? 'symmetric' : expectOneOf(w.scheme, `${path}.weight.scheme`, SCHEMES);
  const groupSize = parseGroupSize(w.groupSize, `${path}.weight.groupSize`);
  let scale: Float32Array | null = null;
  let zeroPoint: Int32Array | null = null;
  if (w.scale !== undefined) {
    ({ scale, zeroPoint } = checkWeightParams(w.scale, w.zeroPoint, dtype, n * groupCount(len, groupSize), `${path}.weight`));
  } else if (w.zeroPoint !== undefined) {
    throw new TypeError(`Expected ${path}.weight.scale with ${path}.weight.zeroPoint but received no scale`);
  }
  return { dtype, scheme, groupSize, scale, zeroPoint, activation: parseActivation(activation, `${path}.activation`) };
}

/** The Int32Array segment spec of the native builder (see csrc/napi/gemm.cc). */
export function segmentSpec(cfg: SegmentConfig, k0: number, len: number): Int32Array {
  const a = cfg.activation;
  return Int32Array.from([
    k0,
    len,
    cfg.dtype === 'int8' ? 8 : 4,
    cfg.groupSize,
    a.type === 'dynamic' ? 1 : 0,
    DTYPE_CODE[a.dtype],
    a.scheme === 'symmetric' ? 1 : 0,
    a.zeroPoint,
    cfg.scheme === 'symmetric' ? 1 : 0,
  ]);
}
