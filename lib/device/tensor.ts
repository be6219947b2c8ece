// Tensors in GPU memory. The memory comes from cudaMalloc (never managed memory) on one device and is
// freed by dispose() or, failing that, when the tensor is garbage collected. Every operation returns
// a Promise that resolves when the GPU work is done; the event loop never waits for the GPU.
import { native } from '../native/binding.js';
import { allocateStorage, DTYPES, storageLength, type DType, type StorageOf } from '../tensor/dtype.js';
import { checkShape, expectTensor, Tensor } from '../tensor/tensor.js';
import { describe, expectObject, expectOneOf } from '../util/validate.js';
import { checkDevice } from './backend.js';

/** The native buffer of a DeviceTensor (a JS External holding the allocation). */
export type DeviceHandle = { readonly __deviceHandle: unique symbol };

interface DeviceNative {
  cudaHandle(): DeviceHandle;
  cudaAlloc(handle: DeviceHandle, device: number, bytes: number): Promise<void>;
  cudaFree(handle: DeviceHandle): void;
  cudaUpload(handle: DeviceHandle, host: ArrayBufferView): Promise<void>;
  cudaDownload(handle: DeviceHandle, host: ArrayBufferView): Promise<void>;
  cudaCopy(dst: DeviceHandle, src: DeviceHandle): Promise<void>;
}

const addon = (): DeviceNative => native<DeviceNative>();

export interface DeviceOptions {
  /** CUDA device index (default 0). */
  device?: number;
}

function bytesPerElement(dtype: DType): number {
  return dtype === 'float32' || dtype === 'int32' ? 4 : dtype === 'float16' || dtype === 'bfloat16' ? 2 : 1;
}

/** Bytes of device memory for `count` elements of `dtype` (4-bit types packed two per byte). */
export function deviceBytes(dtype: DType, count: number): number {
  return storageLength(dtype, count) * bytesPerElement(dtype);
}

/**
 * A tensor in GPU memory: a dtype and a shape as for Tensor (int4/uint4 packed two per byte, element
 * 2i in the low nibble), on one CUDA device. Create one with `DeviceTensor.fromHost` or
 * `DeviceTensor.empty`, read it back with `toHost`, and free it with `dispose()` (idempotent; a
 * disposed tensor throws on use). Without a CUDA device, creating one rejects with
 * "no CUDA device: <why>".
 *
 * @example
 * const x = await DeviceTensor.fromHost(Tensor.fromArray([1, 2, 3]), { device: 0 });
 * const back = await x.toHost(); // Tensor float32 [1, 2, 3]
 * x.dispose();
 */
export class DeviceTensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: readonly number[];
  /** Number of elements. */
  readonly size: number;
  readonly device: number;
  /** Bytes of device memory held. */
  readonly byteLength: number;
  #handle: DeviceHandle | undefined;

  private constructor(dtype: D, shape: readonly number[], device: number, handle: DeviceHandle) {
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.size = shape.reduce((a, b) => a * b, 1);
    this.device = device;
    this.byteLength = deviceBytes(dtype, this.size);
    this.#handle = handle;
  }

  /**
   * A tensor of uninitialized device memory (cudaMalloc) of a dtype and shape.
   *
   * @example
   * const y = await DeviceTensor.empty('int8', [768, 1536], { device: 0 });
   */
  static async empty<D extends DType>(dtype: D, shape: readonly number[], options: DeviceOptions = {}): Promise<DeviceTensor<D>> {
    expectOneOf(dtype, 'dtype', DTYPES);
    const dims = checkShape(shape, 'shape');
    const device = checkDevice(expectObject(options, 'options').device);
    const handle = addon().cudaHandle();
    const t = new DeviceTensor(dtype, dims, device, handle);
    await addon().cudaAlloc(handle, device, t.byteLength);
    return t;
  }

  /**
   * Copies a host tensor to a device.
   *
   * @example
   * const x = await DeviceTensor.fromHost(Tensor.fromArray([0.5, -1], [1, 2]));
   */
  static async fromHost<D extends DType>(tensor: Tensor<D>, options: DeviceOptions = {}): Promise<DeviceTensor<D>> {
    const host = expectTensor(tensor, 'tensor');
    const t = await DeviceTensor.empty(host.dtype, host.shape, options);
    try {
      await addon().cudaUpload(t.handle('tensor'), host.data);
    } catch (e) {
      t.dispose();
      throw e;
    }
    return t as DeviceTensor<D>;
  }

  /**
   * Copies the tensor back to host memory (into `out`, a host tensor of the same dtype and shape,
   * when given).
   *
   * @example
   * const host = await x.toHost();
   */
  async toHost(options: { out?: Tensor<D> } = {}): Promise<Tensor<D>> {
    const o = expectObject(options, 'options');
    let out: Tensor<D>;
    if (o.out !== undefined) {
      out = expectTensor(o.out, 'out', [this.dtype]);
      if (out.shape.length !== this.shape.length || out.shape.some((d, i) => d !== this.shape[i])) {
        throw new RangeError(`Expected out to have shape [${this.shape.join(', ')}] but received [${out.shape.join(', ')}]`);
      }
    } else {
      out = new Tensor(this.dtype, this.shape, allocateStorage(this.dtype, this.size) as StorageOf[D]);
    }
    await addon().cudaDownload(this.handle('this'), out.data);
    return out;
  }

  /**
   * Copies `src` (same dtype, shape and device) into this tensor, on the GPU.
   *
   * @example
   * await y.copyFrom(x);
   */
  async copyFrom(src: DeviceTensor<D>): Promise<this> {
    const s = expectDeviceTensor(src, 'src');
    if (s.dtype !== this.dtype || s.shape.length !== this.shape.length || s.shape.some((d, i) => d !== this.shape[i]) || s.device !== this.device) {
      throw new RangeError(
        `Expected src to be ${this.dtype} [${this.shape.join(', ')}] on cuda:${this.device} but received ${s.dtype} [${s.shape.join(', ')}] on cuda:${s.device}`,
      );
    }
    await addon().cudaCopy(this.handle('this'), s.handle('src'));
    return this;
  }

  /** Frees the device memory now (once work already queued on it is done). Calling it again does nothing. */
  dispose(): void {
    if (this.#handle === undefined) return;
    addon().cudaFree(this.#handle);
    this.#handle = undefined;
  }

  get disposed(): boolean {
    return this.#handle === undefined;
  }

  /** The native buffer, for the ops of lib/device; throws when the tensor was disposed. Internal. */
  handle(name: string): DeviceHandle {
    if (this.#handle === undefined) {
      throw new Error(`Expected ${name} to be a live DeviceTensor but it was disposed (dispose() freed its GPU memory)`);
    }
    return this.#handle;
  }

  toString(): string {
    return `DeviceTensor(${this.dtype}, [${this.shape.join(', ')}], cuda:${this.device}${this.disposed ? ', disposed' : ''})`;
  }
}

/** Checks that a value is a live DeviceTensor (of one of `dtypes` when given). */
export function expectDeviceTensor<D extends DType>(value: unknown, name: string, dtypes?: readonly D[]): DeviceTensor<D> {
  if (!(value instanceof DeviceTensor)) throw new TypeError(`Expected a DeviceTensor for ${name} but received ${describe(value)}`);
  if (dtypes && !(dtypes as readonly string[]).includes(value.dtype)) {
    throw new TypeError(`Expected ${name} of dtype ${dtypes.map((d) => `'${d}'`).join(' or ')} but received '${value.dtype}'`);
  }
  value.handle(name);
  return value as DeviceTensor<D>;
}
