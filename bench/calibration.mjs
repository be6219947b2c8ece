// Throughput of the calibration kernels at DiT sizes, with memcpy as the bandwidth reference.
// Plain Node ESM over the built package: `npm run build && node bench/calibration.mjs [--quick]`.
// Every figure is the best of several runs (the machine is shared, so the best is the least noisy).
import {
  Gram, Histogram, Tensor, backends, columnNormsSync, minMaxSync, mseChannelClipSearchSync, mseClipSearchSync, setIsa,
} from '../dist/index.js';

const quick = process.argv.includes('--quick');
const REPEAT = quick ? 3 : 7;

function randn(n, seed) {
  let a = seed >>> 0;
  const r = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(r(), 1e-12);
    const m = Math.sqrt(-2 * Math.log(u));
    const v = 2 * Math.PI * r();
    out[i] = m * Math.cos(v);
    if (i + 1 < n) out[i + 1] = m * Math.sin(v);
  }
  return out;
}

function best(fn, repeat = REPEAT) {
  fn(); // warm-up
  let min = Infinity;
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    fn();
    min = Math.min(min, performance.now() - t0);
  }
  return min / 1000;
}

const rows = [];
function report(name, seconds, amount, unit) {
  rows.push({ name, ms: (seconds * 1000).toFixed(2), rate: `${(amount / seconds / 1e9).toFixed(2)} ${unit}` });
}

const b = backends();
console.log(`qarvd calibration bench: ${b.cpu.detectedIsa}, ${b.cpu.threads} threads${quick ? ' (quick)' : ''}`);

// Activations of one DiT linear layer: 4680 tokens x 1536 features.
const M = 4680;
const K = 1536;
const act = new Tensor('float32', [M, K], randn(M * K, 1));
const bytes = act.data.byteLength;
const dst = new Float32Array(M * K);
report('memcpy (TypedArray.set)', best(() => dst.set(act.data)), bytes, 'GB/s');

for (const isa of ['scalar', b.cpu.detectedIsa]) {
  setIsa(isa);
  const tag = `[${isa}]`;
  report(`minMax whole [${M}, ${K}] ${tag}`, best(() => minMaxSync(act)), bytes, 'GB/s');
  report(`minMax axis -1 (per feature) ${tag}`, best(() => minMaxSync(act, { axis: -1 })), bytes, 'GB/s');
  report(`minMax axis 0 (per token) ${tag}`, best(() => minMaxSync(act, { axis: 0 })), bytes, 'GB/s');
  const h = new Histogram({ lo: -8, hi: 8, bins: 32768 });
  report(`histogram 32768 bins ${tag}`, best(() => h.addSync(act)), bytes, 'GB/s');
  const rw = Float64Array.from({ length: M }, (_, i) => 1 + (i % 7));
  report(`histogram 32768 bins, row weights ${tag}`, best(() => h.addSync(act, { rowWeights: rw })), bytes, 'GB/s');
  const cands = [[-4, 4], [-3, 3], [-2.5, 2.5], [-5, 5]];
  report(`MSE search raw, 4 candidates ${tag}`, best(() => mseClipSearchSync(act, { candidates: cands }), 3), bytes * 4, 'GB/s (x4 cand.)');
  const w = new Tensor('float32', [8960, K], randn(8960 * K, 2));
  report(`columnNorms [8960, ${K}] ${tag}`, best(() => columnNormsSync(w)), w.data.byteLength, 'GB/s');
  const wq = new Tensor('float32', [K, K], randn(K * K, 3));
  report(`channel clip search [${K}, ${K}], 3 pct ${tag}`, best(() => mseChannelClipSearchSync(wq), 3), wq.data.byteLength, 'GB/s');
  // X^T X: 2 M K^2 flops as a GEMM would count them (the kernel computes the upper triangle only).
  const m = isa === 'scalar' || quick ? 512 : M;
  const x = new Tensor('float32', [m, K], act.data.subarray(0, m * K));
  const g = new Gram(K);
  report(`X^T X [${m}, ${K}] ${tag}`, best(() => g.accumulateSync(x), isa === 'scalar' ? 1 : 3), 2 * m * K * K, 'GFLOP/s (2MK^2)');
}
setIsa('amx');

const width = Math.max(...rows.map((r) => r.name.length));
for (const r of rows) console.log(`${r.name.padEnd(width)}  ${r.ms.padStart(9)} ms  ${r.rate}`);
