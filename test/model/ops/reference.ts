// Plain double-precision reference loops shared by several model-op tests.

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
