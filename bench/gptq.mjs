// GPTQ at the DiT shapes: K = 1536 (N = 1536) and K = 8960 (N = 1536), per channel, per group and in
// the dual-scale form, with and without the round-to-nearest loss. Plain Node ESM over the built
// package: `npm run build && node bench/gptq.mjs [--quick]` (--quick: K = 1536 only).
//
// Work counted in multiply-adds (FMA): the Cholesky factor K^3/6, GPTQ's column updates N K^2/2 and
// the RTN loss N K^2/2. Every figure is the best of several runs (the machine is shared).
import { Gram, Tensor, backends, gptqSync, setIsa } from '../dist/index.js';

const quick = process.argv.includes('--quick');

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randn(n, seed) {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const m = Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12)));
    const v = 2 * Math.PI * r();
    out[i] = m * Math.cos(v);
    if (i + 1 < n) out[i + 1] = m * Math.sin(v);
  }
  return out;
}

/** Calibration-like activations: 64 shared directions plus noise, so that H is far from diagonal. */
function activations(m, k, seed) {
  const rank = 64;
  const z = randn(m * rank, seed);
  const a = randn(rank * k, seed + 1);
  const x = randn(m * k, seed + 2).map((v) => 0.3 * v);
  for (let r = 0; r < m; r++) {
    for (let q = 0; q < rank; q++) {
      const zq = z[r * rank + q] / 8;
      for (let c = 0; c < k; c++) x[r * k + c] += zq * a[q * k + c];
    }
  }
  return x;
}

function best(fn, repeat) {
  let min = Infinity;
  let out;
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    out = fn();
    min = Math.min(min, performance.now() - t0);
  }
  return { ms: min, out };
}

const b = backends();
setIsa('amx');
console.log(`qarvd GPTQ bench: ${b.cpu.detectedIsa}, ${b.cpu.threads} threads${quick ? ' (quick)' : ''}; float64 throughout`);
const rows = [];
const shapes = quick ? [[1536, 1536]] : [[1536, 1536], [8960, 1536]];
for (const [k, n] of shapes) {
  const repeat = k > 4096 ? 2 : 5;
  const m = 2048;
  let t0 = performance.now();
  const gram = new Gram(k);
  gram.accumulateSync(new Tensor('float32', [m, k], activations(m, k, 7)));
  const setup = performance.now() - t0;
  const w = new Tensor('float32', [n, k], randn(n * k, 11));
  // 32 outlier input columns, as detectOutliers would return them.
  const outlierIdx = Int32Array.from({ length: 32 }, (_, i) => Math.floor((i * k) / 32) + 3);
  for (const c of outlierIdx) for (let r = 0; r < n; r++) w.data[r * k + c] *= 6;
  console.log(`\nK = ${k}, N = ${n} (H from X^T X of [${m}, ${k}] in ${(setup / 1000).toFixed(2)} s)`);
  const factor = k ** 3 / 6;
  const update = (n * k * k) / 2;
  const cases = [
    ['int4 per channel', { dtype: 'int4', rtnLoss: false }, factor + update],
    ['int4 per channel + RTN loss', { dtype: 'int4' }, factor + 2 * update],
    ['int4 per group 128', { dtype: 'int4', groupSize: 128, rtnLoss: false }, factor + update],
    ['int8 per channel, actOrder', { dtype: 'int8', actOrder: true, rtnLoss: false }, factor + update],
    ['dual: 32 int8 outliers + int4', { outlierIdx, outlier: { dtype: 'int8' }, normal: { dtype: 'int4' }, rtnLoss: false }, factor + update],
  ];
  for (const [name, opts, fma] of cases) {
    const { ms, out } = best(() => gptqSync(w, gram, opts), repeat);
    const loss = opts.rtnLoss === false ? '' : `  loss GPTQ/RTN ${(out.loss.gptq / out.loss.rtn).toFixed(3)}`;
    rows.push(`  ${name.padEnd(30)} ${(ms / 1000).toFixed(3).padStart(7)} s  ${(fma / (ms / 1000) / 1e9).toFixed(1).padStart(5)} GFMA/s${loss}`);
    console.log(rows[rows.length - 1]);
  }
}
