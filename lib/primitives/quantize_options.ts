// Option handling shared by every backend of the quantize primitives (lib/primitives/quantize.ts on
// the CPU, lib/device/quantize.ts on CUDA): the quantized dtype, scheme and granularity, given scales
// and zero points, and the checks on computed scales, so that both backends accept and reject the
// same options with the same messages.
import { QUANT_DTYPES, qrange, type QuantDType } from '../tensor/dtype.js';
import { describe, expectBoolean, expectObject, expectOneOf } from '../util/validate.js';
import { checkGranularity, numScales, type Granularity } from './granularity.js';
import { qparamsFromRange, type Scheme } from './qparams.js';
import { checkScaleValues, checkZeroPointValues, SCHEMES, symmetricZeroPoint } from './qtensor.js';

function resolveDType(o: Record<string, unknown>): QuantDType {
  if (o.dtype !== undefined) {
    const dtype = expectOneOf(o.dtype, 'dtype', QUANT_DTYPES);
    if (o.bits !== undefined || o.signed !== undefined) {
      throw new TypeError(`Expected either dtype or bits/signed but received dtype ${describe(dtype)} and bits/signed as well`);
    }
    return dtype;
  }
  if (o.bits === undefined) {
    throw new TypeError(`Expected one of ${QUANT_DTYPES.map((d) => `'${d}'`).join(', ')} for dtype (or bits 4 or 8) but received undefined`);
  }
  if (o.bits !== 4 && o.bits !== 8) {
    const Err = typeof o.bits === 'number' ? RangeError : TypeError;
    throw new Err(`Expected 4 or 8 for bits but received ${describe(o.bits)}`);
  }
  const signed = o.signed === undefined ? true : expectBoolean(o.signed, 'signed');
  return `${signed ? '' : 'u'}int${o.bits}` as QuantDType;
}

function defaultScheme(dtype: QuantDType): Scheme {
  return dtype.startsWith('u') ? 'asymmetric' : 'symmetric';
}

function numericArray(value: unknown, name: string, count: number): ArrayLike<number> {
  let values: ArrayLike<number>;
  if (typeof value === 'number') {
    values = [value];
  } else if (Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView))) {
    values = value as ArrayLike<number>;
    for (let i = 0; i < values.length; i++) {
      if (typeof values[i] !== 'number') throw new TypeError(`Expected a number for ${name}[${i}] but received ${describe(values[i])}`);
    }
  } else {
    throw new TypeError(`Expected a number, an array of numbers or a typed array for ${name} but received ${describe(value)}`);
  }
  if (values.length !== count) {
    throw new RangeError(`Expected ${count} value${count === 1 ? '' : 's'} in ${name} (one per block of the granularity) but received ${values.length}`);
  }
  return values;
}

function toScale(value: unknown, count: number): Float32Array {
  // Copied, so that the QTensor owns its scales; rounded to float32 before the checks.
  const scale = Float32Array.from(numericArray(value, 'scale', count));
  checkScaleValues(scale, 'scale');
  return scale;
}

function toZeroPoint(value: unknown, count: number, dtype: QuantDType, scheme: Scheme): Int32Array {
  const values = numericArray(value, 'zeroPoint', count);
  for (let i = 0; i < values.length; i++) {
    if (!Number.isInteger(values[i])) throw new RangeError(`Expected integers in zeroPoint but element ${i} is ${values[i]}`);
  }
  const { qmin, qmax } = qrange(dtype);
  for (let i = 0; i < values.length; i++) {
    if (values[i] < qmin || values[i] > qmax) {
      throw new RangeError(`Expected values between ${qmin} and ${qmax} (${dtype}) in zeroPoint but element ${i} is ${values[i]}`);
    }
  }
  const zeroPoint = Int32Array.from(values);
  checkZeroPointValues(zeroPoint, 'zeroPoint', dtype, scheme);
  return zeroPoint;
}

/** The granularity option, checked against `shape` (per tensor when absent). */
export function granularityOf(o: Record<string, unknown>, shape: readonly number[]): Granularity {
  return o.granularity === undefined ? { type: 'perTensor' } : checkGranularity(o.granularity, shape);
}

// Only an asymmetric range wider than float32 can overflow the scale; say so rather than return it.
export function checkComputedScales(scale: Float32Array): void {
  for (let i = 0; i < scale.length; i++) {
    if (!Number.isFinite(scale[i])) {
      throw new RangeError(`Expected the range of x to fit in float32 but block ${i} spans more than 3.4e38 (max - min overflows)`);
    }
  }
}

/** The parameters of the range [0, 0] for every block (an empty tensor). */
export function fillEmpty(scale: Float32Array, zeroPoint: Int32Array, dtype: QuantDType, scheme: Scheme): void {
  const p = qparamsFromRange(0, 0, dtype, scheme);
  scale.fill(p.scale);
  zeroPoint.fill(p.zeroPoint);
}

/** What chooseQParams computes, from its options, for a tensor of `shape`. */
export interface ResolvedQParamsOptions {
  dtype: QuantDType;
  scheme: Scheme;
  granularity: Granularity;
  /** Number of scales (blocks of the granularity). */
  count: number;
}

/** The options of quantize, checked: scale and zeroPoint are present when given by the caller. */
export interface ResolvedQuantizeOptions extends ResolvedQParamsOptions {
  scale?: Float32Array;
  zeroPoint?: Int32Array;
}

export function resolveChooseQParamsOptions(shape: readonly number[], options: unknown): ResolvedQParamsOptions {
  const o = expectObject(options, 'options');
  const dtype = resolveDType(o);
  const scheme = o.scheme === undefined ? defaultScheme(dtype) : expectOneOf(o.scheme, 'scheme', SCHEMES);
  const granularity = granularityOf(o, shape);
  return { dtype, scheme, granularity, count: numScales(shape, granularity) };
}

export function resolveQuantizeOptions(shape: readonly number[], options: unknown): ResolvedQuantizeOptions {
  const o = expectObject(options, 'options');
  const dtype = resolveDType(o);
  const granularity = granularityOf(o, shape);
  const hasScale = o.scale !== undefined;
  const hasZeroPoint = o.zeroPoint !== undefined;
  if (hasZeroPoint && !hasScale) throw new TypeError('Expected scale together with zeroPoint but received undefined for scale');
  let scheme: Scheme;
  if (o.scheme !== undefined) scheme = expectOneOf(o.scheme, 'scheme', SCHEMES);
  else if (hasScale) scheme = hasZeroPoint ? 'asymmetric' : 'symmetric';
  else scheme = defaultScheme(dtype);

  const count = numScales(shape, granularity);
  if (!hasScale) return { dtype, scheme, granularity, count };
  const scale = toScale(o.scale, count);
  let zeroPoint: Int32Array;
  if (hasZeroPoint) {
    zeroPoint = toZeroPoint(o.zeroPoint, count, dtype, scheme);
  } else if (scheme === 'asymmetric') {
    throw new TypeError(`Expected zeroPoint with the given scale for an asymmetric scheme but received undefined`);
  } else {
    zeroPoint = new Int32Array(count).fill(symmetricZeroPoint(dtype));
  }
  return { dtype, scheme, granularity, count, scale, zeroPoint };
}
