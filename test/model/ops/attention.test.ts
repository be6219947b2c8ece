// Attention against an explicit softmax in double precision, on every code path: full attention
// (cross-attention shapes), the chunk-causal mask, query offsets, and awkward sizes around the
// kernel's blocks (96 queries x 64 keys) and vector widths. Tolerance: |error| <= 1e-5 |ref| +
// 1e-5 max|v| (outputs are convex combinations of the rows of v; float32 scores and accumulation).
import t from 'tap';
import { attention, attentionSync, backends, gelu, layerNorm, setThreads, Tensor } from '../../../lib/index.js';
import { assertClose, maxAbs, randomTensor } from './helpers.js';
import { isaPaths, resetIsa, useIsa, type IsaPath } from '../../helpers/isa.js';
import { attentionRef } from './reference.js';

const RTOL = 1e-5;
const ATOL = 1e-5;

// (queries, keys, heads, headDim, q/k amplitude)
const FULL: [number, number, number, number, number][] = [
  [1, 1, 1, 6, 1],
  [7, 13, 3, 12, 1],
  [97, 65, 2, 64, 1],
  [200, 301, 2, 128, 1],
  [33, 130, 4, 20, 1],
  [19, 50, 3, 7, 1],
  [150, 77, 2, 64, 3],
  [96, 64, 1, 16, 4],
];

/** Runs fn with attention on `path` (every path: natively where the CPU has it, else emulated). */
async function withPath<T>(path: IsaPath, fn: () => T | Promise<T>): Promise<T> {
  useIsa(path);
  try {
    return await fn();
  } finally {
    resetIsa();
  }
}

for (const path of isaPaths('attention')) {
  const isa = path.name;
  t.test(`attention without mask (${isa})`, async (t) => {
    await withPath(path, async () => {
      let seed = 1;
      for (const [lq, lk, heads, d, amp] of FULL) {
        const q = randomTensor([lq, heads, d], seed++, amp);
        const k = randomTensor([lk, heads, d], seed++, amp);
        const v = randomTensor([lk, heads, d], seed++, 2, 0.5);
        const ref = attentionRef(q.data, k.data, v.data, lq, lk, heads, d);
        const tag = `${lq}q x ${lk}k, ${heads}x${d}, amplitude ${amp}`;
        assertClose(t, (await attention(q, k, v)).data, ref, RTOL, ATOL * maxAbs(v.data), tag);
        const flat = (x: Tensor<'float32'>) => new Tensor('float32', [x.shape[0], heads * d], x.data);
        const y = attentionSync(flat(q), flat(k), flat(v), { heads });
        t.same(y.shape, [lq, heads * d], `${tag}: [tokens, dim] in, [tokens, dim] out`);
        assertClose(t, y.data, ref, RTOL, ATOL * maxAbs(v.data), `${tag} as [tokens, dim]`);
      }
      const q = randomTensor([10, 2, 8], 90);
      const k = randomTensor([20, 2, 8], 91);
      const v = randomTensor([20, 2, 8], 92);
      assertClose(t, attentionSync(q, k, v, { scale: 2.5 }).data, attentionRef(q.data, k.data, v.data, 10, 20, 2, 8, {}, 2.5), RTOL, ATOL, 'scale 2.5');
    });
  });

  t.test(`attention with the chunk-causal mask (${isa})`, async (t) => {
    await withPath(path, async () => {
      let seed = 100;
      // (chunks, tokens per chunk, heads, headDim): chunks that straddle the kernel's blocks
      for (const [chunks, per, heads, d] of [[5, 37, 2, 64], [3, 1, 1, 6], [4, 64, 3, 12], [3, 100, 2, 128], [2, 7, 2, 20]] as const) {
        const n = chunks * per;
        const q = randomTensor([n, heads, d], seed++, 2);
        const k = randomTensor([n, heads, d], seed++, 2);
        const v = randomTensor([n, heads, d], seed++);
        const tag = `${chunks} chunks of ${per}, ${heads}x${d}`;
        const ref = attentionRef(q.data, k.data, v.data, n, n, heads, d, { chunk: per });
        assertClose(t, (await attention(q, k, v, { mask: { type: 'chunkCausal', chunkSize: per } })).data, ref, RTOL, ATOL, tag);
        // the last two chunks' queries, placed by queryOffset
        const off = (chunks - 2) * per;
        const qTail = new Tensor('float32', [2 * per, heads, d], q.data.slice(off * heads * d));
        const tail = attentionSync(qTail, k, v, { mask: { type: 'chunkCausal', chunkSize: per, queryOffset: off } });
        assertClose(t, tail.data, ref.slice(off * heads * d), RTOL, ATOL, `${tag}, queryOffset ${off}`);
      }
      // chunk size beyond the sequence is no mask at all
      const q = randomTensor([20, 2, 8], 150);
      const k = randomTensor([20, 2, 8], 151);
      const v = randomTensor([20, 2, 8], 152);
      t.same(Array.from(attentionSync(q, k, v, { mask: { type: 'chunkCausal', chunkSize: 64 } }).data),
        Array.from(attentionSync(q, k, v, { mask: { type: 'none' } }).data), 'one chunk covering everything = no mask');
    });
  });

  t.test(`attention: peaked softmax, equal keys, large scores (${isa})`, async (t) => {
    await withPath(path, () => {
      // One key far more similar than the rest picks its value; identical keys average the values.
      const d = 16;
      const q = new Tensor('float32', [1, 1, d], new Float32Array(d).fill(1));
      const k = Tensor.zeros('float32', [70, 1, d]);
      const v = randomTensor([70, 1, d], 5);
      k.data.fill(1, 33 * d, 34 * d);
      const one = attentionSync(q, k, v, { scale: 100 });
      assertClose(t, one.data, v.data.slice(33 * d, 34 * d), 1e-6, 1e-6, 'the matching key wins');
      k.data.fill(0);
      const mean = new Float64Array(d);
      for (let j = 0; j < 70; j++) for (let c = 0; c < d; c++) mean[c] += v.data[j * d + c] / 70;
      assertClose(t, attentionSync(q, k, v).data, mean, 1e-5, 1e-6, 'equal keys give the mean of v');
      // scores of several hundred: exp would overflow without the running max
      const big = randomTensor([9, 2, 32], 6, 40);
      const kb = randomTensor([140, 2, 32], 7, 40);
      const vb = randomTensor([140, 2, 32], 8);
      assertClose(t, attentionSync(big, kb, vb).data, attentionRef(big.data, kb.data, vb.data, 9, 140, 2, 32), RTOL, ATOL, 'scores of several hundred');
    });
  });
}

t.test('attention out options', async (t) => {
  const q = randomTensor([50, 2, 16], 1);
  const k = randomTensor([70, 2, 16], 2);
  const v = randomTensor([70, 2, 16], 3);
  const ref = attentionRef(q.data, k.data, v.data, 50, 70, 2, 16);
  const out = Tensor.zeros('float32', [50, 2, 16]);
  t.equal(attentionSync(q, k, v, { out }), out, 'returns out');
  t.equal(await attention(q, k, v, { out: q }), q, 'out may be q');
  assertClose(t, q.data, ref, RTOL, ATOL, 'in place over q');
  t.same(attentionSync(Tensor.zeros('float32', [0, 2, 16]), k, v).shape, [0, 2, 16], 'no queries');
});

t.test('attention: any thread count gives the same bits; concurrent Promises', async (t) => {
  const q = randomTensor([300, 3, 64], 11, 2);
  const k = randomTensor([450, 3, 64], 12, 2);
  const v = randomTensor([450, 3, 64], 13);
  const mask = { type: 'chunkCausal', chunkSize: 150, queryOffset: 150 } as const;
  const threads = backends().cpu.threads;
  const results: number[][] = [];
  try {
    for (const n of [1, 2, 3, 5]) {
      setThreads(n);
      results.push(Array.from(attentionSync(q, k, v, { mask }).data));
    }
  } finally {
    setThreads(threads);
  }
  for (let i = 1; i < results.length; i++) t.same(results[i], results[0], `thread count #${i} matches 1 thread`);
  // Several calls in flight at once (the pool serialises them) each give their own sync result.
  const x = randomTensor([96, 128], 14, 3);
  const [a, g, n] = await Promise.all([attention(q, k, v, { mask }), gelu(x), layerNorm(x)]);
  t.same(Array.from(a.data), results[0], 'attention');
  t.same(Array.from(g.data), Array.from((await gelu(x)).data), 'gelu');
  t.same(Array.from(n.data), Array.from((await layerNorm(x)).data), 'layerNorm');
});

t.test('attention rejects bad input naming the argument', async (t) => {
  const q = Tensor.zeros('float32', [4, 2, 8]);
  const k = Tensor.zeros('float32', [6, 2, 8]);
  t.throws(() => attentionSync(Tensor.zeros('float32', [32]), k, k), { name: 'RangeError', message: /q/ });
  t.throws(() => attentionSync(Tensor.zeros('float32', [4, 16]), k, k), { name: 'TypeError', message: /options\.heads/ });
  t.throws(() => attentionSync(Tensor.zeros('float32', [4, 16]), k, k, { heads: 3 }), { name: 'RangeError', message: /options\.heads/ });
  t.throws(() => attentionSync(q, k, k, { heads: 4 }), { name: 'RangeError', message: /options\.heads/ });
  t.throws(() => attentionSync(q, Tensor.zeros('float32', [6, 4, 4]), Tensor.zeros('float32', [6, 4, 4])), { name: 'RangeError', message: /k/ });
  t.throws(() => attentionSync(q, k, Tensor.zeros('float32', [5, 2, 8])), { name: 'RangeError', message: /v/ });
  t.throws(() => attentionSync(q, Tensor.zeros('float32', [0, 2, 8]), Tensor.zeros('float32', [0, 2, 8])), { name: 'RangeError', message: /key token in k/ });
  t.throws(() => attentionSync(q, Tensor.zeros('float16', [6, 2, 8]), k), { name: 'TypeError', message: /k/ });
  t.throws(() => attentionSync(q, k, k, { mask: { type: 'causal' } as never }), { name: 'RangeError', message: /options\.mask\.type/ });
  t.throws(() => attentionSync(q, k, k, { mask: 'causal' as never }), { name: 'TypeError', message: /options\.mask/ });
  t.throws(() => attentionSync(q, k, k, { mask: { type: 'chunkCausal', chunkSize: 0 } }), { name: 'RangeError', message: /options\.mask\.chunkSize/ });
  t.throws(() => attentionSync(q, k, k, { mask: { type: 'chunkCausal', chunkSize: 1.5 } }), { name: 'TypeError', message: /options\.mask\.chunkSize/ });
  t.throws(() => attentionSync(q, k, k, { mask: { type: 'chunkCausal', chunkSize: 2, queryOffset: 3 } }), { name: 'RangeError', message: /options\.mask\.queryOffset/ });
  t.throws(() => attentionSync(q, k, k, { scale: NaN }), { name: 'RangeError', message: /options\.scale/ });
  t.throws(() => attentionSync(q, k, k, { scale: -1 }), { name: 'RangeError', message: /options\.scale/ });
  t.throws(() => attentionSync(q, k, k, { out: Tensor.zeros('float32', [4, 16]) }), { name: 'RangeError', message: /options\.out/ });
  const kInOut = new Tensor('float32', [4, 2, 8], k.data.subarray(0, 64));
  t.throws(() => attentionSync(q, k, k, { out: kInOut }), { name: 'RangeError', message: /options\.out.*overlaps/ });
  const qkv = Tensor.zeros('float32', [4, 2, 8]);
  t.throws(() => attentionSync(qkv, qkv, qkv, { out: qkv }), { name: 'RangeError', message: /options\.out.*overlaps/ }, 'out = q is refused when q is also k');
  await t.rejects(attention(q, k, k, { mask: { type: 'chunkCausal', chunkSize: -2 } }), { name: 'RangeError', message: /options\.mask\.chunkSize/ });
});
