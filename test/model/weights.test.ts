import t from 'tap';
import { Rng, hashString } from '../../lib/model/random.js';
import { EMBEDDED_TESTBED, SELF_FORCING_1_3B, checkConfig, tokensPerFrame } from '../../lib/model/config.js';
import { blockLinears, encodePrompt, syntheticWeights } from '../../lib/model/weights.js';

t.test('Rng: deterministic, uniform in [0, 1), standard normals', (t) => {
  const a = new Rng(42), b = new Rng(42), c = new Rng(43);
  const xs = Array.from({ length: 8 }, () => a.nextUint32());
  t.same(xs, Array.from({ length: 8 }, () => b.nextUint32()));
  t.notSame(xs, Array.from({ length: 8 }, () => c.nextUint32()));
  const r = new Rng('seed');
  let sum = 0, sq = 0, lo = 1, hi = 0;
  const n = 200000;
  for (let i = 0; i < n; i++) {
    const u = r.uniform();
    lo = Math.min(lo, u);
    hi = Math.max(hi, u);
    const z = r.normal();
    sum += z;
    sq += z * z;
  }
  t.ok(lo >= 0 && hi < 1);
  t.ok(Math.abs(sum / n) < 0.01, 'mean near 0');
  t.ok(Math.abs(sq / n - 1) < 0.02, 'variance near 1');
  // FNV-1a of "a" is 0xe40c292c (the published test vector).
  t.equal(hashString('a'), 0xe40c292c);
  t.end();
});

t.test('configurations', (t) => {
  t.equal(tokensPerFrame(SELF_FORCING_1_3B), 1560, 'Self-Forcing: 1560 tokens per frame');
  t.equal(tokensPerFrame(EMBEDDED_TESTBED), 64);
  t.throws(() => checkConfig({ ...EMBEDDED_TESTBED, heads: 3 }), { name: 'RangeError', message: /config.dim/ });
  t.throws(() => checkConfig({ ...EMBEDDED_TESTBED, latentWidth: 15 }), { name: 'RangeError', message: /latentWidth/ });
  t.throws(() => checkConfig({ ...EMBEDDED_TESTBED, layers: 0 }), { name: 'RangeError', message: /config.layers/ });
  t.throws(() => checkConfig({ ...EMBEDDED_TESTBED, eps: 0 }), { name: 'RangeError', message: /eps/ });
  t.end();
});

t.test('synthetic weights: Wan names and shapes, deterministic, outliers planted where reported', (t) => {
  const c = { ...EMBEDDED_TESTBED, layers: 2 };
  const { tensors, plantedOutliers } = syntheticWeights(c, { seed: 1 });
  t.same(tensors['patch_embedding.weight'].shape, [256, 16, 1, 2, 2]);
  t.same(tensors['time_projection.1.weight'].shape, [6 * 256, 256]);
  t.same(tensors['blocks.1.ffn.2.weight'].shape, [256, 1024]);
  t.same(tensors['blocks.0.modulation'].shape, [1, 6, 256]);
  t.same(tensors['head.head.weight'].shape, [64, 256]);
  t.equal(blockLinears(c).length, 2 * 10);
  t.same(syntheticWeights(c, { seed: 1 }).tensors['blocks.0.ffn.0.weight'].data, tensors['blocks.0.ffn.0.weight'].data);
  const names = Object.keys(plantedOutliers);
  t.equal(names.length, 10, 'every other linear');
  for (const name of names) {
    const w = tensors[`${name}.weight`];
    const [out, inp] = w.shape;
    const norms = Array.from({ length: inp }, (_, j) => {
      let s = 0;
      for (let r = 0; r < out; r++) s += w.data[r * inp + j] ** 2;
      return Math.sqrt(s);
    });
    const sorted = [...norms].sort((a, b) => a - b);
    const median = sorted[Math.floor(inp / 2)];
    for (const j of plantedOutliers[name]) t.ok(norms[j] > 4 * median, `${name} column ${j} stands out`);
  }
  t.end();
});

t.test('prompts hash to deterministic contexts; shared words share rows', (t) => {
  const a = encodePrompt('A red fox', EMBEDDED_TESTBED);
  t.same(a.shape, [16, 64]);
  t.same(a.data, encodePrompt('a RED fox!', EMBEDDED_TESTBED).data, 'case and punctuation do not matter');
  const b = encodePrompt('a blue fox', EMBEDDED_TESTBED);
  t.same(a.data.subarray(0, 64), b.data.subarray(0, 64), 'same first word, same row');
  t.notSame(a.data.subarray(64, 128), b.data.subarray(64, 128));
  t.ok(a.data.subarray(3 * 64).every((v) => v === 0), 'padding is zero');
  t.end();
});
