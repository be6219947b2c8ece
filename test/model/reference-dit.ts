// A plain TypeScript forward of the causal DiT, written from Wan2.1's definition with double-precision
// loops and no qarvd kernels: the reference the model is tested against.
import type { DitConfig } from '../../lib/model/config.js';
import type { Tensor } from '../../lib/tensor/tensor.js';

type W = Record<string, Tensor>;
const arr = (w: W, n: string) => Array.from(w[n].data as Float32Array);

function linear(x: number[][], w: W, name: string): number[][] {
  const W = w[`${name}.weight`], b = arr(w, `${name}.bias`);
  const out = b.length, inp = W.size / out;
  return x.map((row) => Array.from({ length: out }, (_, o) => {
    let s = b[o];
    for (let i = 0; i < inp; i++) s += row[i] * W.data[o * inp + i];
    return s;
  }));
}
const layerNorm = (x: number[][], eps: number) => x.map((r) => {
  const m = r.reduce((a, b) => a + b, 0) / r.length;
  const v = r.reduce((a, b) => a + (b - m) ** 2, 0) / r.length;
  return r.map((e) => (e - m) / Math.sqrt(v + eps));
});
const rms = (x: number[][], g: number[], eps: number) => x.map((r) => {
  const ms = r.reduce((a, b) => a + b * b, 0) / r.length;
  return r.map((e, i) => (e / Math.sqrt(ms + eps)) * g[i]);
});
const gelu = (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
const silu = (v: number) => v / (1 + Math.exp(-v));

function rope(x: number[][], heads: number, grid: number[], start: number): number[][] {
  const dim = x[0].length, d = dim / heads, s6 = Math.floor(d / 6);
  const parts = [d - 4 * s6, 2 * s6, 2 * s6];
  const [, gh, gw] = grid;
  return x.map((row, t) => {
    const pos = [Math.floor(t / (gh * gw)) + start, Math.floor(t / gw) % gh, t % gw];
    const out = row.slice();
    for (let h = 0; h < heads; h++) {
      let off = h * d;
      parts.forEach((p, axis) => {
        for (let i = 0; i < p / 2; i++) {
          const ang = pos[axis] * Math.pow(10000, (-2 * i) / p);
          const a = row[off + 2 * i], b = row[off + 2 * i + 1];
          out[off + 2 * i] = a * Math.cos(ang) - b * Math.sin(ang);
          out[off + 2 * i + 1] = a * Math.sin(ang) + b * Math.cos(ang);
        }
        off += p;
      });
    }
    return out;
  });
}

function attend(q: number[][], k: number[][], v: number[][], heads: number): number[][] {
  const d = q[0].length / heads;
  return q.map((qr) => {
    const out = new Array(qr.length).fill(0);
    for (let h = 0; h < heads; h++) {
      const s = k.map((kr) => {
        let a = 0;
        for (let i = 0; i < d; i++) a += qr[h * d + i] * kr[h * d + i];
        return a / Math.sqrt(d);
      });
      const m = Math.max(...s), e = s.map((x) => Math.exp(x - m)), z = e.reduce((a, b) => a + b, 0);
      e.forEach((p, j) => { for (let i = 0; i < d; i++) out[h * d + i] += (p / z) * v[j][h * d + i]; });
    }
    return out;
  });
}

/** State of the reference: committed keys and values per block. */
export interface RefState { k: number[][][]; v: number[][][]; frames: number }

export function refState(c: DitConfig): RefState {
  return { k: Array.from({ length: c.layers }, () => []), v: Array.from({ length: c.layers }, () => []), frames: 0 };
}

/** One pass over a chunk x [F][C][H][W] flattened; returns the flow flattened the same way. */
export function refForward(c: DitConfig, w: W, x: Float32Array, frames: number, timestep: number, context: Float32Array, state: RefState, commit: boolean): number[] {
  const { dim, heads, inChannels: C, latentHeight: H, latentWidth: Wd } = c;
  const hp = H / 2, wp = Wd / 2;
  // Patch embedding as the Conv3d it is: out[o] = b[o] + sum over (c, kh, kw) of w[o, c, 0, kh, kw] x[...].
  const pw = w['patch_embedding.weight'].data, pb = arr(w, 'patch_embedding.bias');
  let h: number[][] = [];
  for (let f = 0; f < frames; f++) for (let i = 0; i < hp; i++) for (let j = 0; j < wp; j++) {
    h.push(Array.from({ length: dim }, (_, o) => {
      let s = pb[o];
      for (let ch = 0; ch < C; ch++) for (let kh = 0; kh < 2; kh++) for (let kw = 0; kw < 2; kw++) {
        s += pw[((o * C + ch) * 2 + kh) * 2 + kw] * x[((f * C + ch) * H + 2 * i + kh) * Wd + 2 * j + kw];
      }
      return s;
    }));
  }
  const half = c.freqDim / 2;
  const sin = [...Array.from({ length: half }, (_, i) => Math.cos(timestep * Math.pow(10000, -i / half))), ...Array.from({ length: half }, (_, i) => Math.sin(timestep * Math.pow(10000, -i / half)))];
  const e = linear(linear([sin], w, 'time_embedding.0').map((r) => r.map(silu)), w, 'time_embedding.2');
  const e0 = linear(e.map((r) => r.map(silu)), w, 'time_projection.1')[0];
  const ctxRows = Array.from({ length: c.textLen }, (_, i) => Array.from(context.subarray(i * c.textDim, (i + 1) * c.textDim)));
  const ctx = linear(linear(ctxRows, w, 'text_embedding.0').map((r) => r.map(gelu)), w, 'text_embedding.2');
  const grid = [frames, hp, wp];
  for (let b = 0; b < c.layers; b++) {
    const p = `blocks.${b}`, mt = arr(w, `${p}.modulation`);
    const mod = (i: number) => Array.from({ length: dim }, (_, j) => mt[i * dim + j] + e0[i * dim + j]);
    const [sh0, sc0, g0, sh1, sc1, g1] = [0, 1, 2, 3, 4, 5].map(mod);
    let y = layerNorm(h, c.eps).map((r) => r.map((v, j) => v * (1 + sc0[j]) + sh0[j]));
    const q = rope(rms(linear(y, w, `${p}.self_attn.q`), arr(w, `${p}.self_attn.norm_q.weight`), c.eps), heads, grid, state.frames);
    const k = rope(rms(linear(y, w, `${p}.self_attn.k`), arr(w, `${p}.self_attn.norm_k.weight`), c.eps), heads, grid, state.frames);
    const v = linear(y, w, `${p}.self_attn.v`);
    y = linear(attend(q, [...state.k[b], ...k], [...state.v[b], ...v], heads), w, `${p}.self_attn.o`);
    h = h.map((r, t) => r.map((val, j) => val + y[t][j] * g0[j]));
    if (commit) {
      state.k[b].push(...k);
      state.v[b].push(...v);
    }
    const n3w = arr(w, `${p}.norm3.weight`), n3b = arr(w, `${p}.norm3.bias`);
    y = layerNorm(h, c.eps).map((r) => r.map((val, j) => val * n3w[j] + n3b[j]));
    const cq = rms(linear(y, w, `${p}.cross_attn.q`), arr(w, `${p}.cross_attn.norm_q.weight`), c.eps);
    const ck = rms(linear(ctx, w, `${p}.cross_attn.k`), arr(w, `${p}.cross_attn.norm_k.weight`), c.eps);
    const cv = linear(ctx, w, `${p}.cross_attn.v`);
    y = linear(attend(cq, ck, cv, heads), w, `${p}.cross_attn.o`);
    h = h.map((r, t) => r.map((val, j) => val + y[t][j]));
    y = layerNorm(h, c.eps).map((r) => r.map((val, j) => val * (1 + sc1[j]) + sh1[j]));
    y = linear(linear(y, w, `${p}.ffn.0`).map((r) => r.map(gelu)), w, `${p}.ffn.2`);
    h = h.map((r, t) => r.map((val, j) => val + y[t][j] * g1[j]));
  }
  if (commit) state.frames += frames;
  const hm = arr(w, 'head.modulation');
  const shift = Array.from({ length: dim }, (_, j) => hm[j] + e[0][j]);
  const scale = Array.from({ length: dim }, (_, j) => hm[dim + j] + e[0][j]);
  const out = linear(layerNorm(h, c.eps).map((r) => r.map((val, j) => val * (1 + scale[j]) + shift[j])), w, 'head.head');
  // Wan's unpatchify: each token's output is ordered (row in patch, column in patch, channel).
  const flow = new Array(frames * C * H * Wd).fill(0);
  const Co = c.outChannels;
  for (let f = 0; f < frames; f++) for (let i = 0; i < hp; i++) for (let j = 0; j < wp; j++) {
    const t = (f * hp + i) * wp + j;
    for (let kh = 0; kh < 2; kh++) for (let kw = 0; kw < 2; kw++) for (let ch = 0; ch < Co; ch++) {
      flow[((f * Co + ch) * H + 2 * i + kh) * Wd + 2 * j + kw] = out[t][(kh * 2 + kw) * Co + ch];
    }
  }
  return flow;
}
