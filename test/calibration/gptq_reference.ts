// A plain TypeScript GPTQ written from the paper's Algorithm 1 (Frantar et al. 2022), unblocked, in
// float64, with the inverse Hessian factor computed the paper's way (Cholesky, explicit inverse,
// Cholesky of the inverse), independently of the kernel's route. Quantization uses the TS mirror of
// quant_math (lib/primitives/qparams.ts).
import { dequantizeValue, qparamsFromRange, quantizeValue, type Scheme } from '../../lib/primitives/qparams.js';
import type { QuantDType } from '../../lib/tensor/dtype.js';

export interface RefQuantizer {
  dtype: QuantDType;
  scheme: Scheme;
  /** 0: per channel. */
  groupSize: number;
  /** Given qparams, [N] or [N, groups]. */
  scale?: Float32Array;
  zeroPoint?: Int32Array;
}

export interface RefOptions {
  damp: number;
  actOrder: boolean;
  /** Dual mode when set. */
  outlierIdx?: Int32Array;
  single?: RefQuantizer;
  outlier?: RefQuantizer;
  normal?: RefQuantizer;
}

export interface RefSegment {
  cols: number[];
  q: number[][]; // [N][columns of the segment]
  scale: number[][]; // [N][groups]
  zeroPoint: number[][];
}

export interface RefResult {
  segments: RefSegment[];
  /** Dequantized weight [N][K] (original order). */
  wHat: number[][];
  loss: number;
  lossRtn: number;
  order: number[];
}

/** Lower Cholesky factor of a symmetric positive definite matrix (float64). */
export function cholesky(a: number[][]): number[][] {
  const n = a.length;
  const l = a.map(() => new Array<number>(n).fill(0));
  for (let j = 0; j < n; j++) {
    let d = a[j][j];
    for (let t = 0; t < j; t++) d -= l[j][t] * l[j][t];
    if (!(d > 0)) throw new RangeError(`reference: not positive definite at ${j}`);
    l[j][j] = Math.sqrt(d);
    for (let i = j + 1; i < n; i++) {
      let s = a[i][j];
      for (let t = 0; t < j; t++) s -= l[i][t] * l[j][t];
      l[i][j] = s / l[j][j];
    }
  }
  return l;
}

/** Inverse of a symmetric positive definite matrix through its Cholesky factor (torch.cholesky_inverse). */
export function choleskyInverse(l: number[][]): number[][] {
  const n = l.length;
  // Li = L^-1 by forward substitution, then A^-1 = Li^T Li.
  const li = l.map(() => new Array<number>(n).fill(0));
  for (let c = 0; c < n; c++) {
    li[c][c] = 1 / l[c][c];
    for (let i = c + 1; i < n; i++) {
      let s = 0;
      for (let t = c; t < i; t++) s += l[i][t] * li[t][c];
      li[i][c] = -s / l[i][i];
    }
  }
  const inv = l.map(() => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let t = i; t < n; t++) s += li[t][i] * li[t][j];
      inv[i][j] = s;
      inv[j][i] = s;
    }
  }
  return inv;
}

/** cholesky(inverse(H_d)) upper, with the dead-column fix and dampening, columns in `order`. */
export function refInverseFactor(h: Float64Array, k: number, order: number[], damp: number): { u: number[][]; lambda: number } {
  const hp = order.map((a) => order.map((b) => h[a * k + b]));
  for (let p = 0; p < k; p++) if (hp[p][p] === 0) hp[p][p] = 1;
  let mean = 0;
  for (let p = 0; p < k; p++) mean += hp[p][p];
  const lambda = damp * (mean / k);
  for (let p = 0; p < k; p++) hp[p][p] += lambda;
  const inv = choleskyInverse(cholesky(hp));
  const l = cholesky(inv);
  const u = l.map((_, i) => l.map((row) => row[i])); // transpose: upper
  return { u, lambda };
}

interface Seg {
  cols: number[];
  quant: RefQuantizer;
}

function segmentsOf(k: number, o: RefOptions): Seg[] {
  if (!o.outlierIdx) return [{ cols: Array.from({ length: k }, (_, c) => c), quant: o.single! }];
  const out = Array.from(o.outlierIdx);
  const set = new Set(out);
  const normal = Array.from({ length: k }, (_, c) => c).filter((c) => !set.has(c));
  const segs: Seg[] = [];
  if (out.length) segs.push({ cols: out, quant: o.outlier! });
  if (normal.length) segs.push({ cols: normal, quant: o.normal! });
  return segs;
}

function groupsOf(seg: Seg): number {
  return seg.quant.groupSize ? seg.cols.length / seg.quant.groupSize : 1;
}

/** Initial qparams of a row of a segment: given, or from the min/max of float32(values) per group. */
function rowQParams(seg: Seg, r: number, value: (c: number) => number): { scale: number[]; zeroPoint: number[] } {
  const g = groupsOf(seg);
  const scale: number[] = [];
  const zeroPoint: number[] = [];
  for (let gi = 0; gi < g; gi++) {
    if (seg.quant.scale) {
      scale.push(seg.quant.scale[r * g + gi]);
      zeroPoint.push(seg.quant.zeroPoint ? seg.quant.zeroPoint[r * g + gi] : symmetricZero(seg.quant.dtype));
      continue;
    }
    const cols = seg.quant.groupSize ? seg.cols.slice(gi * seg.quant.groupSize, (gi + 1) * seg.quant.groupSize) : seg.cols;
    const vals = cols.map((c) => Math.fround(value(c)));
    const qp = qparamsFromRange(Math.min(...vals), Math.max(...vals), seg.quant.dtype, seg.quant.scheme);
    scale.push(qp.scale);
    zeroPoint.push(qp.zeroPoint);
  }
  return { scale, zeroPoint };
}

function symmetricZero(dtype: QuantDType): number {
  return dtype === 'uint8' ? 128 : dtype === 'uint4' ? 8 : 0;
}

/** trace(D H D^T) for D[N][K], float64. */
export function traceLoss(d: number[][], h: Float64Array, k: number): number {
  let s = 0;
  for (const row of d) {
    for (let i = 0; i < k; i++) {
      if (row[i] === 0) continue;
      let t = 0;
      for (let j = 0; j < k; j++) t += h[i * k + j] * row[j];
      s += row[i] * t;
    }
  }
  return s;
}

export function refGptq(w: Float32Array, n: number, k: number, h: Float64Array, o: RefOptions): RefResult {
  const segs = segmentsOf(k, o);
  const diag = (c: number) => (h[c * k + c] === 0 ? 1 : h[c * k + c]);
  const order: number[] = [];
  for (const s of segs) order.push(...(o.actOrder ? s.cols.slice().sort((a, b) => diag(b) - diag(a) || a - b) : s.cols));
  const dead = (c: number) => h[c * k + c] === 0;
  const { u } = refInverseFactor(h, k, order, o.damp);
  // Working weights by original column, dead columns zeroed.
  const w0 = Array.from({ length: n }, (_, r) => Array.from({ length: k }, (_, c) => (dead(c) ? 0 : w[r * k + c])));
  const work = w0.map((row) => row.slice());
  const segOf = new Map<number, { seg: Seg; m: number; s: number }>();
  segs.forEach((seg, s) => seg.cols.forEach((c, m) => segOf.set(c, { seg, m, s })));
  const result: RefSegment[] = segs.map((seg) => ({
    cols: seg.cols,
    q: Array.from({ length: n }, () => new Array<number>(seg.cols.length).fill(0)),
    scale: Array.from({ length: n }, () => new Array<number>(groupsOf(seg)).fill(0)),
    zeroPoint: Array.from({ length: n }, () => new Array<number>(groupsOf(seg)).fill(0)),
  }));
  // Qparams from the initial weights: per channel, and per group with actOrder (static groups).
  const dynamic = (seg: Seg) => !seg.quant.scale && seg.quant.groupSize > 0 && !o.actOrder;
  segs.forEach((seg, s) => {
    if (!dynamic(seg)) {
      for (let r = 0; r < n; r++) {
        const qp = rowQParams(seg, r, (c) => w0[r][c]);
        result[s].scale[r] = qp.scale;
        result[s].zeroPoint[r] = qp.zeroPoint;
      }
    }
  });
  const wHat = Array.from({ length: n }, () => new Array<number>(k).fill(0));
  const started = new Set<string>();
  for (let p = 0; p < k; p++) {
    const c = order[p];
    const { seg, m, s } = segOf.get(c)!;
    const gs = seg.quant.groupSize;
    const gi = gs ? Math.floor(m / gs) : 0;
    // A group starts at the first of its columns in the processing order.
    const groupStart = !started.has(`${s}:${gi}`);
    started.add(`${s}:${gi}`);
    for (let r = 0; r < n; r++) {
      if (dynamic(seg) && groupStart) {
        // The group's columns are visited together from here: min/max of their current weights.
        const cols = gs ? seg.cols.slice(gi * gs, (gi + 1) * gs) : seg.cols;
        const vals = cols.map((cc) => Math.fround(work[r][cc]));
        const qp = qparamsFromRange(Math.min(...vals), Math.max(...vals), seg.quant.dtype, seg.quant.scheme);
        result[s].scale[r][gi] = qp.scale;
        result[s].zeroPoint[r][gi] = qp.zeroPoint;
      }
      const sc = result[s].scale[r][gi];
      const zp = result[s].zeroPoint[r][gi];
      const q = quantizeValue(work[r][c], sc, zp, seg.quant.dtype);
      const deq = dequantizeValue(q, sc, zp);
      result[s].q[r][m] = q;
      wHat[r][c] = deq;
      const err = (work[r][c] - deq) / u[p][p];
      for (let p2 = p + 1; p2 < k; p2++) work[r][order[p2]] -= err * u[p][p2];
    }
  }
  // Losses against H as given (dead columns: H's row is zero, so W's value there does not matter).
  const d = wHat.map((row, r) => row.map((v, c) => w0[r][c] - v));
  const rtnHat = Array.from({ length: n }, (_, r) => {
    const row = new Array<number>(k).fill(0);
    for (const seg of segs) {
      const qp = rowQParams(seg, r, (c) => w0[r][c]);
      seg.cols.forEach((c, m) => {
        const gi = seg.quant.groupSize ? Math.floor(m / seg.quant.groupSize) : 0;
        row[c] = dequantizeValue(quantizeValue(w0[r][c], qp.scale[gi], qp.zeroPoint[gi], seg.quant.dtype), qp.scale[gi], qp.zeroPoint[gi]);
      });
    }
    return row;
  });
  const dRtn = rtnHat.map((row, r) => row.map((v, c) => w0[r][c] - v));
  return { segments: result, wHat, loss: traceLoss(d, h, k), lossRtn: traceLoss(dRtn, h, k), order };
}

/** Round-to-nearest of W[N, K] with per-row min/max qparams of each segment / group (no error feedback). */
export function refRtn(w: Float32Array, n: number, k: number, o: Omit<RefOptions, 'damp' | 'actOrder'>): number[][] {
  const segs = segmentsOf(k, { ...o, damp: 0, actOrder: false });
  return Array.from({ length: n }, (_, r) => {
    const row = new Array<number>(k).fill(0);
    for (const seg of segs) {
      const qp = rowQParams(seg, r, (c) => w[r * k + c]);
      seg.cols.forEach((c, m) => {
        const gi = seg.quant.groupSize ? Math.floor(m / seg.quant.groupSize) : 0;
        row[c] = dequantizeValue(quantizeValue(w[r * k + c], qp.scale[gi], qp.zeroPoint[gi], seg.quant.dtype), qp.scale[gi], qp.zeroPoint[gi]);
      });
    }
    return row;
  });
}
