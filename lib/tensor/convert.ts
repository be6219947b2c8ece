// Widening 16-bit floats to float32 (exact: every float16 and bfloat16 value is a float32 value).
import { Tensor, expectTensor } from './tensor.js';

/** float32 of one IEEE half-precision bit pattern. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // zero and subnormals
  if (exp === 0x1f) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * The tensor as float32: float16 and bfloat16 are widened exactly; float32 is returned as is.
 *
 * @example
 * const w = toFloat32(tensors['blocks.0.ffn.0.weight']); // a bf16 Wan checkpoint, now float32
 */
export function toFloat32(t: Tensor): Tensor<'float32'> {
  expectTensor(t, 't');
  if (t.dtype === 'float32') return t as Tensor<'float32'>;
  const src = t.data as Uint16Array;
  const out = new Float32Array(t.size);
  if (t.dtype === 'bfloat16') {
    // bfloat16 is the high half of a float32.
    new Uint32Array(out.buffer).set(Uint32Array.from(src, (v) => v << 16));
  } else if (t.dtype === 'float16') {
    for (let i = 0; i < src.length; i++) out[i] = halfToFloat(src[i]);
  } else {
    throw new TypeError(`Expected a floating-point tensor but received ${t.dtype}`);
  }
  return new Tensor('float32', t.shape, out);
}
