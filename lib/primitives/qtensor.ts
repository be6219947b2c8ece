import { QUANT_DTYPES, qrange, type QuantDType } from '../tensor/dtype.js';
import { expectTensor, type Tensor } from '../tensor/tensor.js';
import { describe, expectObject, expectOneOf } from '../util/validate.js';
import { checkGranularity, numScales, scaleShape, type Granularity } from './granularity.js';
import type { Scheme } from './qparams.js';

export const SCHEMES: readonly Scheme[] = ['symmetric', 'asymmetric'];

/**
 * The zero point a symmetric scheme fixes: 0 for signed types, 2^(bits-1) for unsigned ones.
 *
 * @example
 * symmetricZeroPoint('uint8'); // 128
 */
export function symmetricZeroPoint(dtype: QuantDType): number {
  return dtype === 'uint8' ? 128 : dtype === 'uint4' ? 8 : 0;
}

/** What makes a QTensor; see QTensor. */
export interface QTensorInit<D extends QuantDType = QuantDType> {
  data: Tensor<D>;
  scale: Float32Array;
  zeroPoint: Int32Array;
  scheme: Scheme;
  granularity: Granularity;
}

/**
 * A quantized tensor: integer `data` (int8, uint8, or int4/uint4 packed two per byte) with the
 * original `shape`, and the `scale` and `zeroPoint` of each block of the `granularity`
 * (row-major over `scaleShape`). The value it stands for is `(q - zeroPoint) * scale`.
 *
 * The constructor checks everything (dtype, lengths, finite positive scales, zero points within the
 * dtype's range and equal to the fixed one for a symmetric scheme) and keeps the arrays as given,
 * without copying.
 *
 * @example
 * const q = new QTensor({
 *   data: new Tensor('int8', [2], new Int8Array([-3, 5])),
 *   scale: new Float32Array([0.5]),
 *   zeroPoint: new Int32Array([0]),
 *   scheme: 'symmetric',
 *   granularity: { type: 'perTensor' },
 * });
 * dequantizeSync(q).data; // Float32Array [-1.5, 2.5]
 */
export class QTensor<D extends QuantDType = QuantDType> {
  readonly data: Tensor<D>;
  readonly scale: Float32Array;
  readonly zeroPoint: Int32Array;
  readonly scheme: Scheme;
  readonly granularity: Granularity;

  constructor(init: QTensorInit<D>) {
    const o = expectObject(init, 'init');
    const data = expectTensor(o.data, 'data', QUANT_DTYPES) as Tensor<D>;
    const scheme = expectOneOf(o.scheme, 'scheme', SCHEMES);
    const granularity = checkGranularity(o.granularity, data.shape);
    const count = numScales(data.shape, granularity);
    const scale = o.scale;
    if (!(scale instanceof Float32Array)) throw new TypeError(`Expected a Float32Array for scale but received ${describe(scale)}`);
    if (scale.length !== count) {
      throw new RangeError(`Expected ${count} value${count === 1 ? '' : 's'} in scale for shape [${data.shape.join(', ')}] but received ${scale.length}`);
    }
    checkScaleValues(scale, 'scale');
    const zeroPoint = o.zeroPoint;
    if (!(zeroPoint instanceof Int32Array)) {
      throw new TypeError(`Expected an Int32Array for zeroPoint but received ${describe(zeroPoint)}`);
    }
    if (zeroPoint.length !== count) {
      throw new RangeError(`Expected ${count} value${count === 1 ? '' : 's'} in zeroPoint for shape [${data.shape.join(', ')}] but received ${zeroPoint.length}`);
    }
    checkZeroPointValues(zeroPoint, 'zeroPoint', data.dtype, scheme);
    this.data = data;
    this.scale = scale;
    this.zeroPoint = zeroPoint;
    this.scheme = scheme;
    this.granularity = granularity;
  }

  get dtype(): D {
    return this.data.dtype;
  }

  /** The shape of the original (unquantized) tensor. */
  get shape(): readonly number[] {
    return this.data.shape;
  }

  /** The shape of `scale` and `zeroPoint` (see scaleShape). */
  get scaleShape(): number[] {
    return scaleShape(this.data.shape, this.granularity);
  }

  toString(): string {
    return `QTensor<${this.dtype}, ${this.scheme}, ${this.granularity.type}>[${this.shape.join(', ')}]`;
  }
}

/** Throws a RangeError naming `name` unless every scale is finite and > 0. */
export function checkScaleValues(scale: Float32Array, name: string): void {
  for (let i = 0; i < scale.length; i++) {
    const s = scale[i];
    if (!(s > 0) || s === Infinity) {
      throw new RangeError(`Expected finite positive float32 values in ${name} but element ${i} is ${s}`);
    }
  }
}

/** Throws a RangeError naming `name` unless every zero point is in the dtype's range (and fixed for symmetric). */
export function checkZeroPointValues(zeroPoint: Int32Array, name: string, dtype: QuantDType, scheme: Scheme): void {
  const { qmin, qmax } = qrange(dtype);
  const fixed = symmetricZeroPoint(dtype);
  for (let i = 0; i < zeroPoint.length; i++) {
    const z = zeroPoint[i];
    if (z < qmin || z > qmax) {
      throw new RangeError(`Expected values between ${qmin} and ${qmax} (${dtype}) in ${name} but element ${i} is ${z}`);
    }
    if (scheme === 'symmetric' && z !== fixed) {
      throw new RangeError(
        `Expected ${fixed} in every element of ${name} for a symmetric ${dtype} scheme but element ${i} is ${z} (use scheme 'asymmetric')`,
      );
    }
  }
}
