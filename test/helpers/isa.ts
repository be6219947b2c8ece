// The CPU code paths a test runs every case on: each path natively where the CPU has it, and through
// its emulated build (SIMDe, and the C++ emulation of the AMX tiles) where it does not, so that every
// SIMD path is tested on every machine. A build without the emulated kernels fails here, loudly,
// rather than testing less (install libsimde-dev and rebuild).
import { backends, setIsa, ISAS, type Isa } from '../../lib/backends.js';

export interface IsaPath {
  isa: Isa;
  /** Run through the emulated build. */
  emulated: boolean;
  /** e.g. 'avx512vnni' or 'amx+emulated'. */
  name: string;
}

/** Caps the kernels at a path (emulated or native). */
export function useIsa(p: IsaPath): void {
  setIsa(p.isa, { emulate: p.emulated });
}

/** Lifts the cap: the best native path. */
export function resetIsa(): void {
  setIsa('amx');
}

/**
 * The distinct paths of a kernel family ('gemmF32', 'gemmInt': a key of backends().cpu.paths), from
 * the portable one up: every ISA, native if the CPU has it, else emulated; ISAs that lead the family
 * to a path already listed are left out.
 */
export function isaPaths(family: string): IsaPath[] {
  const cpu = backends().cpu;
  if (!cpu.emulationCompiled) {
    throw new Error('this build has no emulated kernel paths, so the paths this CPU lacks cannot be tested: install SIMDe (Debian: libsimde-dev) and rebuild');
  }
  const out: IsaPath[] = [];
  const seen = new Set<string>();
  try {
    for (const isa of ISAS) {
      setIsa(isa, { emulate: true });
      const taken = backends().cpu.paths[family];
      if (taken === undefined) throw new Error(`no kernel family ${family} in backends().cpu.paths`);
      if (seen.has(taken)) continue;
      seen.add(taken);
      const emulated = taken.endsWith('+emulated');
      out.push({ isa: taken.replace('+emulated', '') as Isa, emulated, name: taken });
    }
  } finally {
    resetIsa();
  }
  return out;
}
