// Attention in bfloat16 and int8, and over bfloat16 and int8 KV caches, on every code path (natively
// where the CPU has it, emulated otherwise), against double-precision references:
// - attentionPrecisionRef: the precision's operands (q * scale, k, v rounded to bfloat16; or q and the
//   smoothed keys quantized per token and head, exactly as specified) with an exact softmax. The
//   kernels also round the probabilities to bfloat16, which moves an output by at most
//   2^-8 max|v| (p_j -> p_j (1 + e_j), |e_j| <= 2^-8, in a convex combination of the rows of v): that
//   is the budget, on top of the float32 one of attention.test.ts.
// - attentionRef on the unrounded inputs, within a bound derived from the rounding alone: a score
//   error of at most B moves softmax weights by at most e^{2B} - 1 in total (l1), plus 2^-8 max|v| for
//   the rounded values and as much for the rounded probabilities.
// The caches' stored integers, scales and bfloat16 bits are checked bit for bit.
import t from 'tap';
import { attention, attentionSync, KvCache, Tensor, type AttentionPrecision, type KvCacheDtype } from '../../../lib/index.js';
import { isaPaths, resetIsa, useIsa } from '../../helpers/isa.js';
import { assertClose, compare, maxAbs, randomTensor } from './helpers.js';
import { attentionPrecisionRef, attentionRef, bf16, bf16Bits, bf16Value, channelMeanRef, quantizeRowRef, type KvRef } from './reference.js';

const U = 2 ** -8; // bfloat16's unit roundoff
const RTOL = 1e-5;
const ATOL = 1e-5;

/** Keys with a common offset per channel (as projected keys have; what int8 smoothing removes). */
function keysWithOffset(shape: [number, number, number], seed: number, amplitude: number): Tensor<'float32'> {
  const k = randomTensor(shape, seed, amplitude);
  const offset = randomTensor([shape[2]], seed + 1000, 2 * amplitude);
  for (let i = 0; i < k.size; i++) k.data[i] += offset.data[i % shape[2]];
  return k;
}

/** What the kernel reads from a cache: its stored numbers (checked against the inputs below). */
function refOf(cache: KvCache, which: 'keys' | 'values'): KvRef {
  const stored = cache[which];
  if (cache.storage === 'fp32') return { storage: 'fp32', values: stored.data as Float32Array };
  if (cache.storage === 'bf16') return { storage: 'bf16', values: Array.from(stored.data as Uint16Array, bf16Value) };
  return { storage: 'int8', values: stored.data as Int8Array, scales: (which === 'keys' ? cache.keyScales : cache.valueScales)!.data };
}

// (queries, keys, heads, headDim, amplitude): around the blocks (96 queries, 64 keys), odd sizes.
const CASES: [number, number, number, number, number][] = [
  [1, 1, 1, 6, 1],
  [7, 13, 3, 12, 1],
  [97, 65, 2, 64, 1],
  [33, 130, 2, 20, 2],
  [19, 50, 3, 7, 1],
  [50, 77, 2, 128, 2],
];
const PRECISIONS: AttentionPrecision[] = ['fp32', 'bf16', 'int8'];
const STORAGES: KvCacheDtype[] = ['fp32', 'bf16', 'int8'];

for (const path of isaPaths('attention')) {
  t.test(`attention precisions over every cache storage (${path.name})`, async (t) => {
    useIsa(path);
    try {
      let seed = 1;
      for (const [lq, lk, heads, d, amp] of CASES) {
        const q = randomTensor([lq, heads, d], seed++, amp);
        const k = keysWithOffset([lk, heads, d], seed++, amp);
        const v = randomTensor([lk, heads, d], seed++, 2, 0.5);
        for (const storage of STORAGES) {
          const cache = new KvCache({ maxTokens: lk, heads, headDim: d, storage });
          cache.append(k, v);
          for (const precision of PRECISIONS) {
            const tag = `${lq}q x ${lk}k, ${heads}x${d}: ${precision} over a ${storage} cache`;
            const ref = attentionPrecisionRef(q.data, refOf(cache, 'keys'), refOf(cache, 'values'), lq, lk, heads, d, precision);
            const atol = ATOL * ref.vmax + (precision === 'fp32' ? 0 : 1.01 * U * ref.vmax);
            const y = precision === 'fp32' && storage === 'fp32' ? cache.attentionSync(q) : await cache.attention(q, { precision });
            assertClose(t, y.data, ref.out, RTOL, atol, tag);
          }
        }
      }
    } finally {
      resetIsa();
    }
  });

  t.test(`bfloat16 inputs and the chunk-causal mask in every precision (${path.name})`, async (t) => {
    useIsa(path);
    try {
      const [chunks, per, heads, d] = [3, 37, 2, 64];
      const n = chunks * per;
      const q = randomTensor([n, heads, d], 50, 2);
      const k = keysWithOffset([n, heads, d], 51, 2);
      const v = randomTensor([n, heads, d], 52);
      const toBf16 = (x: Tensor<'float32'>) => new Tensor('bfloat16', x.shape, Uint16Array.from(x.data, bf16Bits));
      const kb = toBf16(k), vb = toBf16(v);
      const refK: KvRef = { storage: 'bf16', values: Array.from(kb.data, bf16Value) };
      const refV: KvRef = { storage: 'bf16', values: Array.from(vb.data, bf16Value) };
      for (const precision of PRECISIONS) {
        const ref = attentionPrecisionRef(q.data, refK, refV, n, n, heads, d, precision, { chunk: per });
        const atol = ATOL * ref.vmax + (precision === 'fp32' ? 0 : 1.01 * U * ref.vmax);
        const y = await attention(q, kb, vb, { precision, mask: { type: 'chunkCausal', chunkSize: per } });
        assertClose(t, y.data, ref.out, RTOL, atol, `${precision}, bfloat16 k and v, ${chunks} chunks of ${per}`);
        const mixed = attentionSync(q, k, vb, { precision, mask: { type: 'chunkCausal', chunkSize: per } });
        const refMixed = attentionPrecisionRef(q.data, { storage: 'fp32', values: k.data }, refV, n, n, heads, d, precision, { chunk: per });
        assertClose(t, mixed.data, refMixed.out, RTOL, ATOL * refMixed.vmax + (precision === 'fp32' ? 0 : 1.01 * U * refMixed.vmax), `${precision}, float32 k, bfloat16 v`);
      }
    } finally {
      resetIsa();
    }
  });

  t.test(`bf16 and int8 within their rounding bounds of exact attention (${path.name})`, async (t) => {
    useIsa(path);
    try {
      let seed = 200;
      for (const [lq, lk, heads, d, amp] of [[40, 90, 2, 64, 1], [17, 33, 3, 20, 2]] as const) {
        const q = randomTensor([lq, heads, d], seed++, amp);
        const k = keysWithOffset([lk, heads, d], seed++, amp);
        const v = randomTensor([lk, heads, d], seed++);
        const exact = attentionRef(q.data, k.data, v.data, lq, lk, heads, d);
        const vmax = maxAbs(v.data), scale = 1 / Math.sqrt(d), width = heads * d;
        const mean = channelMeanRef(k.data, lk, width);
        for (const precision of ['bf16', 'int8'] as const) {
          // Per query row: B = the largest score error over its keys that the rounding can make.
          const atol = new Float64Array(lq * width);
          for (let h = 0; h < heads; h++)
            for (let i = 0; i < lq; i++) {
              const x = Array.from({ length: d }, (_, c) => q.data[i * width + h * d + c] * scale);
              const xAbs = x.reduce((a, b) => a + Math.abs(b), 0);
              const sq = Math.max(...x.map(Math.abs)) / 127;
              let bound = 0;
              for (let j = 0; j < lk; j++) {
                const kj = Array.from({ length: d }, (_, c) => k.data[j * width + h * d + c]);
                if (precision === 'bf16') {
                  bound = Math.max(bound, (2 * U + U * U) * kj.reduce((a, kc, c) => a + Math.abs(kc * x[c]), 0));
                } else {
                  const ks = kj.map((kc, c) => kc - mean[h * d + c]);
                  const sk = Math.max(...ks.map(Math.abs)) / 127;
                  bound = Math.max(bound, (sq / 2) * ks.reduce((a, b) => a + Math.abs(b), 0) + (sk / 2) * xAbs + (d * sq * sk) / 4);
                }
              }
              // float32 slack on the scores and outputs, rounded values and probabilities
              const row = vmax * (Math.expm1(2 * bound * (1 + 1e-3) + 1e-5) + 2.02 * U) + ATOL * vmax;
              atol.fill(row, i * width + h * d, i * width + (h + 1) * d);
            }
          const y = await attention(q, k, v, { precision });
          const c = compare(y.data, exact, RTOL, atol);
          t.ok(c.ratio <= 1, `${precision}, ${lq}q x ${lk}k, ${heads}x${d}: within the rounding bound (ratio ${c.ratio.toFixed(3)}, ${c.detail})`);
        }
      }
    } finally {
      resetIsa();
    }
  });
}

t.test('bf16 cache: the keys and values rounded to nearest even, bit for bit', async (t) => {
  const k = randomTensor([30, 2, 8], 1, 3);
  const v = randomTensor([30, 2, 8], 2, 3);
  // ties, denormals, zeros, infinities and NaN
  k.data.set([1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 1e-40, -1e-40, 0, -0, Infinity, -Infinity, NaN, 3.4e38]);
  const cache = new KvCache({ maxTokens: 40, heads: 2, headDim: 8, storage: 'bf16' });
  cache.append(k, v);
  t.equal(cache.keys.dtype, 'bfloat16');
  t.same(Array.from(cache.keys.data as Uint16Array), Array.from(k.data, bf16Bits), 'keys');
  t.same(Array.from(cache.values.data as Uint16Array), Array.from(v.data, bf16Bits), 'values');
  t.same(Array.from(cache.keys.data.slice(0, 7) as Uint16Array), [0x3f80, 0x3f82, 0xbf80, 0, 0x8000, 0, 0x8000], 'ties to even, denormals to a signed zero');
  t.same(cache.memory, { allocatedBytes: 2 * 40 * 16 * 2, usedBytes: 2 * 30 * 16 * 2 });
  t.equal(cache.keyScales, null);
  t.equal(cache.keySmoothing, null);
});

// On every attention path: the cache quantizes with that path's row quantizer (AVX-512 where it has it).
for (const path of isaPaths('attention')) t.test(`int8 cache: smoothed keys and values quantized per token and head, bit for bit (${path.name})`, async (t) => {
  useIsa(path);
  t.teardown(resetIsa);
  const [per, heads, d] = [24, 3, 16];
  const width = heads * d;
  const cache = new KvCache({ maxTokens: 3 * per, heads, headDim: d, storage: 'int8' });
  const k0 = keysWithOffset([per, heads, d], 10, 1);
  const v0 = randomTensor([per, heads, d], 11, 2);
  v0.data[5] = NaN; // token 0, head 0: a NaN scale and zeros, as quantize() maps NaN
  cache.append(k0, v0);
  const mean = channelMeanRef(k0.data, per, width);
  t.same(Array.from(cache.keySmoothing!.data), Array.from(mean), 'smoothing: the channel means of the first chunk');
  const k1 = keysWithOffset([per, heads, d], 12, 1);
  const v1 = randomTensor([per, heads, d], 13, 2);
  await cache.appendAsync(k1, v1);
  t.same(Array.from(cache.keySmoothing!.data), Array.from(mean), 'kept for later chunks');
  const check = (x: Tensor<'float32'>, first: number, which: 'keys' | 'values') => {
    const q = cache[which].data as Int8Array;
    const scales = (which === 'keys' ? cache.keyScales : cache.valueScales)!.data;
    let bad = 0;
    for (let t0 = 0; t0 < per; t0++)
      for (let h = 0; h < heads; h++) {
        const row = Array.from({ length: d }, (_, c) => Math.fround(x.data[t0 * width + h * d + c] - (which === 'keys' ? mean[h * d + c] : 0)));
        const r = row.some(Number.isNaN) ? { q: new Int8Array(d), scale: NaN } : quantizeRowRef(row);
        const at = (first + t0) * width + h * d;
        if (!Object.is(scales[(first + t0) * heads + h], r.scale) || r.q.some((v, c) => v !== q[at + c])) bad++;
      }
    return bad;
  };
  t.equal(check(k0, 0, 'keys'), 0, 'chunk 0 keys');
  t.equal(check(v0, 0, 'values'), 0, 'chunk 0 values');
  t.equal(check(k1, per, 'keys'), 0, 'chunk 1 keys (appendAsync)');
  t.equal(check(v1, per, 'values'), 0, 'chunk 1 values');
  t.equal(cache.keys.dtype, 'int8');
  t.same(cache.keyScales!.shape, [2 * per, heads]);
  t.same(cache.memory, { allocatedBytes: 2 * 3 * per * (width + 4 * heads) + 4 * width, usedBytes: 2 * 2 * per * (width + 4 * heads) + 4 * width });
  const q = randomTensor([per, heads, d], 14);
  const y = cache.attentionSync(q).data;
  t.ok(Array.from(y.slice(0, d)).every(Number.isNaN) && Array.from(y.slice(d, width)).every(Number.isFinite), 'the NaN value reaches its head\'s outputs only, as in float32');
  cache.truncate(0);
  cache.append(k1, v1);
  t.same(Array.from(cache.keySmoothing!.data), Array.from(channelMeanRef(k1.data, per, width)), 'an emptied cache takes the smoothing of its new first chunk');
});

t.test('appendAsync stores what append does and refuses overlapping use', async (t) => {
  for (const storage of STORAGES) {
    const a = new KvCache({ maxTokens: 100, heads: 2, headDim: 32, storage });
    const b = new KvCache({ maxTokens: 100, heads: 2, headDim: 32, storage });
    const k = keysWithOffset([100, 2, 32], 1, 1);
    const v = randomTensor([100, 2, 32], 2);
    a.append(k, v);
    const pending = b.appendAsync(k, v);
    // A float32 cache copies at once; the others round or quantize on the kernel threads meanwhile.
    if (storage !== 'fp32') t.throws(() => b.truncate(0), { message: /in flight/ }, `${storage}: busy while storing`);
    await pending;
    t.same(Array.from(b.keys.data), Array.from(a.keys.data), `${storage}: keys`);
    t.same(Array.from(b.values.data), Array.from(a.values.data), `${storage}: values`);
    if (storage === 'int8') t.same(Array.from(b.valueScales!.data), Array.from(a.valueScales!.data), 'scales');
  }
});

t.test('precision and storage options are validated', async (t) => {
  const q = Tensor.zeros('float32', [4, 2, 8]);
  const k = Tensor.zeros('float32', [6, 2, 8]);
  t.throws(() => attentionSync(q, k, k, { precision: 'fp16' as never }), { name: 'RangeError', message: /options\.precision/ });
  t.throws(() => attentionSync(q, Tensor.zeros('int8', [6, 2, 8]), k), { name: 'TypeError', message: /k/ });
  t.throws(() => attentionSync(q, k, Tensor.zeros('float16', [6, 2, 8])), { name: 'TypeError', message: /v/ });
  t.throws(() => new KvCache({ maxTokens: 4, heads: 2, headDim: 8, storage: 'int4' as never }), { name: 'RangeError', message: /options\.storage/ });
  const cache = new KvCache({ maxTokens: 6, heads: 2, headDim: 8, storage: 'int8' });
  cache.append(k, k);
  t.throws(() => cache.attentionSync(q, { precision: 'int4' as never }), { name: 'RangeError', message: /options\.precision/ });
  t.throws(() => cache.attentionSync(q, { scale: 0 }), { name: 'RangeError', message: /options\.scale/ });
  await t.rejects(cache.appendAsync(Tensor.zeros('float32', [1, 2, 8]), k), { name: 'RangeError', message: /v/ });
  t.throws(() => cache.attentionSync(q, { out: Tensor.zeros('float32', [4, 16]) }), { name: 'RangeError', message: /options\.out/ });
});
