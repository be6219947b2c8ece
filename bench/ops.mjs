// Model ops: time of each op family at the embedded default's sizes (dim 256, 4 heads of 64, chunks
// of 3 frames x 8 x 8 = 192 tokens, FFN 1024, 64 context tokens) and at Self-Forcing 1.3B sizes
// (dim 1536, 12 heads of 128, chunks of 3 frames x 30 x 52 = 4680 tokens, FFN 8960, 512 context
// tokens). GFLOP/s for attention (4 * queries * visible keys * headDim * heads), GB/s for the rest
// (bytes read + written once); the scalar path and onnxruntime-node's own kernel for the same op
// (MultiHeadAttention, LayerNormalization, SimplifiedLayerNormalization, FastGelu; same thread count)
// where they finish in reasonable time. The candidates of a row run in alternation, so that they
// share the machine's load; figures are the best run of each.
//
//   node bench/ops.mjs [--quick] [--full]      (after `npm run build`; --full adds ORT's 400-GFLOP attention)
import {
  attentionSync, backends, geluSync, KvCache, layerNormSync, rmsNormSync, gatedResidualSync, rope3dSync, setIsa, siluSync, Tensor,
} from '../dist/index.js';
import { oneNodeModel, ort, session } from './lib/ort.mjs';

const quick = process.argv.includes('--quick');
const full = process.argv.includes('--full');
const threads = backends().cpu.threads;

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

/**
 * Times the candidates in alternation (one run of each per round, so that they share whatever load
 * the machine has) for at least `min` rounds and `seconds` of wall time; best and median per candidate.
 */
async function timeAll(fns, { min = 5, seconds = quick ? 0.3 : 1.5 } = {}) {
  let rounds = min;
  const times = fns.map(() => []);
  const warm = performance.now();
  for (const f of fns) await f();
  // Multi-second rows (attention at 1.3B sizes) get two rounds, not five.
  if (performance.now() - warm > 1000) rounds = Math.min(rounds, 2);
  const start = performance.now();
  while (times[0].length < rounds || (performance.now() - start) / 1000 < seconds) {
    for (let i = 0; i < fns.length; i++) {
      const t0 = performance.now();
      await fns[i]();
      times[i].push((performance.now() - t0) / 1000);
    }
    if (times[0].length >= 500) break;
  }
  return times.map((t) => {
    t.sort((a, b) => a - b);
    return { best: t[0], median: t[Math.floor(t.length / 2)] };
  });
}

/** An onnxruntime session of one node on `threads` threads, run with fixed feeds. */
async function ortPeer(spec, feeds) {
  const s = await session(oneNodeModel(spec), threads);
  const f = Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor('float32', t.data, [1, ...t.shape])]));
  return () => s.run(f);
}
const io = (name, shape) => ({ name, dtype: 'float32', shape: [1, ...shape] });

function fmt(t, work) {
  return work.flops ? `${(work.flops / t / 1e9).toFixed(1)} GFLOP/s` : `${(work.bytes / t / 1e9).toFixed(1)} GB/s`;
}

async function report(config, op, shape, fn, work, { scalar = true, peer } = {}) {
  const fns = [fn];
  if (scalar && backends().cpu.avx2) {
    fns.push(() => {
      setIsa('scalar');
      try {
        fn();
      } finally {
        setIsa('amx');
      }
    });
  }
  const peerIndex = peer ? fns.push(await peer()) - 1 : -1;
  const [ours, ...others] = await timeAll(fns);
  const vsScalar = fns.length > 1 && peerIndex !== 1 ? `${(others[0].best / ours.best).toFixed(1)}x` : '-';
  const p = peerIndex > 0 ? others[peerIndex - 1] : null;
  const vsOrt = p ? `${(p.best / ours.best).toFixed(2)}x (ORT ${fmt(p.best, work)})` : '-';
  console.log(`${config.padEnd(9)} ${op.padEnd(24)} ${shape.padEnd(34)} ${(ours.best * 1e3).toFixed(3).padStart(10)} ms (median ${(ours.median * 1e3).toFixed(3)})  ${fmt(ours.best, work).padStart(15)}   scalar ${vsScalar.padStart(6)}   vs ORT ${vsOrt}`);
}

async function opsAt(config, { dim, heads, frames, h, w, ffn, cacheChunks, ctx, scalarAttention, ortSelfAttention }) {
  const d = dim / heads;
  const tokens = frames * h * w;
  const x = random([tokens, dim], 1, 2);
  const y = random([tokens, dim], 2);
  const shift = random([frames, dim], 3);
  const scale = random([frames, dim], 4, 0.3);
  const weight = random([dim], 5);
  const bias = random([dim], 6);
  const out = Tensor.zeros('float32', [tokens, dim]);
  const rw = { bytes: 8 * tokens * dim }; // read + write of [tokens, dim] float32

  await report(config, 'layerNorm + modulation', `[${tokens}, ${dim}] / ${frames} groups`, () => layerNormSync(x, { shift, scale, out }), rw);
  await report(config, 'layerNorm affine', `[${tokens}, ${dim}]`, () => layerNormSync(x, { weight, bias, out }), rw, {
    peer: () => ortPeer({ op: 'LayerNormalization', inputs: [io('x', [tokens, dim])], initializers: [{ name: 'w', dtype: 'float32', shape: [dim], data: weight.data }, { name: 'b', dtype: 'float32', shape: [dim], data: bias.data }],
      nodeInputs: ['x', 'w', 'b'], outputs: [io('y', [tokens, dim])], attributes: { axis: -1, epsilon: 1e-6 } }, { x }),
  });
  await report(config, 'rmsNorm', `[${tokens}, ${dim}]`, () => rmsNormSync(x, { weight, out }), rw, {
    peer: () => ortPeer({ op: 'SimplifiedLayerNormalization', inputs: [io('x', [tokens, dim])], initializers: [{ name: 'w', dtype: 'float32', shape: [dim], data: weight.data }],
      nodeInputs: ['x', 'w'], outputs: [io('y', [tokens, dim])], attributes: { axis: -1, epsilon: 1e-6 } }, { x }),
  });
  await report(config, 'gatedResidual', `[${tokens}, ${dim}] / ${frames} groups`, () => gatedResidualSync(x, y, shift, { out }), { bytes: 12 * tokens * dim });
  const q = random([tokens, heads, d], 7);
  const qOut = Tensor.zeros('float32', [tokens, heads, d]);
  await report(config, 'rope3d', `[${tokens}, ${heads}, ${d}] grid ${frames}x${h}x${w}`, () => rope3dSync(q, { grid: [frames, h, w], startFrame: 3, out: qOut }), rw);
  const hidden = random([tokens, ffn], 8, 3);
  const hiddenOut = Tensor.zeros('float32', [tokens, ffn]);
  await report(config, 'gelu (tanh)', `[${tokens}, ${ffn}]`, () => geluSync(hidden, { out: hiddenOut }), { bytes: 8 * tokens * ffn }, {
    peer: () => ortPeer({ op: 'FastGelu', domain: 'com.microsoft', inputs: [io('x', [tokens, ffn])], nodeInputs: ['x'], outputs: [io('y', [tokens, ffn])] }, { x: hidden }),
  });
  await report(config, 'silu', `[${tokens}, ${ffn}]`, () => siluSync(hidden, { out: hiddenOut }), { bytes: 8 * tokens * ffn });

  const mha = (lq, lk, feeds) => () => ortPeer({ op: 'MultiHeadAttention', domain: 'com.microsoft', inputs: [io('q', [lq, dim]), io('k', [lk, dim]), io('v', [lk, dim])],
    nodeInputs: ['q', 'k', 'v'], outputs: [io('y', [lq, dim])], attributes: { num_heads: heads } }, feeds);
  const flat = (t) => new Tensor('float32', [t.shape[0], dim], t.data);
  // Self-attention of the last chunk against a cache of `cacheChunks` chunks (itself included).
  const cache = new KvCache({ maxTokens: cacheChunks * tokens, heads, headDim: d });
  for (let c = 0; c < cacheChunks; c++) cache.append(random([tokens, heads, d], 20 + c), random([tokens, heads, d], 40 + c));
  const kvLen = cache.length;
  await report(config, 'self-attention (cache)', `${tokens}q x ${kvLen}k, ${heads}x${d}`, () => cache.attentionSync(q, { out: qOut }),
    { flops: 4 * tokens * kvLen * d * heads }, { scalar: scalarAttention, peer: ortSelfAttention || full ? mha(tokens, kvLen, { q: flat(q), k: flat(cache.keys), v: flat(cache.values) }) : undefined });
  // The whole cached video at once under the chunk-causal mask (what the cache replaces).
  const n = cacheChunks * tokens;
  if (n * n * d * heads <= 2e11) {
    const qAll = random([n, heads, d], 60);
    const outAll = Tensor.zeros('float32', [n, heads, d]);
    let visible = 0;
    for (let c = 0; c < cacheChunks; c++) visible += tokens * (c + 1) * tokens;
    await report(config, 'self-attention (masked)', `${n}q x ${n}k chunk ${tokens}, ${heads}x${d}`,
      () => attentionSync(qAll, cache.keys, cache.values, { mask: { type: 'chunkCausal', chunkSize: tokens }, out: outAll }),
      { flops: 4 * visible * d * heads }, { scalar: scalarAttention });
  }
  const ck = random([ctx, heads, d], 70);
  const cv = random([ctx, heads, d], 71);
  await report(config, 'cross-attention', `${tokens}q x ${ctx}k, ${heads}x${d}`, () => attentionSync(q, ck, cv, { out: qOut }),
    { flops: 4 * tokens * ctx * d * heads }, { scalar: scalarAttention, peer: mha(tokens, ctx, { q: flat(q), k: flat(ck), v: flat(cv) }) });
}

const b = backends();
console.log(`model ops: ${b.cpu.threads} threads, isa ${b.cpu.isa}${quick ? ' (quick)' : ''}; best of repeated runs (ms), rates from the best;`);
console.log('"scalar" = scalar-path time / AVX2 time; "vs ORT" = onnxruntime-node time / ours (> 1: we are faster)');
await opsAt('embedded', { dim: 256, heads: 4, frames: 3, h: 8, w: 8, ffn: 1024, cacheChunks: 7, ctx: 64, scalarAttention: true, ortSelfAttention: true });
await opsAt('sf-1.3b', { dim: 1536, heads: 12, frames: 3, h: 30, w: 52, ffn: 8960, cacheChunks: 3, ctx: 512, scalarAttention: false, ortSelfAttention: false });
