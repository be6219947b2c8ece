// Plain double-precision reference loops shared by several model-op tests.
import { roundHalfToEven } from '../../../lib/index.js';

export interface RefMask {
  chunk?: number;
  offset?: number;
}

/** softmax(q k^T * scale) v per head, in double, over the keys each query may see. */
export function attentionRef(q: Float32Array, k: Float32Array, v: Float32Array, lq: number, lk: number, heads: number, d: number,
  mask: RefMask = {}, scale = 1 / Math.sqrt(d)): Float64Array {
  const out = new Float64Array(lq * heads * d);
  const s = new Float64Array(lk);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < lq; i++) {
      const lim = mask.chunk ? Math.min(lk, (Math.floor((i + (mask.offset ?? 0)) / mask.chunk) + 1) * mask.chunk) : lk;
      let max = -Infinity;
      for (let j = 0; j < lim; j++) {
        let dot = 0;
        for (let c = 0; c < d; c++) dot += q[(i * heads + h) * d + c] * k[(j * heads + h) * d + c];
        s[j] = dot * scale;
        max = Math.max(max, s[j]);
      }
      let sum = 0;
      for (let j = 0; j < lim; j++) sum += (s[j] = Math.exp(s[j] - max));
      for (let c = 0; c < d; c++) {
        let acc = 0;
        for (let j = 0; j < lim; j++) acc += s[j] * v[(j * heads + h) * d + c];
        out[(i * heads + h) * d + c] = acc / sum;
      }
    }
  }
  return out;
}

// ---- the precisions of attention and the storage of the KV cache ----

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The bfloat16 bits of a float32 value, rounded as VCVTNE2PS2BF16: zero and denormals to a signed zero, NaN quieted, else to nearest even. */
export function bf16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0];
  const exp = u & 0x7f800000, man = u & 0x007fffff;
  if (exp === 0) return (u >>> 16) & 0x8000;
  if (exp === 0x7f800000) return (u >>> 16) | (man ? 0x40 : 0);
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16Value(bits: number): number {
  u32[0] = bits << 16;
  return f32[0];
}

export const bf16 = (x: number): number => bf16Value(bf16Bits(x));

/** Symmetric int8 of a row in float32 steps: scale = max(fround(max|x| / 127), MIN_SCALE), q = roundHalfToEven(fround(x / scale)). */
export function quantizeRowRef(x: ArrayLike<number>): { q: Int8Array; scale: number } {
  let amax = 0;
  for (let i = 0; i < x.length; i++) amax = Math.max(amax, Math.abs(x[i]));
  const scale = Math.max(Math.fround(amax / 127), 1.1920928955078125e-7);
  const q = new Int8Array(x.length);
  for (let i = 0; i < x.length; i++) q[i] = Math.min(127, Math.max(-128, roundHalfToEven(Math.fround(x[i] / scale))));
  return { q, scale };
}

/** Mean of each of `width` channels over n tokens, summed in double by groups of `group` tokens (the groups in order), as float32. */
export function channelMeanRef(x: ArrayLike<number>, n: number, width: number, group = n): Float32Array {
  const mean = new Float32Array(width);
  for (let c = 0; c < width; c++) {
    let s = 0;
    for (let g0 = 0; g0 < n; g0 += group) {
      let p = 0;
      for (let t = g0; t < Math.min(n, g0 + group); t++) p += x[t * width + c];
      s += p;
    }
    mean[c] = s / n;
  }
  return mean;
}

/** Keys or values as the kernel reads them: the float values (int8: the integers, with scales per token and head). */
export interface KvRef {
  storage: 'fp32' | 'bf16' | 'int8';
  /** fp32 and bf16: the stored values; int8: the integers. */
  values: ArrayLike<number>;
  /** int8: [tokens, heads]. */
  scales?: ArrayLike<number>;
}

/**
 * Attention in double with the operands of a precision ('fp32': the stored keys and values as they
 * dequantize; 'bf16': q * scale, k and v rounded to bfloat16; 'int8': q * scale and the smoothed keys
 * quantized per token and head, v rounded to bfloat16) and an exact softmax. The kernels also round
 * the probabilities to bfloat16 in 'bf16' and 'int8', which moves each output by at most 2^-8 max|v|
 * (returned as `vmax`, over the values the products see).
 */
export function attentionPrecisionRef(q: Float32Array, k: KvRef, v: KvRef, lq: number, lk: number, heads: number, d: number,
  precision: 'fp32' | 'bf16' | 'int8', mask: RefMask = {}, scale = 1 / Math.sqrt(d)): { out: Float64Array; vmax: number } {
  const f = Math.fround;
  const width = heads * d;
  const ks = (j: number, h: number) => (k.storage === 'int8' ? k.scales![j * heads + h] : 1);
  const vs = (j: number, h: number) => (v.storage === 'int8' ? v.scales![j * heads + h] : 1);
  // Keys and values as the products see them.
  const kEff = new Float64Array(lk * width);
  const vEff = new Float64Array(lk * width);
  for (let j = 0; j < lk; j++)
    for (let h = 0; h < heads; h++)
      for (let c = 0; c < d; c++) {
        const i = j * width + h * d + c;
        const kv = k.values[i], vv = v.values[i];
        kEff[i] = (precision === 'bf16' && k.storage === 'fp32' ? bf16(kv) : kv) * ks(j, h);
        vEff[i] = (precision !== 'fp32' && v.storage === 'fp32' ? bf16(vv) : vv) * vs(j, h);
      }
  let kInt: Int8Array | undefined;
  let kScale: Float32Array | undefined;
  if (precision === 'int8') {
    kInt = new Int8Array(lk * width);
    kScale = new Float32Array(lk * heads);
    const mean = k.storage === 'int8' ? new Float32Array(width) : channelMeanRef(k.values, lk, width, 256);
    for (let j = 0; j < lk; j++)
      for (let h = 0; h < heads; h++) {
        const row = Array.from({ length: d }, (_, c) => (k.storage === 'int8' ? k.values[j * width + h * d + c] : f(k.values[j * width + h * d + c] - mean[h * d + c])));
        if (k.storage === 'int8') {
          kInt.set(row, j * width + h * d);
          kScale[j * heads + h] = k.scales![j * heads + h];
        } else {
          const r = quantizeRowRef(row);
          kInt.set(r.q, j * width + h * d);
          kScale[j * heads + h] = r.scale;
        }
      }
  }
  let vmax = 0;
  for (let i = 0; i < vEff.length; i++) vmax = Math.max(vmax, Math.abs(vEff[i]));
  const out = new Float64Array(lq * width);
  const s = new Float64Array(lk);
  for (let h = 0; h < heads; h++) {
    for (let i = 0; i < lq; i++) {
      const lim = mask.chunk ? Math.min(lk, (Math.floor((i + (mask.offset ?? 0)) / mask.chunk) + 1) * mask.chunk) : lk;
      const x = Array.from({ length: d }, (_, c) => f(q[i * width + h * d + c] * scale));
      let qi: { q: Int8Array; scale: number } | undefined;
      if (precision === 'int8') qi = quantizeRowRef(x);
      let max = -Infinity;
      for (let j = 0; j < lim; j++) {
        let dot = 0;
        if (qi) {
          for (let c = 0; c < d; c++) dot += qi.q[c] * kInt![j * width + h * d + c];
          s[j] = f(f(dot * kScale![j * heads + h]) * qi.scale);
        } else {
          for (let c = 0; c < d; c++) dot += (precision === 'bf16' ? bf16(x[c]) : x[c]) * kEff[j * width + h * d + c];
          s[j] = dot;
        }
        max = Math.max(max, s[j]);
      }
      let sum = 0;
      for (let j = 0; j < lim; j++) sum += (s[j] = Math.exp(s[j] - max));
      for (let c = 0; c < d; c++) {
        let acc = 0;
        for (let j = 0; j < lim; j++) acc += s[j] * vEff[j * width + h * d + c];
        out[i * width + h * d + c] = acc / sum;
      }
    }
  }
  return { out, vmax };
}
