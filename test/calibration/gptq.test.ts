// GPTQ against a plain unblocked float64 TypeScript GPTQ (gptq_reference.ts), exactly on the
// integers; its invariances; its gain over round-to-nearest on correlated inputs; chunk weighting.
import t, { type Test } from 'tap';
import {
  Gram, Tensor, chunkWeightsFromSensitivity, detectOutliersSync, gptq, gptqDequantize, gptqHessianFactorSync, gptqSync, setThreads,
  backends, type GptqOptions, type GptqQuantizer, type GptqResult, type GptqSegment,
} from '../../lib/index.js';
import { qparamsFromRange, type Scheme } from '../../lib/primitives/qparams.js';
import type { QuantDType } from '../../lib/tensor/dtype.js';
import { gaussian, onEveryIsa, onEveryIsaAsync, rng } from './helpers.js';
import { refGptq, refInverseFactor, refRtn, type RefOptions, type RefQuantizer, type RefResult } from './gptq_reference.js';

/** H = X^T X in float64 (exactly symmetric). */
function gramOf(x: Float32Array, m: number, k: number, weight = 1, into?: Float64Array): Float64Array {
  const h = into ?? new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let r = 0; r < m; r++) s += x[r * k + i] * x[r * k + j];
      h[i * k + j] += weight * s;
      if (i !== j) h[j * k + i] = h[i * k + j];
    }
  }
  return h;
}

/** Correlated inputs: X = Z A + noise, Z [m, rank], with per-column scales. */
function correlated(m: number, k: number, rank: number, seed: number, noise = 0.3, colScale?: (c: number) => number): Float32Array {
  const z = gaussian(m * rank, seed);
  const a = gaussian(rank * k, seed + 1);
  const e = gaussian(m * k, seed + 2);
  const x = new Float32Array(m * k);
  for (let r = 0; r < m; r++) {
    for (let c = 0; c < k; c++) {
      let s = 0;
      for (let q = 0; q < rank; q++) s += z[r * rank + q] * a[q * k + c];
      x[r * k + c] = (s / Math.sqrt(rank) + noise * e[r * k + c]) * (colScale ? colScale(c) : 1);
    }
  }
  return x;
}

function divisors(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0);
}

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)];
}

/** Given qparams of a segment: the row (group) range shrunk by 0.8, so some values clip. */
function givenQParams(w: Float32Array, n: number, k: number, cols: number[], q: RefQuantizer): void {
  const gs = q.groupSize || cols.length;
  const groups = cols.length / gs;
  q.scale = new Float32Array(n * groups);
  q.zeroPoint = new Int32Array(n * groups);
  for (let r = 0; r < n; r++) {
    for (let g = 0; g < groups; g++) {
      const vals = cols.slice(g * gs, (g + 1) * gs).map((c) => w[r * k + c]);
      const qp = qparamsFromRange(0.8 * Math.min(...vals), 0.8 * Math.max(...vals), q.dtype, q.scheme);
      q.scale[r * groups + g] = qp.scale;
      q.zeroPoint[r * groups + g] = qp.zeroPoint;
    }
  }
}

interface Case {
  name: string;
  n: number;
  k: number;
  w: Float32Array;
  h: Float64Array;
  opts: GptqOptions;
  ref: RefOptions;
}

function toPublic(q: RefQuantizer): GptqQuantizer {
  return {
    dtype: q.dtype,
    scheme: q.scheme,
    ...(q.groupSize ? { groupSize: q.groupSize } : {}),
    ...(q.scale ? { scale: q.scale, zeroPoint: q.zeroPoint } : {}),
  };
}

interface Pinned {
  blockSize: number;
  actOrder?: boolean;
  single?: RefQuantizer;
  outlierIdx?: number[];
  outlier?: RefQuantizer;
  normal?: RefQuantizer;
}

/** A random layer with the quantizer settings pinned (paths the random draw may miss). */
function pinnedCase(seed: number, n: number, k: number, pin: Pinned): Case {
  const c = randomCase(seed, { n: [n, n], k: [k, k] });
  const ref: RefOptions = { damp: 0.01, actOrder: pin.actOrder ?? false };
  const opts: GptqOptions = { damp: 0.01, actOrder: ref.actOrder, blockSize: pin.blockSize };
  if (pin.outlierIdx) {
    Object.assign(ref, { outlierIdx: Int32Array.from(pin.outlierIdx), outlier: pin.outlier, normal: pin.normal });
    Object.assign(opts, { outlierIdx: ref.outlierIdx, outlier: toPublic(pin.outlier!), normal: toPublic(pin.normal!) });
  } else {
    ref.single = pin.single;
    Object.assign(opts, toPublic(pin.single!));
  }
  return { ...c, name: `pinned #${seed} [${n}, ${k}] ${JSON.stringify(pin)}`, opts, ref };
}

function randomCase(seed: number, sizes: { n: [number, number]; k: [number, number] }): Case {
  const r = rng(seed);
  const between = ([lo, hi]: [number, number]) => lo + Math.floor(r() * (hi - lo + 1));
  const n = between(sizes.n);
  const k = between(sizes.k);
  const m = r() < 0.3 ? Math.max(2, Math.floor(k / 2)) : 2 * k; // sometimes a singular Gram
  const x = correlated(m, k, Math.max(1, Math.floor(k / 3)), seed * 7, 0.3, (c) => 0.5 + 2 * rng(seed + c)());
  if (r() < 0.3) for (let row = 0; row < m; row++) x[row * k + ((seed * 5) % k)] = 0; // a dead column
  const h = gramOf(x, m, k);
  const w = gaussian(n * k, seed * 13);
  for (let c = 0; c < k; c += 11) for (let row = 0; row < n; row++) w[row * k + c] *= 4;
  const damp = pick(r, [0.01, 0.01, 0.1, 0.001]);
  const actOrder = r() < 0.4;
  const blockSize = pick(r, [1, 3, 7, 16, 32, 128]);
  const dual = r() < 0.4;
  const scheme = (): Scheme => pick(r, ['symmetric', 'asymmetric'] as const);
  const given = r() < 0.25;
  const quantizer = (dtypes: QuantDType[], len: number): RefQuantizer => ({
    dtype: pick(r, dtypes),
    scheme: scheme(),
    groupSize: r() < 0.5 ? 0 : pick(r, divisors(len)),
  });
  const ref: RefOptions = { damp, actOrder };
  const opts: GptqOptions = { damp, actOrder, blockSize };
  let desc: string;
  if (dual) {
    const count = pick(r, [0, 1, Math.floor(k / 4), Math.floor(k / 2), k]);
    const idx = Array.from({ length: k }, (_, c) => c).sort(() => r() - 0.5).slice(0, count).sort((a, b) => a - b);
    const normalCols = Array.from({ length: k }, (_, c) => c).filter((c) => !idx.includes(c));
    ref.outlierIdx = Int32Array.from(idx);
    ref.outlier = quantizer(['int8', 'uint8', 'int4'], Math.max(idx.length, 1));
    ref.normal = quantizer(['int4', 'uint4', 'int8'], Math.max(normalCols.length, 1));
    if (given) {
      if (idx.length) givenQParams(w, n, k, idx, ref.outlier);
      if (normalCols.length) givenQParams(w, n, k, normalCols, ref.normal);
    }
    opts.outlierIdx = ref.outlierIdx;
    opts.outlier = toPublic(ref.outlier);
    opts.normal = toPublic(ref.normal);
    desc = `dual ${idx.length} ${ref.outlier.dtype}/${ref.outlier.scheme}/g${ref.outlier.groupSize} + ${ref.normal.dtype}/${ref.normal.scheme}/g${ref.normal.groupSize}`;
  } else {
    ref.single = quantizer(['int8', 'uint8', 'int4', 'uint4'], k);
    if (given) givenQParams(w, n, k, Array.from({ length: k }, (_, c) => c), ref.single);
    Object.assign(opts, toPublic(ref.single));
    desc = `${ref.single.dtype}/${ref.single.scheme}/g${ref.single.groupSize}`;
  }
  const name = `#${seed} [${n}, ${k}] m=${m} ${desc}${given ? ' given' : ''}${actOrder ? ' actOrder' : ''} block=${blockSize} damp=${damp}`;
  return { name, n, k, w, h, opts, ref };
}

function segmentsOf(res: GptqResult): GptqSegment[] {
  if (res.type === 'single') return [res];
  return [res.outlier, res.normal].filter((s): s is GptqSegment => s !== null);
}

/** The integers and qparams of a result, for exact comparisons. */
function quantized(res: GptqResult): Array<Pick<GptqSegment, 'q' | 'scale' | 'zeroPoint'>> {
  return segmentsOf(res).map(({ q, scale, zeroPoint }) => ({ q, scale, zeroPoint }));
}

/** Exact comparison with the reference; returns a description of the first difference or ''. */
function compare(res: GptqResult, ref: RefResult, n: number): string {
  const segs = segmentsOf(res);
  if (segs.length !== ref.segments.length) return `segments ${segs.length} vs ${ref.segments.length}`;
  for (let s = 0; s < segs.length; s++) {
    const got = segs[s];
    const want = ref.segments[s];
    const len = want.cols.length;
    for (let r = 0; r < n; r++) {
      for (let m = 0; m < len; m++) {
        if (got.q[r * len + m] !== want.q[r][m]) return `segment ${s} q[${r}, ${m}] = ${got.q[r * len + m]} vs ${want.q[r][m]}`;
      }
      const g = want.scale[r].length;
      for (let gi = 0; gi < g; gi++) {
        if (got.scale[r * g + gi] !== want.scale[r][gi]) return `segment ${s} scale[${r}, ${gi}] = ${got.scale[r * g + gi]} vs ${want.scale[r][gi]}`;
        if (got.zeroPoint[r * g + gi] !== want.zeroPoint[r][gi]) return `segment ${s} zeroPoint[${r}, ${gi}]`;
      }
    }
  }
  return '';
}

function relClose(a: number, b: number, rel: number, abs = 0): boolean {
  return Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b)) + abs;
}

/**
 * Loss agreement: 1e-9 relative, plus an absolute float64 floor for losses that are nearly 0 (e.g.
 * groups of one column), where the kernel's ||err||^2 - lambda ||D||^2 is a difference of larger terms.
 */
function lossClose(got: number, want: number, h: Float64Array, k: number, wNorm2: number): boolean {
  let trace = 0;
  for (let i = 0; i < k; i++) trace += h[i * k + i];
  return relClose(got, want, 1e-9, 1e-13 * (trace / k) * wNorm2);
}

function norm2(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

const SMALL = Array.from({ length: 48 }, (_, i) => randomCase(1000 + i, { n: [5, 40], k: [7, 70] }));
const LARGE = [1, 2, 3].map((i) => randomCase(2000 + i, { n: [3, 13], k: [129, 300] }));
const q = (dtype: QuantDType, scheme: Scheme, groupSize: number): RefQuantizer => ({ dtype, scheme, groupSize });
const PINNED = [
  // groups longer than a block (the block grows), groups crossing block ends (the block is cut)
  pinnedCase(3001, 11, 60, { blockSize: 7, single: q('int4', 'asymmetric', 20) }),
  pinnedCase(3002, 13, 45, { blockSize: 4, single: q('uint4', 'symmetric', 9) }),
  // dual: per-group segments whose groups start after the other segment
  pinnedCase(3003, 9, 64, { blockSize: 5, outlierIdx: [2, 3, 17, 40, 41, 63], outlier: q('int8', 'asymmetric', 3), normal: q('int4', 'asymmetric', 29) }),
  pinnedCase(3004, 17, 40, { blockSize: 128, outlierIdx: [0, 9, 10, 11], outlier: q('uint8', 'asymmetric', 0), normal: q('uint4', 'asymmetric', 12) }),
  // actOrder with groups (static) and without
  pinnedCase(3005, 8, 48, { blockSize: 16, actOrder: true, single: q('int4', 'asymmetric', 8) }),
  pinnedCase(3006, 8, 48, { blockSize: 16, actOrder: true, outlierIdx: [5, 6, 30], outlier: q('int8', 'symmetric', 0), normal: q('int4', 'asymmetric', 9) }),
  // the smallest layers
  pinnedCase(3007, 1, 1, { blockSize: 128, single: q('int4', 'asymmetric', 0) }),
  pinnedCase(3008, 3, 2, { blockSize: 1, outlierIdx: [1], outlier: q('int8', 'asymmetric', 1), normal: q('uint4', 'symmetric', 1) }),
];

t.test('matches the unblocked float64 reference exactly (integers, scales, zero points; losses to 1e-9)', (t) => {
  for (const c of [...SMALL, ...LARGE, ...PINNED]) {
    const ref = refGptq(c.w, c.n, c.k, c.h, c.ref);
    onEveryIsa((isa) => {
      const res = gptqSync(new Tensor('float32', [c.n, c.k], c.w), c.h, c.opts);
      t.equal(compare(res, ref, c.n), '', `${isa} ${c.name}`);
      t.ok(lossClose(res.loss.gptq, ref.loss, c.h, c.k, norm2(c.w)), `${isa} ${c.name}: loss ${res.loss.gptq} vs ${ref.loss}`);
      t.ok(lossClose(res.loss.rtn!, ref.lossRtn, c.h, c.k, norm2(c.w)), `${isa} ${c.name}: RTN loss ${res.loss.rtn} vs ${ref.lossRtn}`);
      t.same(Array.from(res.order), ref.order, 'processing order');
      // The dequantized weights are those the reference reconstructs.
      const wHat = gptqDequantize(res);
      let same = true;
      for (let r = 0; r < c.n && same; r++) for (let col = 0; col < c.k; col++) if (wHat[r * c.k + col] !== ref.wHat[r][col]) same = false;
      t.ok(same, 'gptqDequantize');
    });
  }
  t.end();
});

t.test('blockSize, thread count and sync/async leave the result unchanged, bit for bit', async (t) => {
  const cases = [SMALL[0], SMALL[5], SMALL[9], LARGE[0], ...PINNED];
  const threads = backends().cpu.threads;
  try {
    await onEveryIsaAsync(async (isa) => {
      for (const c of cases) {
        const w = new Tensor('float32', [c.n, c.k], c.w);
        const base = gptqSync(w, c.h, { ...c.opts, blockSize: 1 });
        for (const blockSize of [2, 5, 64, 128, c.k]) {
          const res = gptqSync(w, c.h, { ...c.opts, blockSize });
          t.same(quantized(res), quantized(base), `${isa} ${c.name} blockSize ${blockSize}`);
        }
        const a = await gptq(w, c.h, c.opts);
        setThreads(1);
        const one = gptqSync(w, c.h, c.opts);
        setThreads(threads);
        t.same(quantized(one), quantized(a), `${isa} ${c.name}: one thread = all threads = async`);
        t.equal(one.loss.gptq, a.loss.gptq, 'loss bit for bit');
        t.equal(one.loss.rtn, a.loss.rtn, 'RTN loss bit for bit');
      }
    });
  } finally {
    setThreads(threads);
  }
});

/** Inverse of an upper triangular matrix (back substitution), float64. */
function upperInverse(u: number[][]): number[][] {
  const k = u.length;
  const x = u.map(() => new Array<number>(k).fill(0));
  for (let c = 0; c < k; c++) {
    x[c][c] = 1 / u[c][c];
    for (let i = c - 1; i >= 0; i--) {
      let s = 0;
      for (let t = i + 1; t <= c; t++) s += u[i][t] * x[t][c];
      x[i][c] = -s / u[i][i];
    }
  }
  return x;
}

t.test('the Hessian factor is the inverse of cholesky(inverse(H_d)) of the reference (several 128-column blocks)', (t) => {
  for (const [k, seed, perm] of [[7, 1, false], [128, 2, true], [129, 3, false], [300, 4, true], [385, 5, false]] as const) {
    const x = correlated(2 * k, k, Math.floor(k / 2), seed);
    const h = gramOf(x, 2 * k, k);
    const order = Array.from({ length: k }, (_, c) => c);
    if (perm) order.sort((a, b) => ((a * 37) % k) - ((b * 37) % k));
    const ref = refInverseFactor(h, k, order, 0.01);
    const rRef = upperInverse(ref.u);
    let scale = 0;
    for (const row of rRef) for (const v of row) scale = Math.max(scale, Math.abs(v));
    onEveryIsa((isa) => {
      const { r, lambda } = gptqHessianFactorSync(h, { damp: 0.01, order });
      let err = 0;
      let lower = 0;
      for (let i = 0; i < k; i++) {
        for (let j = 0; j < k; j++) {
          err = Math.max(err, Math.abs(r[i * k + j] - rRef[i][j]));
          if (j < i && r[i * k + j] !== 0) lower++;
        }
      }
      t.ok(err <= 1e-10 * scale, `${isa} K=${k}: max |R - U_ref^-1| = ${err} (scale ${scale})`);
      t.equal(lower, 0, 'strict lower part is zero');
      // R R^T = P^T H P + lambda I
      let resid = 0;
      for (let i = 0; i < k; i++) {
        for (let j = i; j < k; j++) {
          let s = 0;
          for (let q = j; q < k; q++) s += r[i * k + q] * r[j * k + q];
          const want = h[order[i] * k + order[j]] + (i === j ? lambda : 0);
          resid = Math.max(resid, Math.abs(s - want) / Math.sqrt(h[order[i] * k + order[i]] * h[order[j] * k + order[j]]));
        }
      }
      t.ok(resid <= 1e-12, `${isa} K=${k}: R R^T = H_d to ${resid}`);
      t.ok(relClose(lambda, ref.lambda, 1e-14), 'lambda');
    });
  }
  t.end();
});

t.test('with H = identity GPTQ is round-to-nearest, exactly', (t) => {
  const n = 9;
  const k = 48;
  const w = gaussian(n * k, 77);
  const eye = new Float64Array(k * k);
  for (let i = 0; i < k; i++) eye[i * k + i] = 1;
  const wt = new Tensor('float32', [n, k], w);
  onEveryIsa((isa) => {
    for (const dtype of ['int8', 'uint8', 'int4', 'uint4'] as const) {
      for (const scheme of ['symmetric', 'asymmetric'] as const) {
        for (const groupSize of [0, 16]) {
          const q: RefQuantizer = { dtype, scheme, groupSize };
          const res = gptqSync(wt, eye, { dtype, scheme, ...(groupSize ? { groupSize } : {}), blockSize: 5 });
          const rtn = refRtn(w, n, k, { single: q });
          const got = gptqDequantize(res);
          let diff = 0;
          for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) if (got[r * k + c] !== rtn[r][c]) diff++;
          t.equal(diff, 0, `${isa} ${dtype} ${scheme} groupSize ${groupSize}`);
          t.ok(relClose(res.loss.gptq, res.loss.rtn!, 1e-12), 'equal losses');
        }
      }
      const outlierIdx = [3, 10, 11, 40];
      const dual = gptqSync(wt, eye, { outlierIdx, outlier: { dtype: 'int8' }, normal: { dtype } });
      const rtn = refRtn(w, n, k, { outlierIdx: Int32Array.from(outlierIdx), outlier: { dtype: 'int8', scheme: 'asymmetric', groupSize: 0 }, normal: { dtype, scheme: 'asymmetric', groupSize: 0 } });
      const got = gptqDequantize(dual);
      let diff = 0;
      for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) if (got[r * k + c] !== rtn[r][c]) diff++;
      t.equal(diff, 0, `${isa} dual int8 + ${dtype}`);
    }
  });
  t.end();
});

/** ||X W^T - X What^T||_F^2 over rows of x. */
function outputError(x: Float32Array, m: number, k: number, w: Float32Array, wHat: ArrayLike<number> | number[][], n: number): number {
  const at = Array.isArray(wHat) ? (r: number, c: number) => (wHat as number[][])[r][c] : (r: number, c: number) => (wHat as ArrayLike<number>)[r * k + c];
  let s = 0;
  for (let row = 0; row < m; row++) {
    for (let r = 0; r < n; r++) {
      let y = 0;
      for (let c = 0; c < k; c++) y += x[row * k + c] * (w[r * k + c] - at(r, c));
      s += y * y;
    }
  }
  return s;
}

t.test('correlated inputs: GPTQ output error at least 20% below round-to-nearest', async (t) => {
  const n = 48;
  const k = 128;
  const m = 768;
  const x = correlated(m, k, 12, 31, 0.2);
  const h = gramOf(x, m, k);
  const w = gaussian(n * k, 32);
  // Outlier input columns for the dual mode.
  for (const c of [5, 17, 18, 40, 77, 90, 101, 127]) for (let r = 0; r < n; r++) w[r * k + c] *= 8;
  const wt = new Tensor('float32', [n, k], w);
  const { outlierIdx } = detectOutliersSync(wt, { align: 8 });
  t.ok(outlierIdx.length >= 8, `detected ${outlierIdx.length} outlier columns`);
  const asym = { scheme: 'asymmetric' as const, groupSize: 0 };
  const runs: Array<{ name: string; opts: GptqOptions; rtn: Omit<RefOptions, 'damp' | 'actOrder'> }> = [
    { name: 'int4 per channel', opts: { dtype: 'int4' }, rtn: { single: { dtype: 'int4', ...asym } } },
    { name: 'int4 per group of 32', opts: { dtype: 'int4', groupSize: 32 }, rtn: { single: { dtype: 'int4', scheme: 'asymmetric', groupSize: 32 } } },
    {
      name: 'dual scale int8 outliers + int4',
      opts: { outlierIdx, outlier: { dtype: 'int8' }, normal: { dtype: 'int4' } },
      rtn: { outlierIdx, outlier: { dtype: 'int8', ...asym }, normal: { dtype: 'int4', ...asym } },
    },
    { name: 'int4 per channel, actOrder', opts: { dtype: 'int4', actOrder: true }, rtn: { single: { dtype: 'int4', ...asym } } },
  ];
  for (const run of runs) {
    const res = await gptq(wt, h, run.opts);
    const eG = outputError(x, m, k, w, gptqDequantize(res), n);
    const eR = outputError(x, m, k, w, refRtn(w, n, k, run.rtn), n);
    t.ok(eG <= 0.8 * eR, `${run.name}: GPTQ ${eG.toFixed(2)} vs RTN ${eR.toFixed(2)} (ratio ${(eG / eR).toFixed(3)})`);
    // The losses are these output errors (H = X^T X).
    t.ok(relClose(res.loss.gptq, eG, 1e-6), `${run.name}: loss.gptq is the output error`);
    t.ok(relClose(res.loss.rtn!, eR, 1e-6), `${run.name}: loss.rtn is the RTN output error`);
  }
});

t.test('chunk weighting: the Hessian favours the heavily weighted chunk', async (t) => {
  // Two chunks with different input statistics: chunk 0 drives the first half of the columns, chunk 1
  // the second half (each strongly correlated within its half).
  const n = 32;
  const k = 96;
  const m = 384;
  const half = (lo: number) => (c: number) => (c >= lo && c < lo + k / 2 ? 1 : 0.15);
  const x0 = correlated(m, k, 6, 51, 0.2, half(0));
  const x1 = correlated(m, k, 6, 61, 0.2, half(k / 2));
  const w = gaussian(n * k, 71);
  const wt = new Tensor('float32', [n, k], w);
  const errors = async (sensitivity: number[]) => {
    const weights = chunkWeightsFromSensitivity(sensitivity);
    const g = new Gram(k);
    await g.accumulate(new Tensor('float32', [m, k], x0), { weight: weights[0] });
    await g.accumulate(new Tensor('float32', [m, k], x1), { weight: weights[1] });
    const wHat = gptqDequantize(await gptq(wt, g, { dtype: 'int4', groupSize: 32 }));
    return [outputError(x0, m, k, w, wHat, n), outputError(x1, m, k, w, wHat, n)];
  };
  const early = await errors([0.9, 0.1]);
  const uniform = await errors([0.5, 0.5]);
  const late = await errors([0.1, 0.9]);
  t.ok(early[0] < uniform[0] && uniform[0] < late[0], `chunk 0 error falls as its weight rises: ${late[0].toFixed(1)} > ${uniform[0].toFixed(1)} > ${early[0].toFixed(1)}`);
  t.ok(late[1] < uniform[1] && uniform[1] < early[1], `chunk 1 error falls as its weight rises: ${early[1].toFixed(1)} > ${uniform[1].toFixed(1)} > ${late[1].toFixed(1)}`);
  // Under the weights (1.8, 0.2) the run calibrated with them has the least weighted error.
  const weighted = (e: number[]) => 1.8 * e[0] + 0.2 * e[1];
  t.ok(weighted(early) < weighted(uniform) && weighted(early) < weighted(late), 'weighted error is least for the matching weights');
});

t.test('dead columns are zeroed and reported', (t) => {
  const n = 6;
  const k = 20;
  const m = 60;
  const x = correlated(m, k, 5, 81);
  for (let r = 0; r < m; r++) {
    x[r * k + 3] = 0;
    x[r * k + 12] = 0;
  }
  const h = gramOf(x, m, k);
  const w = gaussian(n * k, 82);
  const res = gptqSync(new Tensor('float32', [n, k], w), h, { dtype: 'uint4', blockSize: 4 });
  t.same(Array.from(res.deadColumns), [3, 12]);
  const wHat = gptqDequantize(res);
  for (let r = 0; r < n; r++) t.ok(wHat[r * k + 3] === 0 && wHat[r * k + 12] === 0, `row ${r}: dead columns dequantize to 0`);
  t.end();
});

function throwsLike(t: Test, fn: () => unknown, cls: ErrorConstructor, re: RegExp, name: string): void {
  try {
    fn();
    t.fail(`${name}: did not throw`);
  } catch (e) {
    t.ok(e instanceof cls && re.test((e as Error).message), `${name}: ${(e as Error).name}: ${(e as Error).message}`);
  }
}

t.test('bad input: TypeError or RangeError naming the argument', async (t) => {
  const n = 4;
  const k = 8;
  const w = new Tensor('float32', [n, k], gaussian(n * k, 91));
  const h = gramOf(correlated(32, k, 4, 92), 32, k);
  const cases: Array<[string, () => unknown, ErrorConstructor, RegExp]> = [
    ['w not a tensor', () => gptqSync(new Float32Array(32) as never, h), TypeError, /w/],
    ['w rank 1', () => gptqSync(new Tensor('float32', [32], new Float32Array(32)), h), RangeError, /w/],
    ['w int8', () => gptqSync(new Tensor('int8', [4, 8], new Int8Array(32)) as never, h), TypeError, /w/],
    ['w with NaN', () => gptqSync(new Tensor('float32', [1, k], new Float32Array(k).fill(NaN)), h), RangeError, /w/],
    ['H wrong type', () => gptqSync(w, new Float32Array(64) as never), TypeError, /H/],
    ['H wrong size', () => gptqSync(w, new Float64Array(63)), RangeError, /H/],
    ['Gram of other size', () => gptqSync(w, new Gram(9)), RangeError, /H/],
    ['H with Infinity', () => gptqSync(w, h.map((v, i) => (i === 9 ? Infinity : v))), RangeError, /H/],
    ['H asymmetric', () => gptqSync(w, h.map((v, i) => (i === 1 ? v + 1 : v))), RangeError, /symmetric H/],
    ['H negative diagonal', () => gptqSync(w, h.map((v, i) => (i === 0 ? -1 : v))), RangeError, /H/],
    ['damp negative', () => gptqSync(w, h, { damp: -0.1 }), RangeError, /damp/],
    ['damp NaN', () => gptqSync(w, h, { damp: NaN }), RangeError, /damp/],
    ['blockSize 0', () => gptqSync(w, h, { blockSize: 0 }), RangeError, /blockSize/],
    ['blockSize 1.5', () => gptqSync(w, h, { blockSize: 1.5 }), TypeError, /blockSize/],
    ['actOrder not boolean', () => gptqSync(w, h, { actOrder: 1 as never }), TypeError, /actOrder/],
    ['dtype', () => gptqSync(w, h, { dtype: 'int2' as never }), RangeError, /dtype/],
    ['scheme', () => gptqSync(w, h, { scheme: 'sym' as never }), RangeError, /scheme/],
    ['groupSize not dividing K', () => gptqSync(w, h, { groupSize: 3 }), RangeError, /groupSize/],
    ['scale wrong length', () => gptqSync(w, h, { scheme: 'symmetric', scale: new Float32Array(3) }), RangeError, /scale/],
    ['scale zero', () => gptqSync(w, h, { scheme: 'symmetric', scale: new Float32Array(n) }), RangeError, /scale/],
    ['asymmetric scale without zeroPoint', () => gptqSync(w, h, { scale: new Float32Array(n).fill(0.1) }), TypeError, /zeroPoint/],
    ['zeroPoint out of range', () => gptqSync(w, h, { dtype: 'int4', scale: new Float32Array(n).fill(0.1), zeroPoint: new Int32Array(n).fill(8) }), RangeError, /zeroPoint/],
    ['zeroPoint alone', () => gptqSync(w, h, { zeroPoint: new Int32Array(n) }), TypeError, /scale/],
    ['outlierIdx unsorted', () => gptqSync(w, h, { outlierIdx: [3, 1] }), RangeError, /outlierIdx/],
    ['outlierIdx duplicate', () => gptqSync(w, h, { outlierIdx: [1, 1] }), RangeError, /outlierIdx/],
    ['outlierIdx out of range', () => gptqSync(w, h, { outlierIdx: [8] }), RangeError, /outlierIdx/],
    ['outlierIdx not integers', () => gptqSync(w, h, { outlierIdx: [0.5] }), TypeError, /outlierIdx/],
    ['outlier options without outlierIdx', () => gptqSync(w, h, { outlier: { dtype: 'int8' } } as never), TypeError, /outlierIdx/],
    ['segment groupSize', () => gptqSync(w, h, { outlierIdx: [0, 1, 2], outlier: { groupSize: 2 } }), RangeError, /outlier\.groupSize/],
    ['top-level scale in dual mode', () => gptqSync(w, h, { outlierIdx: [0], scale: [1] } as never), TypeError, /scale/],
    ['unknown segment option', () => gptqSync(w, h, { outlierIdx: [0], normal: { bits: 4 } as never }), TypeError, /normal/],
    ['options not an object', () => gptqSync(w, h, 5 as never), TypeError, /options/],
  ];
  for (const [name, fn, cls, re] of cases) throwsLike(t, fn, cls, re, name);
  // The first problem in row-major order (i > j) is the one reported, across 64 x 64 blocks.
  const k2 = 200;
  const big = gramOf(correlated(400, k2, 20, 93), 400, k2);
  const w3 = new Tensor('float32', [2, k2], gaussian(2 * k2, 94));
  const spoil = (h: Float64Array, i: number, j: number, v: number) => {
    const c = h.slice();
    c[i * k2 + j] = v;
    return c;
  };
  throwsLike(t, () => gptqSync(w3, spoil(big, 150, 3, 1e3)), RangeError, /symmetric H but H\[150, 3\]/, 'asymmetry named');
  const two = spoil(spoil(big, 190, 100, NaN), 170, 120, 1e3);
  throwsLike(t, () => gptqSync(w3, two), RangeError, /symmetric H but H\[170, 120\]/, 'the first of two problems');
  throwsLike(t, () => gptqSync(w3, spoil(big, 3, 199, NaN)), RangeError, /finite values in H but H\[199, 3\] is [-0-9.e]+ and H\[3, 199\] is NaN/, 'NaN above the diagonal');
  throwsLike(t, () => gptqSync(w3, spoil(big, 5, 6, 1e300)), RangeError, /symmetric H/, 'huge entry against a small one');
  t.doesNotThrow(() => gptqSync(w3, spoil(big, 150, 3, big[3 * k2 + 150] * (1 + 1e-7))), 'asymmetry within 1e-6 is accepted');
  // Not positive definite even after damping: a matrix with a negative eigenvalue.
  const bad = new Float64Array([1, 2, 2, 1]);
  const w2 = new Tensor('float32', [1, 2], new Float32Array([0.3, -0.2]));
  throwsLike(t, () => gptqSync(w2, bad), RangeError, /H is not positive definite even after damping/, 'indefinite H');
  throwsLike(t, () => gptqSync(w2, bad, { damp: 0 }), RangeError, /column 0/, 'names the column');
  throwsLike(t, () => gptqHessianFactorSync(bad), RangeError, /H is not positive definite/, 'inverse factor: indefinite H');
  await t.rejects(gptq(w2, bad), RangeError, 'async: rejects');
  await t.rejects(gptq(w, h, { damp: -1 }), RangeError, 'async: validation rejects');
});
