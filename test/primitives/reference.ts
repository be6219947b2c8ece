// Plain TypeScript references for the quantize family, written from the definitions (multi-indices
// and the scalar functions of lib/primitives/qparams.ts), independently of the kernels' run/stride
// arithmetic. Slow and obvious on purpose.
import type { Granularity } from '../../lib/primitives/granularity.js';
import { dequantizeValue, qparamsFromRange, quantizeValue, type Scheme } from '../../lib/primitives/qparams.js';
import type { QuantDType } from '../../lib/tensor/dtype.js';
import { rng } from '../helpers/rng.js';
export { rng };

export function unravel(e: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = e % shape[d];
    e = Math.floor(e / shape[d]);
  }
  return idx;
}

export function ravel(idx: readonly number[], shape: readonly number[]): number {
  let e = 0;
  for (let d = 0; d < shape.length; d++) e = e * shape[d] + idx[d];
  return e;
}

const norm = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);

/** Shape of the scales: the definition of each granularity. */
export function refScaleShape(shape: readonly number[], g: Granularity): number[] {
  switch (g.type) {
    case 'perTensor':
      return [];
    case 'perChannel':
      return [shape[norm(g.axis, shape.length)]];
    case 'perGroup': {
      const a = norm(g.axis, shape.length);
      return shape.map((d, i) => (i === a ? d / g.groupSize : d));
    }
    case 'perToken':
      return shape.slice(0, -1);
  }
}

/** Flat index of the scale that element `idx` uses. */
export function blockOf(idx: readonly number[], shape: readonly number[], g: Granularity): number {
  switch (g.type) {
    case 'perTensor':
      return 0;
    case 'perChannel':
      return idx[norm(g.axis, shape.length)];
    case 'perGroup': {
      const a = norm(g.axis, shape.length);
      const sidx = idx.map((v, i) => (i === a ? Math.floor(v / g.groupSize) : v));
      return ravel(sidx, refScaleShape(shape, g));
    }
    case 'perToken':
      return ravel(idx.slice(0, -1), shape.slice(0, -1));
  }
}

export function refNumBlocks(shape: readonly number[], g: Granularity): number {
  return refScaleShape(shape, g).reduce((a, b) => a * b, 1);
}

export function refQuantize(
  x: ArrayLike<number>,
  shape: readonly number[],
  g: Granularity,
  scale: ArrayLike<number>,
  zeroPoint: ArrayLike<number>,
  dtype: QuantDType,
): Int32Array {
  const q = new Int32Array(x.length);
  for (let e = 0; e < x.length; e++) {
    const b = blockOf(unravel(e, shape), shape, g);
    q[e] = quantizeValue(x[e], scale[b], zeroPoint[b], dtype);
  }
  return q;
}

export function refDequantize(
  q: ArrayLike<number>,
  shape: readonly number[],
  g: Granularity,
  scale: ArrayLike<number>,
  zeroPoint: ArrayLike<number>,
): Float32Array {
  const out = new Float32Array(q.length);
  for (let e = 0; e < q.length; e++) {
    const b = blockOf(unravel(e, shape), shape, g);
    out[e] = dequantizeValue(q[e], scale[b], zeroPoint[b]);
  }
  return out;
}

export function refRanges(x: ArrayLike<number>, shape: readonly number[], g: Granularity): { lo: number[]; hi: number[] } {
  const n = refNumBlocks(shape, g);
  const lo = new Array<number>(n).fill(Infinity);
  const hi = new Array<number>(n).fill(-Infinity);
  for (let e = 0; e < x.length; e++) {
    const b = blockOf(unravel(e, shape), shape, g);
    lo[b] = Math.min(lo[b], x[e]);
    hi[b] = Math.max(hi[b], x[e]);
  }
  return { lo, hi };
}

export function refChooseQParams(
  x: ArrayLike<number>,
  shape: readonly number[],
  g: Granularity,
  dtype: QuantDType,
  scheme: Scheme,
): { scale: Float32Array; zeroPoint: Int32Array } {
  const { lo, hi } = refRanges(x, shape, g);
  const scale = new Float32Array(lo.length);
  const zeroPoint = new Int32Array(lo.length);
  for (let b = 0; b < lo.length; b++) {
    const p = qparamsFromRange(lo[b], hi[b], dtype, scheme);
    scale[b] = p.scale;
    zeroPoint[b] = p.zeroPoint;
  }
  return { scale, zeroPoint };
}

const isFour = (dtype: QuantDType): boolean => dtype === 'int4' || dtype === 'uint4';

/** The stored bytes for quantized values: 4-bit values two per byte, element 2i low, zero padding. */
export function refPack(q: ArrayLike<number>, dtype: QuantDType): Uint8Array {
  if (!isFour(dtype)) return Uint8Array.from(q, (v) => v & 0xff);
  const out = new Uint8Array(Math.ceil(q.length / 2));
  for (let i = 0; i < q.length; i++) out[i >> 1] |= (q[i] & 0x0f) << (i % 2 === 0 ? 0 : 4);
  return out;
}

/** Values stored in quantized bytes (any typed array over them). */
export function refUnpack(data: ArrayBufferView, dtype: QuantDType, count: number): Int32Array {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    let v = isFour(dtype) ? (i % 2 === 0 ? bytes[i >> 1] & 0x0f : bytes[i >> 1] >> 4) : bytes[i];
    if (dtype === 'int8' && v > 127) v -= 256;
    if (dtype === 'int4' && v > 7) v -= 16;
    out[i] = v;
  }
  return out;
}

export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0x1f) return man ? NaN : sign * Infinity;
  if (exp === 0) return sign * man * 2 ** -24;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

export function bf16ToFloat(h: number): number {
  const u = new Uint32Array([h << 16]);
  return new Float32Array(u.buffer)[0];
}


/** Index of the first element where a and b differ bit for bit (as float32 or int), or -1. */
export function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const fa = new Float32Array(1);
  const fb = new Float32Array(1);
  const ua = new Uint32Array(fa.buffer);
  const ub = new Uint32Array(fb.buffer);
  for (let i = 0; i < a.length; i++) {
    if (Number.isInteger(a[i]) && Number.isInteger(b[i])) {
      if (a[i] !== b[i] || Object.is(a[i], -0) !== Object.is(b[i], -0)) return i;
      continue;
    }
    fa[0] = a[i];
    fb[0] = b[i];
    if (ua[0] !== ub[0]) return i;
  }
  return -1;
}
