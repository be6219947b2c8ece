// Shared pieces of the calibration tests: a seeded generator, the code paths to run on, and plain
// TypeScript reference loops written independently of the kernels.
import { backends, setIsa, type Isa } from '../../lib/index.js';
import { dequantizeValue, qparamsFromRange, quantizeValue, type Scheme } from '../../lib/primitives/qparams.js';
import type { QuantDType } from '../../lib/tensor/dtype.js';
import { rng } from '../helpers/rng.js';
export { rng };


/** Standard normal samples (Box-Muller). */
export function gaussian(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(r(), 1e-12);
    out[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
  }
  return out;
}

export function uniform(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => lo + (hi - lo) * r());
}

/** The scalar path and the best one this CPU has (deduplicated). */
export function isas(): Isa[] {
  const best = backends().cpu.detectedIsa;
  return best === 'scalar' ? ['scalar'] : ['scalar', best];
}

/** Runs fn once per code path, restoring the best path afterwards. */
export function onEveryIsa(fn: (isa: Isa) => void): void {
  try {
    for (const isa of isas()) {
      setIsa(isa);
      fn(isa);
    }
  } finally {
    setIsa('amx');
  }
}

export async function onEveryIsaAsync(fn: (isa: Isa) => Promise<void>): Promise<void> {
  try {
    for (const isa of isas()) {
      setIsa(isa);
      await fn(isa);
    }
  } finally {
    setIsa('amx');
  }
}

/** Reference min/max keeping `axis` of a row-major tensor (NaN skipped; NaN when a slice has none). */
export function refMinMax(x: ArrayLike<number>, shape: number[], axis?: number): { min: number[]; max: number[]; nan: number } {
  const n = axis === undefined ? 1 : shape[axis];
  const inner = axis === undefined ? 1 : shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const min = new Array<number>(n).fill(Infinity);
  const max = new Array<number>(n).fill(-Infinity);
  let nan = 0;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (Number.isNaN(v)) {
      nan++;
      continue;
    }
    const a = axis === undefined ? 0 : Math.floor(i / inner) % n;
    if (v < min[a]) min[a] = v;
    if (v > max[a]) max[a] = v;
  }
  for (let a = 0; a < n; a++) {
    if (min[a] > max[a]) {
      min[a] = NaN;
      max[a] = NaN;
    }
  }
  return { min, max, nan };
}

/**
 * Reference bin of a value on [lo, hi] with `bins` bins: floor((x - lo) * bins / (hi - lo)) in
 * float64, clamped, except that when x - lo rounded up onto an integer t (exact error below 0,
 * found with TwoSum) the value belongs to the bin below. -1 for NaN.
 */
export function refBin(x: number, lo: number, hi: number, bins: number): number {
  if (Number.isNaN(x)) return -1;
  const s = x - lo;
  // TwoSum of x and -lo.
  const bv = s - x;
  const err = x - (s - bv) + (-lo - bv);
  const t = s * (bins / (hi - lo));
  let b = Math.min(Math.max(Math.floor(t), 0), bins - 1);
  if (Number.isInteger(t) && t > 0 && t <= bins - 1 && err < 0) b -= 1;
  return b;
}

/** Squared error of fake quantization of one value with the TS mirror of quant_math. */
export function refSqErr(x: number, scale: number, zeroPoint: number, dtype: QuantDType): number {
  const back = dequantizeValue(quantizeValue(x, scale, zeroPoint, dtype), scale, zeroPoint);
  const d = back - Math.fround(x);
  return d * d;
}

/** Weighted mean squared error of fake quantization with the qparams of [lo, hi]. */
export function refMse(x: ArrayLike<number>, weights: ArrayLike<number> | null, lo: number, hi: number, dtype: QuantDType, scheme: Scheme): number {
  const { scale, zeroPoint } = qparamsFromRange(lo, hi, dtype, scheme);
  let s = 0;
  let w = 0;
  for (let i = 0; i < x.length; i++) {
    if (Number.isNaN(x[i])) continue;
    const wi = weights ? weights[i] : 1;
    s += wi * refSqErr(x[i], scale, zeroPoint, dtype);
    w += wi;
  }
  return s / w;
}

/** Relative closeness for float sums. */
export function close(a: number, b: number, rel: number, abs = 0): boolean {
  return Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b)) + abs;
}

/** Index of the first element where a and b differ (NaN equals NaN), or -1 (cheap on long arrays). */
export function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>, eq: (x: number, y: number) => boolean = Object.is): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!eq(a[i], b[i]) && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) return i;
  return -1;
}
