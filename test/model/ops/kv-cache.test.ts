// The KV cache: chunk-by-chunk attention over the cache equals the chunk-causal masked attention of
// the whole video (bit for bit: the kernel anchors its key blocks at key 0 in both forms), the
// Self-Forcing pattern of provisional keys per denoising step, memory, and bad input.
import t from 'tap';
import { attention, KvCache, Tensor } from '../../../lib/index.js';
import { assertClose, randomTensor } from './helpers.js';
import { isaPaths, resetIsa, useIsa } from '../../helpers/isa.js';
import { attentionRef } from './reference.js';

function rows(x: Tensor, from: number, to: number): Tensor<'float32'> {
  const row = x.size / x.shape[0];
  return new Tensor('float32', [to - from, ...x.shape.slice(1)], (x.data as Float32Array).slice(from * row, to * row));
}

for (const path of isaPaths('attention')) {
  t.test(`cache chunk by chunk = masked whole video (${path.name})`, async (t) => {
    useIsa(path);
    try {
      // (chunks, tokens per chunk, heads, headDim): the embedded default's shape (natively only: the
      // emulated builds are slow), and awkward ones
      const shapes = [[7, 192, 4, 64], [4, 37, 3, 12], [3, 100, 2, 128], [5, 1, 1, 6]] as const;
      for (const [chunks, per, heads, d] of path.emulated ? shapes.slice(1) : shapes) {
        const n = chunks * per;
        const q = randomTensor([n, heads, d], 10 + per, 2);
        const k = randomTensor([n, heads, d], 20 + per, 2);
        const v = randomTensor([n, heads, d], 30 + per);
        const masked = await attention(q, k, v, { mask: { type: 'chunkCausal', chunkSize: per } });
        const cache = new KvCache({ maxTokens: n, heads, headDim: d });
        const pieces: number[] = [];
        for (let c = 0; c < chunks; c++) {
          cache.append(rows(k, c * per, (c + 1) * per), rows(v, c * per, (c + 1) * per));
          const y = c % 2 ? cache.attentionSync(rows(q, c * per, (c + 1) * per)) : await cache.attention(rows(q, c * per, (c + 1) * per));
          pieces.push(...y.data);
        }
        const tag = `${chunks} chunks of ${per}, ${heads}x${d}`;
        t.same(pieces, Array.from(masked.data), `${tag}: identical`);
        if (n * n * heads * d < 5e7) {
          assertClose(t, masked.data, attentionRef(q.data, k.data, v.data, n, n, heads, d, { chunk: per }), 1e-5, 1e-5, `${tag}: against the reference`);
        }
        t.equal(cache.length, n);
      }
    } finally {
      resetIsa();
    }
  });
}

t.test('Self-Forcing pattern: provisional keys per step, then the cache pass', async (t) => {
  const per = 24;
  const heads = 2;
  const d = 16;
  const cache = new KvCache({ maxTokens: 3 * per, heads, headDim: d });
  const committed: Tensor<'float32'>[][] = [];
  let seed = 1;
  for (let c = 0; c < 3; c++) {
    const start = cache.length;
    for (let step = 0; step < 4; step++) {
      cache.truncate(start);
      const k = randomTensor([per, heads, d], seed++);
      const v = randomTensor([per, heads, d], seed++);
      const q = randomTensor([per, heads, d], seed++);
      cache.append(k, v);
      const y = await cache.attention(q);
      // the reference sees only the committed chunks and this step's keys
      const ks = [...committed.map((p) => p[0]), k];
      const vs = [...committed.map((p) => p[1]), v];
      const cat = (xs: Tensor<'float32'>[]) => Float32Array.from(xs.flatMap((x) => Array.from(x.data)));
      const lk = (c + 1) * per;
      assertClose(t, y.data, attentionRef(q.data, cat(ks), cat(vs), per, lk, heads, d), 1e-5, 1e-5, `chunk ${c} step ${step}`);
    }
    cache.truncate(start);
    const k0 = randomTensor([per, heads, d], seed++);
    const v0 = randomTensor([per, heads, d], seed++);
    cache.append(k0, v0);
    committed.push([k0, v0]);
    t.equal(cache.length, (c + 1) * per, `chunk ${c} committed`);
  }
  t.same(Array.from(cache.keys.data.slice(per * heads * d, 2 * per * heads * d)), Array.from(committed[1][0].data), 'keys view holds the committed chunk');
  t.same(cache.values.shape, [3 * per, heads, d]);
});

t.test('cache views, memory, reset and [tokens, dim] inputs', async (t) => {
  const cache = new KvCache({ maxTokens: 10, heads: 2, headDim: 4 });
  t.same(cache.memory, { allocatedBytes: 2 * 10 * 8 * 4, usedBytes: 0 });
  t.same(cache.keys.shape, [0, 2, 4]);
  const k = randomTensor([3, 8], 1);
  const v = randomTensor([3, 8], 2);
  cache.append(k, v);
  t.same(cache.memory, { allocatedBytes: 640, usedBytes: 2 * 3 * 8 * 4 });
  t.same(Array.from(cache.keys.data), Array.from(k.data));
  t.same(Array.from(cache.values.data), Array.from(v.data));
  const q = randomTensor([2, 8], 3);
  const y = cache.attentionSync(q);
  t.same(y.shape, [2, 8], '[tokens, dim] queries give [tokens, dim] out');
  assertClose(t, y.data, attentionRef(q.data, k.data, v.data, 2, 3, 2, 4), 1e-5, 1e-5, 'flat layout');
  const out = Tensor.zeros('float32', [2, 8]);
  t.equal(cache.attentionSync(q, { out, scale: 0.1 }), out);
  assertClose(t, out.data, attentionRef(q.data, k.data, v.data, 2, 3, 2, 4, {}, 0.1), 1e-5, 1e-5, 'scale and out');
  cache.reset();
  t.equal(cache.length, 0);
  t.same(cache.memory.usedBytes, 0);
});

t.test('cache rejects bad input naming the argument', async (t) => {
  t.throws(() => new KvCache(undefined as never), { name: 'TypeError', message: /options/ });
  t.throws(() => new KvCache({ maxTokens: 0, heads: 1, headDim: 4 }), { name: 'RangeError', message: /options\.maxTokens/ });
  t.throws(() => new KvCache({ maxTokens: 4, heads: 1.5, headDim: 4 }), { name: 'TypeError', message: /options\.heads/ });
  t.throws(() => new KvCache({ maxTokens: 4, heads: 1, headDim: -4 }), { name: 'RangeError', message: /options\.headDim/ });
  t.throws(() => new KvCache({ maxTokens: 2 ** 30, heads: 12, headDim: 128 }), { name: 'RangeError', message: /options\.maxTokens/ });
  const cache = new KvCache({ maxTokens: 4, heads: 2, headDim: 4 });
  t.throws(() => cache.attentionSync(Tensor.zeros('float32', [1, 2, 4])), { name: 'RangeError', message: /non-empty cache/ });
  await t.rejects(cache.attention(Tensor.zeros('float32', [1, 2, 4])), { name: 'RangeError', message: /non-empty cache/ });
  t.throws(() => cache.append(Tensor.zeros('float32', [2, 3, 4]), Tensor.zeros('float32', [2, 3, 4])), { name: 'RangeError', message: /k/ });
  t.throws(() => cache.append(Tensor.zeros('float32', [2, 7]), Tensor.zeros('float32', [2, 7])), { name: 'RangeError', message: /heads/ });
  t.throws(() => cache.append(Tensor.zeros('float32', [2, 2, 4]), Tensor.zeros('float32', [3, 2, 4])), { name: 'RangeError', message: /v/ });
  t.throws(() => cache.append(Tensor.zeros('float32', [5, 2, 4]), Tensor.zeros('float32', [5, 2, 4])), { name: 'RangeError', message: /k to fit/ });
  t.throws(() => cache.append(Tensor.zeros('int8', [1, 2, 4]), Tensor.zeros('float32', [1, 2, 4])), { name: 'TypeError', message: /k/ });
  cache.append(Tensor.zeros('float32', [3, 2, 4]), Tensor.zeros('float32', [3, 2, 4]));
  t.throws(() => cache.append(Tensor.zeros('float32', [2, 2, 4]), Tensor.zeros('float32', [2, 2, 4])), { name: 'RangeError', message: /3 of 4 tokens in use/ });
  t.throws(() => cache.truncate(4), { name: 'RangeError', message: /length/ });
  t.throws(() => cache.truncate(-1), { name: 'RangeError', message: /length/ });
  t.throws(() => cache.attentionSync(Tensor.zeros('float32', [1, 3, 4])), { name: 'RangeError', message: /q to have the cache's 2 heads of 4/ });
  t.throws(() => cache.attentionSync(Tensor.zeros('float32', [1, 12])), { name: 'RangeError', message: /q to have the cache's 2 heads of 4/ });
  // no changes while an attention call reads the cache
  const pending = cache.attention(Tensor.zeros('float32', [1, 2, 4]));
  t.throws(() => cache.truncate(0), { name: 'Error', message: /in flight/ });
  t.throws(() => cache.append(Tensor.zeros('float32', [1, 2, 4]), Tensor.zeros('float32', [1, 2, 4])), { message: /in flight/ });
  await pending;
  cache.truncate(0);
  t.equal(cache.length, 0, 'free again once the call settles');
});
