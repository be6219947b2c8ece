// Observers: merging two halves equals observing everything, JSON round trips, chunk weighting.
import t from 'tap';
import {
  Histogram, HistogramObserver, MinMaxObserver, MseObserver, PerChannelMinMaxObserver, Tensor, chunkWeightsFromSensitivity,
} from '../../lib/index.js';
import { qparamsFromRange } from '../../lib/primitives/qparams.js';
import { close, firstDiff, gaussian, refMse } from './helpers.js';

interface Batch {
  x: Tensor<'float32'>;
  chunk: number;
  timestep: number;
}

/** Seven chunks of four timesteps, with ranges that grow and shrink from batch to batch. */
function batches(): Batch[] {
  const out: Batch[] = [];
  let seed = 1;
  for (let chunk = 0; chunk < 7; chunk++) {
    for (const [ti, timestep] of [1000, 750, 500, 250].entries()) {
      const scale = 0.01 * 4 ** ((chunk + 3 * ti) % 7);
      const x = gaussian(1000 + seed * 37, seed, scale);
      if (seed % 5 === 0) x[3] = NaN;
      out.push({ x: new Tensor('float32', [x.length], x), chunk, timestep });
      seed++;
    }
  }
  return out;
}

const BATCHES = batches();
// Chunks 0-2 and 3-6: the second half reaches larger values, so growing ranges differ.
const FIRST = BATCHES.filter((b) => b.chunk < 3);
const SECOND = BATCHES.filter((b) => b.chunk >= 3);

function feed<O extends { observe(x: Tensor<'float32'>, o: { chunk: number; timestep: number }): unknown }>(obs: O, list: Batch[]): O {
  for (const b of list) obs.observe(b.x, { chunk: b.chunk, timestep: b.timestep });
  return obs;
}

t.test('MinMaxObserver: halves merge into the whole; JSON round trip; per-chunk ranges', (t) => {
  const all = feed(new MinMaxObserver(), BATCHES);
  const merged = feed(new MinMaxObserver(), FIRST).merge(feed(new MinMaxObserver(), SECOND));
  t.same(merged.toJSON(), all.toJSON());
  t.same(merged.calculate(), all.calculate());
  const s = all.stats();
  t.same(all.calculate({ dtype: 'uint4' }), { ...qparamsFromRange(s.min, s.max, 'uint4', 'asymmetric'), lo: s.min, hi: s.max, dtype: 'uint4', scheme: 'asymmetric' });
  const c3 = all.stats(3);
  t.same(all.calculate({ chunk: 3 }).lo, c3.min);
  t.equal(s.nanCount, BATCHES.filter((_, i) => (i + 1) % 5 === 0).length);
  t.same(all.chunks(), [0, 1, 2, 3, 4, 5, 6]);
  t.equal(all.timesteps().get(750), 7);
  const back = MinMaxObserver.fromJSON(JSON.parse(JSON.stringify(all)));
  t.same(back.toJSON(), all.toJSON());
  t.same(back.calculate(), all.calculate());
  // An empty observer serializes its +-Infinity identities.
  const empty = MinMaxObserver.fromJSON(JSON.parse(JSON.stringify(new MinMaxObserver().observe(Tensor.fromArray([NaN])))));
  t.equal(empty.stats().min, Infinity);
  t.throws(() => empty.calculate(), RangeError);
  t.end();
});

t.test('PerChannelMinMaxObserver: halves merge into the whole, per-channel qparams, JSON', (t) => {
  const w = gaussian(6 * 50, 3);
  w[7] = NaN;
  const x = new Tensor('float32', [6, 50], w);
  const all = new PerChannelMinMaxObserver({ axis: 1, scheme: 'symmetric' }).observe(x);
  const a = new PerChannelMinMaxObserver({ axis: 1, scheme: 'symmetric' }).observe(new Tensor('float32', [2, 50], w.subarray(0, 100)));
  const b = new PerChannelMinMaxObserver({ axis: -1, scheme: 'symmetric' }).observe(new Tensor('float32', [4, 50], w.subarray(100)));
  a.merge(b);
  const q = all.calculate();
  t.same(a.calculate(), q);
  for (let c = 0; c < 50; c++) {
    let mn = Infinity;
    let mx = -Infinity;
    for (let r = 0; r < 6; r++) {
      const v = w[r * 50 + c];
      if (Number.isNaN(v)) continue;
      mn = Math.min(mn, v);
      mx = Math.max(mx, v);
    }
    const e = qparamsFromRange(mn, mx, 'int8', 'symmetric');
    if (q.scale[c] !== e.scale || q.zeroPoint[c] !== e.zeroPoint || q.lo[c] !== mn) t.fail(`channel ${c}`);
  }
  t.equal(all.nanCount, 1);
  const back = PerChannelMinMaxObserver.fromJSON(JSON.parse(JSON.stringify(all)));
  t.same(back.calculate(), q);
  t.throws(() => all.observe(new Tensor('float32', [2, 49], new Float32Array(98))), RangeError);
  t.end();
});

t.test('HistogramObserver with a growing range: merges are exact, equal to binning everything at the final range', (t) => {
  const all = feed(new HistogramObserver({ bins: 4096 }), BATCHES);
  const a = feed(new HistogramObserver({ bins: 4096 }), FIRST);
  const b = feed(new HistogramObserver({ bins: 4096 }), SECOND);
  t.not(a.range![1], b.range![1], 'the halves grew to different ranges');
  const merged = a.merge(b);
  t.same(merged.range, all.range);
  t.equal(firstDiff(merged.histogram().counts, all.histogram().counts), -1, 'merged counts');
  // Reverse order, too.
  const rev = feed(new HistogramObserver({ bins: 4096 }), [...BATCHES].reverse());
  t.equal(firstDiff(rev.histogram().counts, all.histogram().counts), -1, 'order does not matter');
  // One histogram of all values at the final range holds the same counts.
  const [lo, hi] = all.range!;
  const direct = new Histogram({ lo, hi, bins: 4096 });
  for (const x of BATCHES) direct.addSync(x.x);
  t.equal(firstDiff(direct.counts, all.histogram().counts), -1, 'equal to direct binning');
  // The range is the smallest power of two holding every value.
  const s = all.stats();
  t.ok(Math.max(-s.min, s.max) < hi && Math.max(-s.min, s.max) >= hi / 2 - 1e-30);
  t.same(HistogramObserver.fromJSON(JSON.parse(JSON.stringify(all))).toJSON(), all.toJSON());
  t.same(merged.calculate({ percentile: 0.999 }), all.calculate({ percentile: 0.999 }));
  t.same(all.calculate().lo, s.min);
  t.end();
});

t.test('HistogramObserver with a fixed range; percentile clip', (t) => {
  const mk = () => new HistogramObserver({ range: [-1, 1], bins: 1000 });
  const all = feed(mk(), BATCHES);
  const merged = feed(mk(), FIRST).merge(feed(mk(), SECOND));
  t.equal(firstDiff(merged.histogram().counts, all.histogram().counts), -1);
  const q = all.calculate({ percentile: 0.99 });
  const h = all.histogram();
  t.equal(q.hi, Math.fround(Math.min(h.percentile(0.99), all.stats().max)));
  t.throws(() => merged.merge(new HistogramObserver({ range: [-2, 2], bins: 1000 })), RangeError);
  t.end();
});

t.test('MseObserver: halves merge into the whole; JSON round trip', (t) => {
  const mk = () => new MseObserver({ bins: 8192 });
  const all = feed(mk(), BATCHES);
  const merged = feed(mk(), FIRST).merge(feed(mk(), SECOND));
  const w = chunkWeightsFromSensitivity([0.546, 0.167, 0.119, 0.079, 0.053, 0.026, 0.01]);
  for (const chunkWeights of ['uniform', w] as const) t.same(merged.calculate({ chunkWeights }), all.calculate({ chunkWeights }));
  for (let k = 0; k < 7; k++) t.equal(firstDiff(merged.histogram(k).counts, all.histogram(k).counts), -1, `chunk ${k}`);
  const back = MseObserver.fromJSON(JSON.parse(JSON.stringify(all)));
  t.same(back.toJSON(), all.toJSON());
  t.same(back.calculate({ chunkWeights: w }), all.calculate({ chunkWeights: w }));
  t.end();
});

/** Chunk 0: 100000 N(0, 1) samples; chunk 1: 20 values spread evenly over [-8, 8]. */
function twoChunks(): MseObserver {
  const obs = new MseObserver({ dtype: 'int8' });
  obs.observe(Tensor.fromArray(gaussian(100000, 1)), { chunk: 0, timestep: 1000 });
  obs.observe(Tensor.fromArray(Array.from({ length: 20 }, (_, i) => -8 + (16 * (i + 0.5)) / 20)), { chunk: 1, timestep: 1000 });
  return obs;
}

/** The chunk-weighted MSE of a range, from the per-chunk histograms, by a plain loop. */
function refWeighted(obs: MseObserver, weights: number[], lo: number, hi: number): number {
  const centres: number[] = [];
  const counts: number[] = [];
  weights.forEach((wk, k) => {
    const h = obs.histogram(k);
    for (let i = 0; i < h.bins; i++) {
      if (h.counts[i] === 0) continue;
      centres.push(Math.fround(h.lo + (i + 0.5) * h.width));
      counts.push(wk * h.counts[i]);
    }
  });
  return refMse(centres, counts, lo, hi, 'int8', 'asymmetric');
}

t.test('chunk weighting changes the chosen range when the chunks prefer different clips', (t) => {
  const obs = twoChunks();
  const uniform = obs.calculate();
  const weighted = obs.calculate({ chunkWeights: [0.1, 50] });
  t.equal(uniform.candidates.length, 4);
  t.not(uniform.chosen, weighted.chosen, 'different choice');
  t.equal(weighted.chosen, 3, 'the wide range protects the heavily weighted chunk 1');
  t.ok(uniform.hi < weighted.hi);
  for (const [res, w] of [[uniform, [1, 1]], [weighted, [0.1, 50]]] as const) {
    const ref = res.candidates.map((c) => refWeighted(obs, [...w], c.lo, c.hi));
    res.candidates.forEach((c, i) => t.ok(close(c.mse, ref[i], 1e-10), `candidate ${i} mse`));
    t.equal(res.chosen, ref.indexOf(Math.min(...ref)));
    t.same({ scale: res.scale, zeroPoint: res.zeroPoint }, qparamsFromRange(res.lo, res.hi, 'int8', 'asymmetric'));
  }
  // Percentile candidates come from both chunks together, unweighted.
  const all = obs.histogram();
  t.equal(uniform.candidates[0].hi, Math.fround(all.percentile(0.999)));
  t.equal(uniform.candidates[3].lo, Math.fround(-7.6));
  t.end();
});

t.test('chunkWeightsFromSensitivity: w_k = s_k / mean(s)', (t) => {
  const s = [0.546, 0.167, 0.119, 0.079, 0.053, 0.026, 0.01];
  const w = chunkWeightsFromSensitivity(s);
  const mean = s.reduce((a, b) => a + b) / s.length;
  t.same(Array.from(w), s.map((v) => v / mean));
  t.ok(close(w.reduce((a, b) => a + b) / w.length, 1, 1e-15));
  t.same(Array.from(chunkWeightsFromSensitivity([2, 2])), [1, 1]);
  t.end();
});

t.test('a growing range that starts from all zeros and jumps by far more than log2(bins) doublings stays exact', (t) => {
  const obs = new HistogramObserver({ bins: 64 });
  obs.observe(Tensor.fromArray([0, 0, -0, NaN]));
  t.same(obs.range, [-(2 ** -126), 2 ** -126]);
  obs.observe(Tensor.fromArray([1e-30, -3e-20]));
  const big = gaussian(5000, 3, 100);
  obs.observe(Tensor.fromArray(big));
  const [lo, hi] = obs.range!;
  const direct = new Histogram({ lo, hi, bins: 64 });
  direct.addSync(Tensor.fromArray([0, 0, -0, NaN]));
  direct.addSync(Tensor.fromArray([1e-30, -3e-20]));
  direct.addSync(Tensor.fromArray(big));
  t.equal(firstDiff(obs.histogram().counts, direct.counts), -1);
  t.equal(obs.stats().nanCount, 1);
  t.end();
});
