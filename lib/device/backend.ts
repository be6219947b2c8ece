// Which backend runs an op: the `backend` and `device` options shared by every op with a CUDA
// version. CUDA devices are listed once per process (backends()), so 'auto' costs nothing per call.
import { backends } from '../backends.js';
import { describe, expectInteger, expectOneOf } from '../util/validate.js';

/** 'cpu', 'cuda', or 'auto' (CUDA when this build has it and a device is found, else the CPU). */
export type Backend = 'auto' | 'cpu' | 'cuda';
export const BACKENDS: readonly Backend[] = ['auto', 'cpu', 'cuda'];

/** The options that pick where a host-tensor op runs. */
export interface BackendOptions {
  /**
   * Default 'cpu': for tensors in host memory the CPU kernels avoid two PCIe copies. With 'cuda' (or
   * 'auto' on a machine with a GPU) the input is copied to the device, the op runs there and the
   * results are copied back; the results are the same integers (floats within the stated budgets).
   */
  backend?: Backend;
  /** CUDA device index (default 0); only read when the op runs on CUDA. */
  device?: number;
}

/** Where an op runs, resolved from its options. */
export type Target = { kind: 'cpu' } | { kind: 'cuda'; device: number };

let cached: { count: number; status: string } | undefined;

/** Number of CUDA devices (0 without a GPU, a driver or CUDA in this build) and why none, if none. */
export function cudaDevices(): { count: number; status: string } {
  if (!cached) {
    const { cuda } = backends();
    cached = { count: cuda.devices.length, status: cuda.devices.length ? '' : cuda.status || 'no device found' };
  }
  return cached;
}

/** Throws the error of a machine without a usable device (the native side says the same). */
export function noCudaDevice(): Error {
  return new Error(`no CUDA device: ${cudaDevices().status}`);
}

/** Checks a device index against the devices present; throws "no CUDA device: ..." when there is none. */
export function checkDevice(device: unknown, name = 'device'): number {
  const d = expectInteger(device ?? 0, name, { min: 0 });
  const { count } = cudaDevices();
  if (count === 0) throw noCudaDevice();
  if (d >= count) throw new RangeError(`Expected a CUDA device index between 0 and ${count - 1} for ${name} but received ${d}`);
  return d;
}

/**
 * Resolves the `backend` and `device` options of an op (any other field is ignored): 'cpu' (the
 * default), 'cuda' (throws "no CUDA device: <why>" when there is none), or 'auto' (CUDA when a device
 * is found).
 *
 * @example
 * resolveBackend({ backend: 'auto' }); // { kind: 'cpu' } on a machine without a GPU
 */
export function resolveBackend(options: unknown): Target {
  if (typeof options !== 'object' || options === null) return { kind: 'cpu' };
  const o = options as Record<string, unknown>;
  const backend = o.backend === undefined ? 'cpu' : expectOneOf(o.backend, 'backend', BACKENDS);
  if (backend === 'cpu' || (backend === 'auto' && cudaDevices().count === 0)) {
    if (o.device !== undefined) expectInteger(o.device, 'device', { min: 0 });
    return { kind: 'cpu' };
  }
  return { kind: 'cuda', device: checkDevice(o.device) };
}

/** For the Sync twins: CUDA work is asynchronous, so only 'cpu' and 'auto' (meaning the CPU) run. */
export function syncBackend(options: unknown, fn: string): void {
  if (typeof options !== 'object' || options === null) return;
  const backend = (options as Record<string, unknown>).backend;
  if (backend === undefined) return;
  if (expectOneOf(backend, 'backend', BACKENDS) === 'cuda') {
    throw new TypeError(`Expected backend 'cpu' or 'auto' for ${fn}Sync (CUDA work is asynchronous: use ${fn}) but received ${describe(backend)}`);
  }
}
