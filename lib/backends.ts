import { native } from './native/binding.js';
import { describe, expectFiniteNumber, expectInteger, expectObject, expectOneOf } from './util/validate.js';

/**
 * The CPU code paths, in order: a cap at one of them allows it and those before it. `avxvnni` is the
 * 256-bit VEX VNNI of client CPUs (Alder Lake and later); `amx` is AMX-INT8 (with AVX-512 VNNI).
 */
export type Isa = 'scalar' | 'avx2' | 'avxvnni' | 'avx512' | 'avx512vnni' | 'amx';
export const ISAS: readonly Isa[] = ['scalar', 'avx2', 'avxvnni', 'avx512', 'avx512vnni', 'amx'];

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
    /** setIsa's `emulate`: true when the paths the CPU lacks run through their emulated builds, 'always' when every path does. */
    emulate: boolean | 'always';
    /** This build contains the emulated builds of the SIMD kernels (SIMDe). */
    emulationCompiled: boolean;
    /**
     * The path each kernel family with AVX-VNNI, AVX-512 or AMX code takes now, for example
     * `{ gemmF32: 'avx512', gemmInt: 'amx+emulated' }` ('+emulated': through the emulated build).
     */
    paths: Record<string, string>;
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
  gemmIntPeak(seconds: number, out: Float64Array, async: true): { isa: 'amx' | 'avx512vnni' | 'none'; done: Promise<void> };
  backends(): Backends;
  setThreads(n: number): number;
  setIsa(isa: string, emulate: 'off' | 'missing' | 'always'): string;
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

/** Options of {@link setIsa}. */
export interface SetIsaOptions {
  /**
   * Treat the CPU as having every path up to the cap: the kernel families run the paths it lacks
   * through their emulated builds (the same source compiled against SIMDe, and a plain C++ emulation
   * of the AMX tiles), bit for bit the results of the native code but far slower. For tests and
   * comparisons on machines without AVX-512 or AMX. `'always'` runs the emulated builds even for the
   * paths the CPU has (to check them against the native code). Default false.
   */
  emulate?: boolean | 'always';
}

/**
 * Caps the CPU code path (to test or compare a slower one); each kernel family uses the best of its
 * paths that the CPU has up to this cap. Returns the path now in use. `setIsa('amx')` lifts the cap.
 *
 * @example
 * setIsa('scalar'); // portable code only
 * setIsa('amx', { emulate: true }); // the AMX kernels, emulated where the CPU has no AMX
 */
export function setIsa(isa: Isa, options: SetIsaOptions = {}): Isa {
  expectOneOf(isa, 'isa', ISAS);
  const o = expectObject(options, 'options');
  const emulate = o.emulate === undefined ? false : o.emulate;
  if (typeof emulate !== 'boolean' && emulate !== 'always') {
    throw new TypeError(`Expected true, false or 'always' for options.emulate but received ${describe(emulate)}`);
  }
  return native<BackendsNative>().setIsa(isa, emulate === 'always' ? 'always' : emulate ? 'missing' : 'off') as Isa;
}

/** What {@link measureInt8Peak} found. */
export interface Int8Peak {
  /** The instruction measured: AMX tdpbssd where the CPU has AMX, else AVX-512 vpdpbusd ('none': neither). */
  isa: 'amx' | 'avx512vnni' | 'none';
  /** int8 operations (a multiply and an add each) per second on all kernel threads. */
  opsPerSecond: number;
}

/**
 * Measures the peak int8 rate of this CPU's best native multiply instruction on all kernel threads
 * (independent chains on registers or tiles, nothing else), so that a GEMM's speed can be read as a
 * fraction of what the hardware can do. Benchmarks use it; it takes about `seconds` (default 0.3).
 *
 * @example
 * const peak = await measureInt8Peak();
 * console.log(peak.isa, (peak.opsPerSecond / 1e12).toFixed(1), 'TOPS');
 */
export async function measureInt8Peak(options: { seconds?: number } = {}): Promise<Int8Peak> {
  const o = expectObject(options, 'options');
  const seconds = o.seconds === undefined ? 0.3 : expectFiniteNumber(o.seconds, 'options.seconds', { min: 0.01, max: 10 });
  const out = new Float64Array(1);
  const r = native<BackendsNative>().gemmIntPeak(seconds, out, true);
  await r.done;
  return { isa: r.isa, opsPerSecond: out[0] };
}
