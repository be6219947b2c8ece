// Attention in every precision and KV cache storage, side by side in one run: self-attention of one
// chunk against a cache of earlier chunks at the embedded default's sizes (192 queries, 4 heads of 64)
// and at Self-Forcing 1.3B's (4680 queries x 4 chunks = 18720 keys, 12 heads of 128: 538 GFLOP),
// against float32 attention over a float32 cache on the best path and on the AVX2 path (the kernel
// before the AVX-512 and dot-product paths; unchanged). Rates count 4 * queries * keys * headDim *
// heads operations whatever the precision. The candidates of a shape run in alternation, so that
// they share the machine's load; figures are the best run of each.
//
//   node bench/attention.mjs [--quick] [--keys 14040] [--only embedded|sf-1.3b]   (after `npm run build`)
import { backends, KvCache, setIsa, Tensor } from '../dist/index.js';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const option = (name) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const only = option('--only');

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

function maxError(a, b) {
  let m = 0, scale = 0;
  for (let i = 0; i < a.length; i++) {
    m = Math.max(m, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return m / scale;
}

/** Best time per candidate over `rounds` rounds of one run each, in alternation. */
async function timeAll(fns, rounds) {
  const best = fns.map(() => Infinity);
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < fns.length; i++) {
      const t0 = performance.now();
      await fns[i]();
      best[i] = Math.min(best[i], (performance.now() - t0) / 1000);
    }
  }
  return best;
}

async function shape(name, { tokens, heads, headDim, chunks, rounds }) {
  const kvLen = chunks * tokens;
  const q = random([tokens, heads, headDim], 7, 2);
  const caches = {};
  for (const storage of ['fp32', 'bf16', 'int8']) {
    const cache = new KvCache({ maxTokens: kvLen, heads, headDim, storage });
    // Keys with a common offset per channel, as projected keys have (what int8 smoothing removes).
    for (let c = 0; c < chunks; c++) {
      const k = random([tokens, heads, headDim], 20 + c, 2);
      const offset = random([headDim], 90, 1.5);
      for (let i = 0; i < k.data.length; i++) k.data[i] += offset.data[i % headDim];
      cache.append(k, random([tokens, heads, headDim], 40 + c));
    }
    caches[storage] = cache;
  }
  const best = backends().cpu.paths.attention;
  const rows = [
    { label: 'fp32, fp32 cache (avx2: before)', isa: 'avx2', storage: 'fp32', precision: 'fp32' },
    { label: 'fp32, fp32 cache', storage: 'fp32', precision: 'fp32' },
    { label: 'bf16, fp32 cache', storage: 'fp32', precision: 'bf16' },
    { label: 'int8, fp32 cache', storage: 'fp32', precision: 'int8' },
    { label: 'fp32, bf16 cache', storage: 'bf16', precision: 'fp32' },
    { label: 'bf16, bf16 cache', storage: 'bf16', precision: 'bf16' },
    { label: 'int8, bf16 cache', storage: 'bf16', precision: 'int8' },
    { label: 'fp32, int8 cache', storage: 'int8', precision: 'fp32' },
    { label: 'bf16, int8 cache', storage: 'int8', precision: 'bf16' },
    { label: 'int8, int8 cache', storage: 'int8', precision: 'int8' },
  ];
  const outs = rows.map(() => Tensor.zeros('float32', [tokens, heads, headDim]));
  const fns = rows.map((r, i) => async () => {
    if (r.isa) setIsa(r.isa);
    try {
      await caches[r.storage].attention(q, { precision: r.precision, out: outs[i] });
    } finally {
      if (r.isa) setIsa('amx');
    }
  });
  const times = await timeAll(fns, rounds);
  const flops = 4 * tokens * kvLen * headDim * heads;
  const fp32 = times[1], before = times[0];
  console.log(`\n${name}: ${tokens} queries x ${kvLen} keys, ${heads} heads of ${headDim} (${(flops / 1e9).toFixed(1)} GFLOP); path ${best}`);
  console.log('precision, cache                  time ms   GFLOP/s   speed-up vs fp32   vs before   cache MB   max error / max|out| vs fp32');
  for (let i = 0; i < rows.length; i++) {
    const cache = caches[rows[i].storage];
    console.log(`${rows[i].label.padEnd(33)} ${(times[i] * 1e3).toFixed(times[i] < 1 ? 2 : 0).padStart(8)}  ${(flops / times[i] / 1e9).toFixed(1).padStart(8)}` +
      `   ${(fp32 / times[i]).toFixed(2).padStart(15)}x  ${(before / times[i]).toFixed(2).padStart(9)}x  ${(cache.memory.usedBytes / 1e6).toFixed(1).padStart(8)}` +
      `   ${i === 1 ? '' : maxError(outs[i].data, outs[1].data).toExponential(2)}`);
  }
}

const b = backends();
console.log(`attention: ${b.cpu.threads} threads, isa ${b.cpu.isa}, attention path ${b.cpu.paths.attention}${quick ? ' (quick)' : ''}; best of alternating runs`);
if (only !== 'sf-1.3b') await shape('embedded', { tokens: 192, heads: 4, headDim: 64, chunks: 7, rounds: quick ? 5 : 20 });
if (only !== 'embedded') {
  const keys = Number(option('--keys') ?? 18720);
  if (!Number.isInteger(keys / 4680)) throw new RangeError('--keys must be a multiple of 4680 (whole chunks)');
  await shape('sf-1.3b', { tokens: 4680, heads: 12, headDim: 128, chunks: keys / 4680, rounds: quick ? 1 : 2 });
}
