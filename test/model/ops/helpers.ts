// Shared by the model-op tests: seeded data, the code paths to test, and float comparison.
import type { Test } from 'tap';
import { backends, setIsa, Tensor, type Isa } from '../../../lib/index.js';

/** Deterministic uniform numbers in [-1, 1). */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s / 4294967296) * 2 - 1;
  };
}

export function randomTensor(shape: number[], seed: number, amplitude = 1, offset = 0): Tensor<'float32'> {
  const r = rng(seed);
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = offset + amplitude * r();
  return new Tensor('float32', shape, data);
}

/** The CPU code paths this machine can run: always scalar, plus avx2 when present. */
export function isas(): Isa[] {
  return backends().cpu.avx2 ? ['scalar', 'avx2'] : ['scalar'];
}

/** Runs fn with the kernels capped at `isa`, then lifts the cap. */
export async function withIsa<T>(isa: Isa, fn: () => T | Promise<T>): Promise<T> {
  setIsa(isa);
  try {
    return await fn();
  } finally {
    setIsa('amx');
  }
}

/**
 * Largest violation of |actual - expected| <= rtol * |expected| + atol, as a ratio (<= 1 passes),
 * with the first failing index for the message.
 */
export function compare(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number | ArrayLike<number>): { ratio: number; index: number; detail: string } {
  if (actual.length !== expected.length) return { ratio: Infinity, index: -1, detail: `length ${actual.length} != ${expected.length}` };
  let ratio = 0;
  let index = -1;
  for (let i = 0; i < actual.length; i++) {
    const e = expected[i];
    const a = actual[i];
    const bound = rtol * Math.abs(e) + (typeof atol === 'number' ? atol : atol[i]);
    const err = Number.isNaN(e) ? (Number.isNaN(a) ? 0 : Infinity) : Math.abs(a - e);
    const r = err === 0 ? 0 : err / bound;
    if (r > ratio || Number.isNaN(r)) {
      ratio = Number.isNaN(r) ? Infinity : r;
      index = i;
    }
  }
  return { ratio, index, detail: index < 0 ? 'exact' : `element ${index}: ${actual[index]} vs ${expected[index]}` };
}

/** Asserts closeness within rtol/atol on tap's `t`. */
export function assertClose(t: Test, actual: ArrayLike<number>, expected: ArrayLike<number>, rtol: number, atol: number | ArrayLike<number>, what: string): void {
  const c = compare(actual, expected, rtol, atol);
  t.ok(c.ratio <= 1, `${what}: within rtol ${rtol}, atol ${typeof atol === 'number' ? atol : 'per element'} (${c.detail}, ratio ${c.ratio.toFixed(3)})`);
}

/** Max |x| of an array (for absolute tolerances that scale with the data). */
export function maxAbs(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}
