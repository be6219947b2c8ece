import { allocateStorage, DTYPES, type DType, storageClassName, storageLength, type StorageOf } from './dtype.js';
import { describe } from '../util/validate.js';

// The intrinsic accessors of typed arrays: a subclass cannot lie through them about its element type,
// length or buffer (a subclass may override `length`, `name` or `constructor`; these read the slots).
const TYPED_ARRAY_PROTO = Object.getPrototypeOf(Int8Array.prototype) as object;
function intrinsicGetter(key: PropertyKey): (this: unknown) => unknown {
  return Object.getOwnPropertyDescriptor(TYPED_ARRAY_PROTO, key)!.get! as (this: unknown) => unknown;
}
const TAG_OF = intrinsicGetter(Symbol.toStringTag);
const LENGTH_OF = intrinsicGetter('length');
const BUFFER_OF = intrinsicGetter('buffer');
const OFFSET_OF = intrinsicGetter('byteOffset');
const PLAIN_PROTOTYPES: Record<string, object> = {
  Float32Array: Float32Array.prototype,
  Uint16Array: Uint16Array.prototype,
  Int32Array: Int32Array.prototype,
  Int8Array: Int8Array.prototype,
  Uint8Array: Uint8Array.prototype,
};
const PLAIN_CONSTRUCTORS: Record<string, new (buffer: ArrayBufferLike, offset: number, length: number) => ArrayBufferView> = {
  Float32Array,
  Uint16Array,
  Int32Array,
  Int8Array,
  Uint8Array,
};

/**
 * The element type of a real typed array (its internal slot: 'Float32Array', ...), or undefined for
 * anything else (a DataView, a Proxy, a plain object with a typed array's prototype).
 */
export function typedArrayKind(value: unknown): string | undefined {
  if (!ArrayBuffer.isView(value)) return undefined;
  return TAG_OF.call(value) as string | undefined;
}

/** The real length of a typed array (0 once its ArrayBuffer is detached). */
export function typedArrayLength(value: ArrayBufferView): number {
  return LENGTH_OF.call(value) as number;
}

/** True when the ArrayBuffer behind a typed array was transferred or otherwise detached. */
export function isDetached(value: ArrayBufferView): boolean {
  const buffer = BUFFER_OF.call(value) as ArrayBufferLike;
  if (typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer) return false;
  const flag = (buffer as { detached?: unknown }).detached;
  if (typeof flag === 'boolean') return flag;
  if ((buffer as ArrayBuffer).byteLength > 0) return false;
  try {
    new Uint8Array(buffer);
    return false;
  } catch {
    return true;
  }
}

/** Tensors made by the constructor (what `instanceof Tensor` accepts). */
const CONSTRUCTED = new WeakSet<object>();

/**
 * A dense, row-major tensor in host memory: a typed array plus a shape and a dtype, checked when it is made.
 * A tensor is frozen (its dtype, shape and data cannot be reassigned), and `instanceof Tensor` holds
 * only for objects that the constructor made; every API that takes a tensor also checks, each call,
 * that its data was not detached (an ArrayBuffer transferred to a worker, say).
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
    if (typedArrayKind(data) !== cls) {
      throw new TypeError(`Expected a ${cls} for the data of a ${dtype} tensor but received ${describe(data)}`);
    }
    const view = data as ArrayBufferView;
    const length = typedArrayLength(view);
    const expected = storageLength(dtype, this.size);
    if (expected > 0 && length === 0 && isDetached(view)) {
      throw new TypeError(`Expected attached data for a ${dtype} tensor but its ArrayBuffer was detached (transferred)`);
    }
    if (length !== expected) {
      throw new RangeError(
        `Expected ${expected} elements of data for a ${dtype} tensor of shape [${this.shape.join(', ')}] but received ${length}`,
      );
    }
    this.dtype = dtype;
    // A subclass (Buffer, or one that overrides length) is replaced by a plain view of the same memory.
    this.data = (Object.getPrototypeOf(view) === PLAIN_PROTOTYPES[cls]
      ? view
      : new PLAIN_CONSTRUCTORS[cls](BUFFER_OF.call(view) as ArrayBufferLike, OFFSET_OF.call(view) as number, length)) as StorageOf[D];
    CONSTRUCTED.add(this);
    Object.freeze(this);
  }

  /** True only for tensors made by the constructor (not objects that merely share its prototype). */
  static [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && CONSTRUCTED.has(value);
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

/**
 * Checks that `value` is a Tensor (made by the constructor, optionally of one of `dtypes`) whose data
 * is still attached and of its shape's length, and returns it typed. The public API calls this on
 * every tensor it takes, just before use, so that the native code works on what was checked.
 */
export function expectTensor<D extends DType>(value: unknown, name: string, dtypes?: readonly D[]): Tensor<D> {
  if (!(value instanceof Tensor)) throw new TypeError(`Expected a Tensor for ${name} but received ${describe(value)}`);
  if (dtypes && !(dtypes as readonly string[]).includes(value.dtype)) {
    throw new TypeError(`Expected ${name} to have dtype ${dtypes.join(' or ')} but received ${value.dtype}`);
  }
  checkAttached(value, name);
  return value as Tensor<D>;
}

/** Throws a TypeError naming `name` when the tensor's data was detached since it was made. */
export function checkAttached(t: Tensor, name: string): void {
  const length = typedArrayLength(t.data);
  if (length !== storageLength(t.dtype, t.size) || (length === 0 && isDetached(t.data))) {
    throw new TypeError(`Expected ${name} to hold its data but its ArrayBuffer was detached (transferred)`);
  }
}
