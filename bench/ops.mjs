// Model ops: time of each op family at the embedded default's sizes (dim 256, 4 heads of 64, chunks
// of 3 frames x 8 x 8 = 192 tokens) and at Self-Forcing 1.3B sizes (dim 1536, 12 heads of 128, chunks
// of 3 frames x 30 x 52 = 4680 tokens, FFN 8960). GFLOP/s for attention (4 * queries * visible keys
// * headDim * heads), GB/s (bytes read + written) for the rest; AVX2 against the scalar path where the
// scalar one finishes in reasonable time.
//
//   node bench/ops.mjs [--quick]     (after `npm run build`)
import {
  attentionSync, backends, geluSync, KvCache, layerNormSync, rmsNormSync, gatedResidualSync, rope3dSync, setIsa, siluSync, Tensor,
} from '../dist/index.js';

const quick = process.argv.includes('--quick');

function random(shape, seed, amplitude = 1) {
  let s = seed >>> 0 || 1;
  const size = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    data[i] = amplitude * ((s / 4294967296) * 2 - 1);
  }
  return new Tensor('float32', shape, data);
}

/** Best and median seconds over repeated runs (at least `min` runs and `seconds` of wall time). */
function time(fn, { min = 5, seconds = quick ? 0.2 : 1 } = {}) {
  fn();
  const times = [];
  const start = performance.now();
  while (times.length < min || (performance.now() - start) / 1000 < seconds) {
    const t0 = performance.now();
    fn();
    times.push((performance.now() - t0) / 1000);
    if (times.length >= 500) break;
  }
  times.sort((a, b) => a - b);
  return { best: times[0], median: times[Math.floor(times.length / 2)] };
}

const rows = [];
function report(config, op, shape, fn, { flops, bytes, scalar = true }) {
  const avx2 = time(fn);
  let scalarTime = null;
  if (scalar && backends().cpu.avx2) {
    setIsa('scalar');
    scalarTime = time(fn, { min: 2, seconds: quick ? 0.1 : 0.5 });
    setIsa('amx');
  }
  const rate = flops ? `${(flops / avx2.best / 1e9).toFixed(1)} GFLOP/s` : `${(bytes / avx2.best / 1e9).toFixed(1)} GB/s`;
  const row = {
    config, op, shape,
    best_ms: +(avx2.best * 1e3).toFixed(3),
    median_ms: +(avx2.median * 1e3).toFixed(3),
    rate,
    vs_scalar: scalarTime ? `${(scalarTime.best / avx2.best).toFixed(1)}x` : '-',
  };
  rows.push(row);
  console.log(`${config.padEnd(9)} ${op.padEnd(26)} ${shape.padEnd(34)} ${String(row.best_ms).padStart(10)} ms  (median ${row.median_ms} ms)  ${rate.padStart(15)}  vs scalar ${row.vs_scalar}`);
}

function opsAt(config, { dim, heads, frames, h, w, ffn, cacheChunks, ctx, scalarAttention }) {
  const d = dim / heads;
  const tokens = frames * h * w;
  const x = random([tokens, dim], 1, 2);
  const y = random([tokens, dim], 2);
  const shift = random([frames, dim], 3);
  const scale = random([frames, dim], 4, 0.3);
  const weight = random([dim], 5);
  const bias = random([dim], 6);
  const out = Tensor.zeros('float32', [tokens, dim]);
  const rw = 8 * tokens * dim; // read + write of [tokens, dim] float32

  report(config, 'layerNorm + modulation', `[${tokens}, ${dim}] / ${frames} groups`, () => layerNormSync(x, { shift, scale, out }), { bytes: rw });
  report(config, 'layerNorm affine', `[${tokens}, ${dim}]`, () => layerNormSync(x, { weight, bias, out }), { bytes: rw });
  report(config, 'rmsNorm', `[${tokens}, ${dim}]`, () => rmsNormSync(x, { weight, out }), { bytes: rw });
  report(config, 'gatedResidual', `[${tokens}, ${dim}] / ${frames} groups`, () => gatedResidualSync(x, y, shift, { out }), { bytes: 12 * tokens * dim });
  const q = random([tokens, heads, d], 7);
  const qOut = Tensor.zeros('float32', [tokens, heads, d]);
  report(config, 'rope3d', `[${tokens}, ${heads}, ${d}] grid ${frames}x${h}x${w}`, () => rope3dSync(q, { grid: [frames, h, w], startFrame: 3, out: qOut }), { bytes: rw });
  const hidden = random([tokens, ffn], 8, 3);
  const hiddenOut = Tensor.zeros('float32', [tokens, ffn]);
  report(config, 'gelu (tanh)', `[${tokens}, ${ffn}]`, () => geluSync(hidden, { out: hiddenOut }), { bytes: 8 * tokens * ffn });
  report(config, 'silu', `[${tokens}, ${ffn}]`, () => siluSync(hidden, { out: hiddenOut }), { bytes: 8 * tokens * ffn });

  // Self-attention of the last chunk against a cache of `cacheChunks` chunks (itself included).
  const cache = new KvCache({ maxTokens: cacheChunks * tokens, heads, headDim: d });
  for (let c = 0; c < cacheChunks; c++) cache.append(random([tokens, heads, d], 20 + c), random([tokens, heads, d], 40 + c));
  const kvLen = cache.length;
  report(config, 'self-attention (cache)', `${tokens}q x ${kvLen}k, ${heads}x${d}`, () => cache.attentionSync(q, { out: qOut }),
    { flops: 4 * tokens * kvLen * d * heads, scalar: scalarAttention });
  // The whole cached video at once under the chunk-causal mask (what the cache replaces).
  const n = cacheChunks * tokens;
  if (n * n * d * heads <= 2e11) {
    const qAll = random([n, heads, d], 60);
    const outAll = Tensor.zeros('float32', [n, heads, d]);
    let visible = 0;
    for (let c = 0; c < cacheChunks; c++) visible += tokens * (c + 1) * tokens;
    report(config, 'self-attention (masked)', `${n}q x ${n}k chunk ${tokens}, ${heads}x${d}`,
      () => attentionSync(qAll, cache.keys, cache.values, { mask: { type: 'chunkCausal', chunkSize: tokens }, out: outAll }),
      { flops: 4 * visible * d * heads, scalar: scalarAttention });
  }
  const ck = random([ctx, heads, d], 70);
  const cv = random([ctx, heads, d], 71);
  report(config, 'cross-attention', `${tokens}q x ${ctx}k, ${heads}x${d}`, () => attentionSync(q, ck, cv, { out: qOut }),
    { flops: 4 * tokens * ctx * d * heads, scalar: scalarAttention });
}

const b = backends();
console.log(`model ops: ${b.cpu.threads} threads, isa ${b.cpu.isa}${quick ? ' (quick)' : ''}; best of repeated runs (ms), rate from the best`);
opsAt('embedded', { dim: 256, heads: 4, frames: 3, h: 8, w: 8, ffn: 1024, cacheChunks: 7, ctx: 64, scalarAttention: true });
opsAt('sf-1.3b', { dim: 1536, heads: 12, frames: 3, h: 30, w: 52, ffn: 8960, cacheChunks: 3, ctx: 512, scalarAttention: false });
