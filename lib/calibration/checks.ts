// Argument checks shared by the calibration API (messages name the argument, as lib/util/validate.ts).
import { QUANT_DTYPES, type QuantDType } from '../tensor/dtype.js';
import { expectTensor, type Tensor } from '../tensor/tensor.js';
import type { Scheme } from '../primitives/qparams.js';
import { calib } from './native.js';
import { describe, expectFiniteNumber, expectObject, expectOneOf } from '../util/validate.js';

export const SCHEMES: readonly Scheme[] = ['symmetric', 'asymmetric'];

/** A non-empty float32 tensor (the only input dtype of the calibration kernels). */
export function expectFloatTensor(value: unknown, name: string, minRank = 1): Tensor<'float32'> {
  const t = expectTensor(value, name, ['float32']);
  if (t.rank < minRank) {
    throw new RangeError(`Expected ${name} to have at least ${minRank} dimension${minRank > 1 ? 's' : ''} but received shape [${t.shape.join(', ')}]`);
  }
  if (t.size === 0) throw new RangeError(`Expected a non-empty tensor for ${name} but received shape [${t.shape.join(', ')}]`);
  return t;
}

/** Optional options object: undefined becomes {}. */
export function options(value: unknown, name = 'options'): Record<string, unknown> {
  return value === undefined ? {} : expectObject(value, name);
}

export function expectDType(value: unknown, name: string, fallback: QuantDType): QuantDType {
  return value === undefined ? fallback : expectOneOf(value, name, QUANT_DTYPES);
}

export function expectScheme(value: unknown, name: string, fallback: Scheme): Scheme {
  return value === undefined ? fallback : expectOneOf(value, name, SCHEMES);
}

/** A finite, non-negative weight. */
export function expectWeight(value: unknown, name: string): number {
  return expectFiniteNumber(value, name, { min: 0 });
}

/** Finite, non-negative weights of the given length, copied to a Float64Array. */
export function expectWeights(value: unknown, name: string, length?: number): Float64Array {
  if (!(Array.isArray(value) || (ArrayBuffer.isView(value) && !(value instanceof DataView)))) {
    throw new TypeError(`Expected an array of numbers for ${name} but received ${describe(value)}`);
  }
  const arr = value as ArrayLike<unknown>;
  if (length !== undefined && arr.length !== length) {
    throw new RangeError(`Expected ${length} elements in ${name} but received ${arr.length}`);
  }
  const out = new Float64Array(arr.length);
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i];
    if (typeof v !== 'number' && typeof v !== 'bigint') {
      throw new TypeError(`Expected numbers in ${name} but element ${i} is ${describe(v)}`);
    }
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) {
      throw new RangeError(`Expected finite non-negative numbers in ${name} but element ${i} is ${describe(n)}`);
    }
    out[i] = n;
  }
  return out;
}

/** A percentile in [lo, 1]. */
export function expectProbability(value: unknown, name: string, lo = 0): number {
  return expectFiniteNumber(value, name, { min: lo, max: 1 });
}

/** Rows and columns of a tensor seen as [rows, lastDim]. */
export function rowsCols(t: Tensor): { rows: number; cols: number } {
  const cols = t.shape[t.rank - 1];
  return { rows: t.size / cols, cols };
}

/** Throws a RangeError naming `name` when t holds NaN or +-Inf (one native min/max pass). */
export function expectFinite(t: Tensor<'float32'>, name: string): void {
  const mn = new Float32Array(1);
  const mx = new Float32Array(1);
  const nan = new Float64Array(1);
  calib().calibMinMax(t.data, 1, 1, t.size, mn, mx, nan, false);
  if (nan[0] > 0) throw new RangeError(`Expected finite values in ${name} but it contains ${nan[0]} NaN`);
  if (!Number.isFinite(mn[0]) || !Number.isFinite(mx[0])) throw new RangeError(`Expected finite values in ${name} but it contains infinities`);
}
