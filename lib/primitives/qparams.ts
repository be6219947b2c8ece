import { qrange, type QuantDType } from '../tensor/dtype.js';

/** Symmetric (zero point fixed at the middle of the range) or asymmetric (zero point chosen). */
export type Scheme = 'symmetric' | 'asymmetric';

/** Smallest scale chooseQParams returns (float32 epsilon, as PyTorch/torchao). */
export const MIN_SCALE = 1.1920928955078125e-7;

const f = Math.fround;

/** Round half to even, the rounding of ONNX QuantizeLinear, PyTorch and the FPU default. */
export function roundHalfToEven(v: number): number {
  const r = Math.round(v);
  // Math.round rounds ties up; move ties that landed on an odd number down to the even one.
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Scale and zero point for the range [lo, hi], in float32 arithmetic step by step, exactly as the
 * native kernels compute them (so dynamic per-token results can be reproduced bit for bit).
 *
 * - asymmetric: the range is widened to contain 0; `scale = (hi - lo) / (qmax - qmin)`,
 *   `zeroPoint = clamp(qmin - roundHalfToEven(lo / scale), qmin, qmax)`.
 * - symmetric: `scale = max(|lo|, |hi|) / (2^(b-1) - 1)`; zeroPoint 0 for int8/int4, 2^(b-1) for uint8/uint4.
 *
 * The scale is at least MIN_SCALE.
 *
 * @example
 * qparamsFromRange(-1, 3, 'uint8', 'asymmetric'); // { scale: 4/255, zeroPoint: 64 }
 */
export function qparamsFromRange(lo: number, hi: number, dtype: QuantDType, scheme: Scheme): { scale: number; zeroPoint: number } {
  const { qmin, qmax } = qrange(dtype);
  const bits = dtype === 'int8' || dtype === 'uint8' ? 8 : 4;
  lo = f(lo);
  hi = f(hi);
  if (scheme === 'symmetric') {
    const amax = Math.max(Math.abs(lo), Math.abs(hi));
    const scale = Math.max(f(amax / (2 ** (bits - 1) - 1)), f(MIN_SCALE));
    return { scale, zeroPoint: dtype === 'int8' || dtype === 'int4' ? 0 : 2 ** (bits - 1) };
  }
  lo = Math.min(lo, 0);
  hi = Math.max(hi, 0);
  const scale = Math.max(f(f(hi - lo) / (qmax - qmin)), f(MIN_SCALE));
  const zp = qmin - roundHalfToEven(f(lo / scale));
  return { scale, zeroPoint: Math.min(Math.max(zp, qmin), qmax) };
}

/** `clamp(roundHalfToEven(x / scale) + zeroPoint, qmin, qmax)`; NaN maps to the zero point. */
export function quantizeValue(x: number, scale: number, zeroPoint: number, dtype: QuantDType): number {
  const { qmin, qmax } = qrange(dtype);
  const v = f(f(x) / f(scale));
  if (Number.isNaN(v)) return zeroPoint;
  return Math.min(Math.max(roundHalfToEven(v) + zeroPoint, qmin), qmax);
}

/** `(q - zeroPoint) * scale` in float32. */
export function dequantizeValue(q: number, scale: number, zeroPoint: number): number {
  return f((q - zeroPoint) * f(scale));
}
