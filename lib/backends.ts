import { native } from './native/binding.js';
import { expectInteger, expectOneOf } from './util/validate.js';

export type Isa = 'scalar' | 'avx2' | 'avx512' | 'avx512vnni' | 'amx';
export const ISAS: readonly Isa[] = ['scalar', 'avx2', 'avx512', 'avx512vnni', 'amx'];

export interface CudaDevice {
  index: number;
  name: string;
  computeCapability: string;
  totalMemory: number;
  multiprocessors: number;
}

/** What this build and this machine offer. */
export interface Backends {
  cpu: {
    avx2: boolean;
    avx512: boolean;
    avx512vnni: boolean;
    avx512bf16: boolean;
    avxvnni: boolean;
    amxTile: boolean;
    amxInt8: boolean;
    amxBf16: boolean;
    /** AMX reported by the CPU and tile permission granted by the OS. */
    amxUsable: boolean;
    /** Best code path this CPU supports. */
    detectedIsa: Isa;
    /** Code path the kernels use now (the detected one unless limited by setIsa or QARVD_ISA). */
    isa: Isa;
    threads: number;
  };
  cuda: {
    /** The addon was built with the CUDA kernels. */
    compiled: boolean;
    runtimeVersion?: number;
    driverVersion?: number;
    /** Why no device is listed, if none is. */
    status: string;
    devices: CudaDevice[];
  };
}

interface BackendsNative {
  backends(): Backends;
  setThreads(n: number): number;
  setIsa(isa: string): string;
}

/**
 * Reports the CPU features detected at run time, the code path in use, the thread count, and whether
 * CUDA was compiled in and which devices were found.
 *
 * @example
 * import { backends } from 'qarvd';
 * const { cpu, cuda } = backends();
 * console.log(cpu.isa, cpu.threads, cuda.devices.length);
 */
export function backends(): Backends {
  return native<BackendsNative>().backends();
}

/**
 * Sets how many threads the CPU kernels use (the default is the number of cores, or
 * QARVD_NUM_THREADS). Returns the new count.
 *
 * @example
 * setThreads(1); // single-threaded, e.g. for profiling
 */
export function setThreads(threads: number): number {
  expectInteger(threads, 'threads', { min: 1, max: 1024 });
  return native<BackendsNative>().setThreads(threads);
}

/**
 * Caps the CPU code path (to test or compare a slower one); the kernels use the best path the CPU
 * has up to this cap. Returns the path now in use. `setIsa('amx')` lifts the cap.
 *
 * @example
 * setIsa('scalar'); // portable code only
 */
export function setIsa(isa: Isa): Isa {
  expectOneOf(isa, 'isa', ISAS);
  return native<BackendsNative>().setIsa(isa) as Isa;
}
