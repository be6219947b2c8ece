// Histogram counts against a loop (exact), weights, merging, JSON, and percentiles by hand.
import t from 'tap';
import { Histogram, Tensor, percentile, percentileOfCounts } from '../../lib/index.js';
import { close, firstDiff, gaussian, onEveryIsa, onEveryIsaAsync, refBin, rng } from './helpers.js';

function refCounts(x: ArrayLike<number>, lo: number, hi: number, bins: number, weightOf: (i: number) => number = () => 1): { counts: Float64Array; nan: number } {
  const counts = new Float64Array(bins);
  let nan = 0;
  for (let i = 0; i < x.length; i++) {
    const b = refBin(x[i], lo, hi, bins);
    if (b < 0) nan += weightOf(i);
    else counts[b] += weightOf(i);
  }
  return { counts, nan };
}

// Data with NaN, infinities, values outside the range, values exactly on lo, hi and bin edges.
function awkward(n: number, seed: number, lo: number, hi: number, bins: number): Float32Array {
  const x = gaussian(n, seed, (hi - lo) / 3);
  const w = (hi - lo) / bins;
  const specials = [NaN, Infinity, -Infinity, lo, hi, lo + w, hi - w, lo - 1, hi + 1, 0, lo + 7 * w, Math.fround(lo + 3.5 * w)];
  for (let i = 0; i < specials.length && i * 7 < n; i++) x[i * 7] = specials[i];
  return x;
}

t.test('counts equal a loop, exactly, for sizes around the vector width and bin counts up to 65536', (t) => {
  const cases: Array<[number, number, number, number]> = [
    // n, bins, lo, hi
    [1, 1, -1, 1], [7, 3, -2, 5], [9, 8, -1, 1], [17, 5, 0, 1], [100, 32768, -4, 4], [8191, 33, -3.3, 2.7],
    [70001, 32768, -8, 8], [150001, 65536, -0.5, 0.25], [300007, 1000, -3, 3], [50, 40000, -1, 1],
  ];
  onEveryIsa((isa) => {
    cases.forEach(([n, bins, lo, hi], c) => {
      const x = awkward(n, c + 1, lo, hi, bins);
      const h = new Histogram({ lo, hi, bins }).addSync(new Tensor('float32', [n], x));
      const ref = refCounts(x, lo, hi, bins);
      t.equal(firstDiff(h.counts, ref.counts), -1, `${isa} n=${n} bins=${bins}`);
      t.equal(h.nanWeight, ref.nan);
      t.equal(h.total() + h.nanWeight, n);
    });
  });
  t.end();
});

t.test('values outside the range count in the end bins; NaN in none', (t) => {
  const h = new Histogram({ lo: 0, hi: 4, bins: 4 });
  h.addSync(Tensor.fromArray([-10, -Infinity, 0, 0.999, 1, 3.999, 4, 5, Infinity, NaN]));
  t.same(Array.from(h.counts), [4, 1, 0, 4]);
  t.equal(h.nanWeight, 1);
  t.end();
});

t.test('weights: a scalar weight scales the counts, row weights weigh each row', async (t) => {
  await onEveryIsaAsync(async (isa) => {
    const rows = 37;
    const cols = 1029;
    const x = awkward(rows * cols, 5, -2, 2, 4096);
    const rw = Array.from({ length: rows }, (_, r) => (r % 5) * 0.25 + 0.5);
    const h = new Histogram({ lo: -2, hi: 2, bins: 4096 });
    await h.add(new Tensor('float32', [rows, cols], x), { weight: 3, rowWeights: rw });
    const ref = refCounts(x, -2, 2, 4096, (i) => 3 * rw[Math.floor(i / cols)]);
    t.equal(firstDiff(h.counts, ref.counts, (a, b) => close(a, b, 1e-12)), -1, `${isa} row weights`);
    t.ok(close(h.nanWeight, ref.nan, 1e-12));
    const s = new Histogram({ lo: -2, hi: 2, bins: 4096 }).addSync(new Tensor('float32', [rows * cols], x), { weight: 0.375 });
    const refS = refCounts(x, -2, 2, 4096, () => 0.375);
    t.equal(firstDiff(s.counts, refS.counts), -1, `${isa} scalar weight is exact for a binary fraction`);
  });
});

t.test('histograms of two halves merge into the histogram of the whole', async (t) => {
  const x = awkward(200003, 9, -3, 3, 32768);
  const whole = new Histogram({ lo: -3, hi: 3, bins: 32768 }).addSync(new Tensor('float32', [x.length], x));
  const a = new Histogram({ lo: -3, hi: 3, bins: 32768 });
  const b = new Histogram({ lo: -3, hi: 3, bins: 32768 });
  await Promise.all([a.add(new Tensor('float32', [100000], x.subarray(0, 100000))), b.add(new Tensor('float32', [100003], x.subarray(100000)))]);
  a.merge(b);
  t.equal(firstDiff(a.counts, whole.counts), -1);
  t.equal(a.nanWeight, whole.nanWeight);
  t.throws(() => a.merge(new Histogram({ lo: -3, hi: 3, bins: 100 })), RangeError);
});

t.test('JSON round trip is exact', (t) => {
  const h = new Histogram({ lo: -1.5, hi: 2.25, bins: 777 });
  h.addSync(Tensor.fromArray(gaussian(5000, 3)), { weight: 0.1 });
  h.addSync(Tensor.fromArray([NaN, NaN]), { weight: 0.3 });
  const back = Histogram.fromJSON(JSON.parse(JSON.stringify(h)));
  t.equal(firstDiff(back.counts, h.counts), -1);
  t.same([back.lo, back.hi, back.bins, back.nanWeight], [h.lo, h.hi, h.bins, h.nanWeight]);
  t.throws(() => Histogram.fromJSON({ ...h.toJSON(), counts: 'AAAA' }), RangeError);
  t.throws(() => Histogram.fromJSON({ ...h.toJSON(), type: 'Gram' }), TypeError);
  t.end();
});

t.test('adds to one histogram queue up; sync use while one runs is refused', async (t) => {
  const h = new Histogram({ lo: -4, hi: 4, bins: 1024 });
  const x = Tensor.fromArray(gaussian(100000, 4));
  const p = [h.add(x), h.add(x), h.add(x)];
  t.throws(() => h.addSync(x), /still running/);
  await Promise.all(p);
  const ref = new Histogram({ lo: -4, hi: 4, bins: 1024 }).addSync(x);
  t.equal(firstDiff(h.counts, ref.counts.map((v) => 3 * v)), -1);
});

t.test('percentile: linear inside the bin, hand-computed', (t) => {
  // Bins of width 1 on [0, 4): counts 2, 0, 6, 2 (total 10).
  const h = new Histogram({ lo: 0, hi: 4, bins: 4 });
  h.counts.set([2, 0, 6, 2]);
  t.equal(h.percentile(0), 0); // lower edge of the first non-empty bin
  t.equal(h.percentile(0.1), 0.5); // t = 1: half of bin 0
  t.equal(h.percentile(0.2), 1); // t = 2: bin 0 ends
  t.equal(h.percentile(0.5), 2.5); // t = 5: 3 of 6 into bin 2, its centre
  t.equal(h.percentile(0.35), 2.25); // t = 3.5: 1.5 of 6 into bin 2
  t.equal(h.percentile(0.9), 3.5);
  t.equal(h.percentile(1), 4); // upper edge of the last non-empty bin
  const g = new Histogram({ lo: -1, hi: 1, bins: 8 });
  g.counts.set([0, 0, 4, 0, 0, 0, 0, 0]);
  t.equal(g.percentile(0), -0.5);
  t.equal(g.percentile(1), -0.25);
  t.equal(g.percentile(0.5), -0.375); // the centre of the only bin
  t.equal(percentileOfCounts(new Float64Array([1, 1]), 10, 2, 0.75), 13);
  t.throws(() => new Histogram({ lo: 0, hi: 1, bins: 3 }).percentile(0.5), /empty/);
  t.end();
});

t.test('percentile of raw values: sorted, linear interpolation at p (n - 1)', (t) => {
  t.equal(percentile([4, 1, 3, 2], 0.5), 2.5);
  t.equal(percentile([10, 0], 0.25), 2.5);
  t.equal(percentile([5], 0.9), 5);
  t.equal(percentile(Tensor.fromArray([1, NaN, 2, 3]), 1), 3);
  t.equal(percentile(Float32Array.from([0, 1, 2, 3, 4]), 0.9), 3.6);
  t.end();
});

t.test('histogram percentiles approach the exact ones on fine bins', (t) => {
  const r = rng(12);
  const x = Float32Array.from({ length: 100000 }, () => r() * 2 - 1);
  const h = new Histogram({ lo: -1, hi: 1, bins: 32768 }).addSync(Tensor.fromArray(x));
  for (const p of [0.001, 0.25, 0.5, 0.9999]) t.ok(Math.abs(h.percentile(p) - percentile(x, p)) < 1e-3, `p=${p}`);
  t.end();
});

t.test('counts and clip-search sums do not depend on the thread count', async (t) => {
  const { setThreads, backends, mseClipSearchSync } = await import('../../lib/index.js');
  const before = backends().cpu.threads;
  const x = new Tensor('float32', [401, 999], gaussian(401 * 999, 17));
  const count = () => new Histogram({ lo: -3, hi: 3, bins: 32768 }).addSync(x).counts;
  const sse = () => mseClipSearchSync(x, { candidates: [[-2, 2], [-3, 3]] }).errors;
  const ref = count();
  const refSse = sse();
  try {
    for (const n of [1, 3, 4]) {
      setThreads(n);
      t.equal(firstDiff(count(), ref), -1, `${n} threads: counts`);
      t.equal(firstDiff(sse(), refSse, (a, b) => close(a, b, 1e-12)), -1, `${n} threads: errors`);
    }
  } finally {
    setThreads(before);
  }
});

t.test('a tiny negative value whose x - lo rounds up onto a bin edge stays in the lower bin, on every path', (t) => {
  // Width 16 on [-512, 512): -3e-20 + 512 rounds to 512 exactly, the edge of bin 32.
  const pattern = [-3e-20, 3e-20, -1e-30, -0, 0, -1e-3, 1e-3];
  const x = Float32Array.from({ length: 70 }, (_, i) => pattern[i % pattern.length]);
  onEveryIsa((isa) => {
    const h = new Histogram({ lo: -512, hi: 512, bins: 64 }).addSync(Tensor.fromArray(x));
    t.equal(h.counts[31], 30, `${isa}: the negatives`);
    t.equal(h.counts[32], 40, `${isa}: zeros (-0 too) and positives`);
    t.equal(h.binOf(-3e-20), 31);
  });
  t.end();
});
