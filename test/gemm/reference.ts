// Plain TypeScript references for the GEMM tests: a seeded RNG, the quantization of weights and
// activations written out from the primitives' definitions, exact integer sums and float64 products.
import { qparamsFromRange, quantizeValue, type Scheme } from '../../lib/primitives/qparams.js';
import { Tensor } from '../../lib/tensor/tensor.js';
import { rng } from '../helpers/rng.js';
export { rng };


export function randInt(r: () => number, lo: number, hi: number): number {
  return lo + Math.floor(r() * (hi - lo + 1));
}

/** A float32 tensor of uniform values in [-scale, scale). */
export function randTensor(r: () => number, shape: number[], scale = 1): Tensor<'float32'> {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (r() * 2 - 1) * scale;
  return new Tensor('float32', shape, data);
}

export { isaPaths, useIsa, resetIsa, type IsaPath } from '../helpers/isa.js';

/** min and max of the finite values; [0, 0] when there is none. */
export function rangeOf(values: ArrayLike<number>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) continue;
    if (values[i] < lo) lo = values[i];
    if (values[i] > hi) hi = values[i];
  }
  return lo <= hi ? [lo, hi] : [0, 0];
}

export type QDType = 'int8' | 'uint8' | 'int4';

/** Per-channel (groupSize 0) or per-group weight quantization of w[:, cols] from each group's range. */
export function quantizeWeightRef(
  w: Tensor<'float32'>,
  cols: ArrayLike<number>,
  dtype: 'int8' | 'int4',
  scheme: Scheme,
  groupSize: number,
): { q: Int32Array; scale: Float64Array; zero: Int32Array; groups: number } {
  const [n, k] = w.shape;
  const len = cols.length;
  const g = groupSize > 0 ? groupSize : len;
  const groups = Math.ceil(len / g);
  const q = new Int32Array(n * len);
  const scale = new Float64Array(n * groups);
  const zero = new Int32Array(n * groups);
  for (let row = 0; row < n; row++) {
    for (let gi = 0; gi < groups; gi++) {
      const vals: number[] = [];
      for (let j = gi * g; j < Math.min(len, (gi + 1) * g); j++) vals.push(w.data[row * k + cols[j]]);
      const [lo, hi] = rangeOf(vals);
      const p = qparamsFromRange(lo, hi, dtype, scheme);
      scale[row * groups + gi] = p.scale;
      zero[row * groups + gi] = p.zeroPoint;
      for (let j = gi * g; j < Math.min(len, (gi + 1) * g); j++) q[row * len + j] = quantizeValue(w.data[row * k + cols[j]], p.scale, p.zeroPoint, dtype);
    }
  }
  return { q, scale, zero, groups };
}

export interface ActRef {
  type: 'dynamic' | 'static';
  dtype: 'int8' | 'uint8';
  scheme: Scheme;
  scale?: number;
  zeroPoint?: number;
}

/** Quantizes one row segment: the parameters (dynamic: from its range) and the integers. */
export function quantizeActRef(values: ArrayLike<number>, act: ActRef): { q: Int32Array; scale: number; zero: number } {
  const p =
    act.type === 'dynamic'
      ? (() => {
          const [lo, hi] = rangeOf(values);
          return qparamsFromRange(lo, hi, act.dtype, act.scheme);
        })()
      : { scale: Math.fround(act.scale!), zeroPoint: act.zeroPoint! };
  const q = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) q[i] = quantizeValue(values[i], p.scale, p.zeroPoint, act.dtype);
  return { q, scale: p.scale, zero: p.zeroPoint };
}

export interface SegmentRef {
  cols: ArrayLike<number>; // original column of each position of the segment
  act: ActRef;
  q: Int32Array; // [n][len]
  scale: ArrayLike<number>; // [n][groups]
  zero: ArrayLike<number>;
  groupSize: number; // 0: per channel
}

/**
 * The reference of a quantized layer on x [m, k]: exact int sums acc[m][n][G] (as numbers), the
 * activation parameters, and y in float64 from them; `mag` is |b| + sum of |group terms| (the scale
 * of the fast path's rounding), `magK` |b| + sum over k of |products| (that of a float GEMM).
 */
export function quantizedLinearRef(
  x: Tensor<'float32'>,
  n: number,
  segments: SegmentRef[],
  bias: Float32Array | null,
): { acc: number[]; actScale: number[]; actZero: number[]; y: Float64Array; mag: Float64Array; magK: Float64Array; groups: number } {
  const k = x.shape[x.rank - 1];
  const m = x.size / k;
  const groupsOf = (s: SegmentRef) => (s.groupSize > 0 ? Math.ceil(s.cols.length / s.groupSize) : 1);
  const G = segments.reduce((a, s) => a + groupsOf(s), 0);
  const acc = new Array<number>(m * n * G).fill(0);
  const actScale: number[] = [];
  const actZero: number[] = [];
  const y = new Float64Array(m * n);
  const mag = new Float64Array(m * n);
  const magK = new Float64Array(m * n);
  for (let r = 0; r < m; r++) {
    for (let j = 0; j < n; j++) {
      y[r * n + j] = bias ? bias[j] : 0;
      mag[r * n + j] = bias ? Math.abs(bias[j]) : 0;
      magK[r * n + j] = mag[r * n + j];
    }
    let g0 = 0;
    for (const s of segments) {
      const len = s.cols.length;
      const vals = new Float32Array(len);
      for (let j = 0; j < len; j++) vals[j] = x.data[r * k + s.cols[j]];
      const a = quantizeActRef(vals, s.act);
      actScale.push(a.scale);
      actZero.push(a.zero);
      const gs = s.groupSize > 0 ? s.groupSize : len;
      const groups = groupsOf(s);
      for (let c = 0; c < n; c++) {
        for (let g = 0; g < groups; g++) {
          const zw = s.zero[c * groups + g];
          let sum = 0;
          let abs = 0;
          for (let j = g * gs; j < Math.min(len, (g + 1) * gs); j++) {
            const p = (a.q[j] - a.zero) * (s.q[c * len + j] - zw);
            sum += p;
            abs += Math.abs(p);
          }
          acc[(r * n + c) * G + g0 + g] = sum;
          const term = a.scale * s.scale[c * groups + g] * sum;
          magK[r * n + c] += a.scale * s.scale[c * groups + g] * abs;
          y[r * n + c] += term;
          mag[r * n + c] += Math.abs(term);
        }
      }
      g0 += groups;
    }
  }
  return { acc, actScale, actZero, y, mag, magK, groups: G };
}

/** y = x w^T + b in float64, and the sum of |terms| per output (for error bounds). */
export function matmulRef(x: Tensor<'float32'>, w: Tensor<'float32'>, bias: Float32Array | null): { y: Float64Array; mag: Float64Array } {
  const [n, k] = w.shape;
  const m = x.size / k;
  const y = new Float64Array(m * n);
  const mag = new Float64Array(m * n);
  for (let r = 0; r < m; r++)
    for (let c = 0; c < n; c++) {
      let s = bias ? bias[c] : 0;
      let a = bias ? Math.abs(bias[c]) : 0;
      for (let j = 0; j < k; j++) {
        const p = x.data[r * k + j] * w.data[c * k + j];
        s += p;
        a += Math.abs(p);
      }
      y[r * n + c] = s;
      mag[r * n + c] = a;
    }
  return { y, mag };
}

/** Index of the first element with |got - want| > bound[i], or -1. */
export function firstOutside(got: ArrayLike<number>, want: ArrayLike<number>, bound: (i: number) => number): number {
  for (let i = 0; i < want.length; i++) if (!(Math.abs(got[i] - want[i]) <= bound(i))) return i;
  return -1;
}
