import { allocateStorage, DTYPES, type DType, storageClassName, storageLength, type StorageOf } from './dtype.js';
import { describe } from '../util/validate.js';

/**
 * A dense, row-major tensor in host memory: a typed array plus a shape and a dtype, checked when it is made.
 *
 * @example
 * const x = new Tensor('float32', [2, 3], new Float32Array([1, 2, 3, 4, 5, 6]));
 * x.size; // 6
 * Tensor.zeros('int4', [5]).data.length; // 3 bytes: two 4-bit values per byte
 */
export class Tensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly data: StorageOf[D];
  /** Number of elements (the product of the shape). */
  readonly size: number;

  constructor(dtype: D, shape: readonly number[], data: StorageOf[D]) {
    if (!(DTYPES as readonly string[]).includes(dtype)) {
      throw new RangeError(`Expected one of ${DTYPES.join(', ')} for dtype but received ${describe(dtype)}`);
    }
    this.shape = Object.freeze(checkShape(shape, 'shape'));
    this.size = this.shape.reduce((a, b) => a * b, 1);
    const cls = storageClassName(dtype);
    if (!ArrayBuffer.isView(data) || data.constructor.name !== cls) {
      throw new TypeError(`Expected a ${cls} for the data of a ${dtype} tensor but received ${describe(data)}`);
    }
    const expected = storageLength(dtype, this.size);
    if ((data as { length: number }).length !== expected) {
      throw new RangeError(
        `Expected ${expected} elements of data for a ${dtype} tensor of shape [${this.shape.join(', ')}] but received ${(data as { length: number }).length}`,
      );
    }
    this.dtype = dtype;
    this.data = data;
  }

  /** A tensor of zeros (all-zero bytes). */
  static zeros<D extends DType>(dtype: D, shape: readonly number[]): Tensor<D> {
    const dims = checkShape(shape, 'shape');
    return new Tensor(dtype, dims, allocateStorage(dtype, dims.reduce((a, b) => a * b, 1)));
  }

  /** A float32 tensor from numbers; the shape defaults to one dimension. */
  static fromArray(values: ArrayLike<number>, shape: readonly number[] = [values.length]): Tensor<'float32'> {
    return new Tensor('float32', shape, Float32Array.from(values));
  }

  get rank(): number {
    return this.shape.length;
  }

  /** Same data, another shape with the same number of elements. */
  reshape(shape: readonly number[]): Tensor<D> {
    const dims = checkShape(shape, 'shape');
    const size = dims.reduce((a, b) => a * b, 1);
    if (size !== this.size) {
      throw new RangeError(`Cannot reshape a tensor of ${this.size} elements to shape [${dims.join(', ')}] (${size} elements)`);
    }
    return new Tensor(this.dtype, dims, this.data);
  }

  toString(): string {
    return `Tensor<${this.dtype}>[${this.shape.join(', ')}]`;
  }
}

/** Validates a shape: an array of non-negative integers. */
export function checkShape(shape: unknown, name: string): number[] {
  if (!Array.isArray(shape)) throw new TypeError(`Expected an array of dimensions for ${name} but received ${describe(shape)}`);
  return shape.map((d, i) => {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) {
      throw new RangeError(`Expected a non-negative integer for ${name}[${i}] but received ${describe(d)}`);
    }
    return d;
  });
}

/** Checks that `value` is a Tensor (optionally of one of `dtypes`) and returns it typed. */
export function expectTensor<D extends DType>(value: unknown, name: string, dtypes?: readonly D[]): Tensor<D> {
  if (!(value instanceof Tensor)) throw new TypeError(`Expected a Tensor for ${name} but received ${describe(value)}`);
  if (dtypes && !(dtypes as readonly string[]).includes(value.dtype)) {
    throw new TypeError(`Expected ${name} to have dtype ${dtypes.join(' or ')} but received ${value.dtype}`);
  }
  return value as Tensor<D>;
}
