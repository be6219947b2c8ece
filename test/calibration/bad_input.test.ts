// Bad input: every public entry point throws (or rejects with) TypeError/RangeError naming the argument.
import t from 'tap';
import {
  Gram, Histogram, HistogramObserver, MinMaxObserver, MseObserver, PerChannelMinMaxObserver, Tensor, absMax, chunkWeightsFromSensitivity,
  columnNorms, columnNormsSync, detectOutliers, detectOutliersFromNorms, detectOutliersSync, gramAccumulate, gramAccumulateSync, minMax,
  minMaxSync, mseChannelClipSearch, mseChannelClipSearchSync, mseClipSearch, mseClipSearchSync, percentile,
} from '../../lib/index.js';
import { calib } from '../../lib/calibration/native.js';

type Cls = typeof TypeError | typeof RangeError;

const f32 = (n: number, v = 1) => new Tensor('float32', [n], new Float32Array(n).fill(v));
const mat = (r: number, c: number, v = 1) => new Tensor('float32', [r, c], new Float32Array(r * c).fill(v));
const withValue = (v: number) => {
  const x = f32(16);
  x.data[5] = v;
  return x;
};
const int8 = new Tensor('int8', [4], new Int8Array(4));
const empty = new Tensor('float32', [0, 3], new Float32Array(0));

// [label, call, error class, a pattern the message must contain (the argument's name)]
const SYNC: Array<[string, () => unknown, Cls, RegExp]> = [
  ['minMax: not a tensor', () => minMaxSync([1, 2] as never), TypeError, /\bx\b/],
  ['minMax: wrong dtype', () => minMaxSync(int8 as never), TypeError, /x .*float32/],
  ['minMax: empty tensor', () => minMaxSync(empty), RangeError, /non-empty tensor for x/],
  ['minMax: axis out of range', () => minMaxSync(mat(2, 3), { axis: 2 }), RangeError, /\baxis\b/],
  ['minMax: axis below -rank', () => minMaxSync(mat(2, 3), { axis: -3 }), RangeError, /\baxis\b/],
  ['minMax: fractional axis', () => minMaxSync(mat(2, 3), { axis: 0.5 }), TypeError, /\baxis\b/],
  ['minMax: options not an object', () => minMaxSync(mat(2, 3), 3 as never), TypeError, /\boptions\b/],
  ['columnNorms: rank 1', () => columnNormsSync(f32(4)), RangeError, /\bw\b/],
  ['columnNorms: rank 3', () => columnNormsSync(new Tensor('float32', [1, 2, 2], new Float32Array(4))), RangeError, /\bw\b/],
  ['columnNorms: wrong dtype', () => columnNormsSync(int8 as never), TypeError, /\bw\b/],
  ['Histogram: bins 0', () => new Histogram({ lo: 0, hi: 1, bins: 0 }), RangeError, /\bbins\b/],
  ['Histogram: fractional bins', () => new Histogram({ lo: 0, hi: 1, bins: 2.5 }), TypeError, /\bbins\b/],
  ['Histogram: too many bins', () => new Histogram({ lo: 0, hi: 1, bins: 2 ** 25 }), RangeError, /\bbins\b/],
  ['Histogram: lo >= hi', () => new Histogram({ lo: 1, hi: 1, bins: 4 }), RangeError, /hi > lo/],
  ['Histogram: NaN lo', () => new Histogram({ lo: NaN, hi: 1, bins: 4 }), RangeError, /\blo\b/],
  ['Histogram: infinite hi', () => new Histogram({ lo: 0, hi: Infinity, bins: 4 }), RangeError, /\bhi\b/],
  ['Histogram: missing options', () => new Histogram(undefined as never), TypeError, /\boptions\b/],
  ['Histogram.add: NaN weight', () => new Histogram({ lo: 0, hi: 1, bins: 4 }).addSync(f32(3), { weight: NaN }), RangeError, /\bweight\b/],
  ['Histogram.add: negative weight', () => new Histogram({ lo: 0, hi: 1, bins: 4 }).addSync(f32(3), { weight: -1 }), RangeError, /\bweight\b/],
  ['Histogram.add: rowWeights length', () => new Histogram({ lo: 0, hi: 1, bins: 4 }).addSync(mat(3, 2), { rowWeights: [1, 1] }), RangeError, /\browWeights\b/],
  ['Histogram.add: NaN row weight', () => new Histogram({ lo: 0, hi: 1, bins: 4 }).addSync(mat(2, 2), { rowWeights: [1, NaN] }), RangeError, /\browWeights\b/],
  ['Histogram.add: negative row weight', () => new Histogram({ lo: 0, hi: 1, bins: 4 }).addSync(mat(2, 2), { rowWeights: [1, -2] }), RangeError, /\browWeights\b/],
  ['Histogram.add: rowWeights not an array', () => new Histogram({ lo: 0, hi: 1, bins: 4 }).addSync(mat(2, 2), { rowWeights: 3 as never }), TypeError, /\browWeights\b/],
  ['Histogram.add: empty tensor', () => new Histogram({ lo: 0, hi: 1, bins: 4 }).addSync(empty), RangeError, /\bx\b/],
  ['Histogram.merge: not a histogram', () => new Histogram({ lo: 0, hi: 1, bins: 4 }).merge({} as never), TypeError, /\bother\b/],
  ['Histogram.merge: other bins', () => new Histogram({ lo: 0, hi: 1, bins: 4 }).merge(new Histogram({ lo: 0, hi: 1, bins: 5 })), RangeError, /\bother\b/],
  ['Histogram.percentile: p > 1', () => new Histogram({ lo: 0, hi: 1, bins: 4 }).percentile(1.5), RangeError, /\bp\b/],
  ['Histogram.fromJSON: garbage', () => Histogram.fromJSON('x'), TypeError, /\bjson\b/],
  ['Histogram.fromJSON: bad counts', () => Histogram.fromJSON({ type: 'Histogram', version: 1, lo: 0, hi: 1, bins: 4, counts: 42, nanWeight: 0 }), TypeError, /json.counts/],
  ['Histogram.fromJSON: version', () => Histogram.fromJSON({ type: 'Histogram', version: 2 }), RangeError, /json.version/],
  ['percentile: p NaN', () => percentile([1, 2], NaN), RangeError, /\bp\b/],
  ['percentile: bad source', () => percentile('abc' as never, 0.5), TypeError, /\bsource\b/],
  ['percentile: only NaN', () => percentile([NaN], 0.5), RangeError, /\bsource\b/],
  ['mseClipSearch: no candidates', () => mseClipSearchSync(f32(4), {} as never), TypeError, /\bcandidates\b/],
  ['mseClipSearch: empty candidates', () => mseClipSearchSync(f32(4), { candidates: [] }), RangeError, /\bcandidates\b/],
  ['mseClipSearch: lo > hi', () => mseClipSearchSync(f32(4), { candidates: [[1, -1]] }), RangeError, /candidates\[0\]/],
  ['mseClipSearch: NaN bound', () => mseClipSearchSync(f32(4), { candidates: [[-1, 1], [NaN, 1]] }), RangeError, /candidates\[1\]\[0\]/],
  ['mseClipSearch: not a pair', () => mseClipSearchSync(f32(4), { candidates: [[1]] as never }), TypeError, /candidates\[0\]/],
  ['mseClipSearch: unknown dtype', () => mseClipSearchSync(f32(4), { candidates: [[-1, 1]], dtype: 'int16' as never }), RangeError, /\bdtype\b/],
  ['mseClipSearch: unknown scheme', () => mseClipSearchSync(f32(4), { candidates: [[-1, 1]], scheme: 'affine' as never }), RangeError, /\bscheme\b/],
  ['mseClipSearch: all NaN', () => mseClipSearchSync(f32(4, NaN), { candidates: [[-1, 1]] }), RangeError, /\bsource\b/],
  ['mseClipSearch: rowWeights with a histogram', () => mseClipSearchSync(new Histogram({ lo: 0, hi: 1, bins: 2 }), { candidates: [[0, 1]], rowWeights: [1] }), TypeError, /\browWeights\b/],
  ['mseClipSearch: wrong source', () => mseClipSearchSync(int8 as never, { candidates: [[0, 1]] }), TypeError, /\bsource\b/],
  ['mseChannelClipSearch: percentile < 0.5', () => mseChannelClipSearchSync(mat(2, 4), { percentiles: [0.3] }), RangeError, /\bpercentiles\b/],
  ['mseChannelClipSearch: no percentiles', () => mseChannelClipSearchSync(mat(2, 4), { percentiles: [] }), RangeError, /\bpercentiles\b/],
  ['mseChannelClipSearch: NaN in w', () => mseChannelClipSearchSync(new Tensor('float32', [2, 2], new Float32Array([1, NaN, 2, 3]))), RangeError, /\bw\b/],
  ['mseChannelClipSearch: Inf in w', () => mseChannelClipSearchSync(new Tensor('float32', [2, 2], new Float32Array([1, Infinity, 2, 3]))), RangeError, /\bw\b/],
  ['mseChannelClipSearch: rank 1', () => mseChannelClipSearchSync(f32(4)), RangeError, /\bw\b/],
  ['Gram: cols 0', () => new Gram(0), RangeError, /\bcols\b/],
  ['Gram: last dim mismatch', () => new Gram(3).accumulateSync(mat(2, 4)), RangeError, /\bx\b/],
  ['Gram: NaN in x', () => new Gram(16).accumulateSync(withValue(NaN).reshape([1, 16])), RangeError, /\bx\b/],
  ['Gram: negative weight', () => new Gram(2).accumulateSync(mat(2, 2), { weight: -1 }), RangeError, /\bweight\b/],
  ['Gram: rowWeights length', () => new Gram(2).accumulateSync(mat(2, 2), { rowWeights: [1] }), RangeError, /\browWeights\b/],
  ['Gram.merge: other size', () => new Gram(2).merge(new Gram(3)), RangeError, /\bother\b/],
  ['Gram.fromJSON: wrong type', () => Gram.fromJSON({ type: 'Histogram', version: 1 }), TypeError, /json.type/],
  ['gramAccumulate: into not a Gram', () => gramAccumulateSync(mat(2, 2), { into: {} as never }), TypeError, /\binto\b/],
  ['observe: negative chunk', () => new MinMaxObserver().observe(f32(3), { chunk: -1 }), RangeError, /\bchunk\b/],
  ['observe: fractional chunk', () => new MseObserver().observe(f32(3), { chunk: 1.5 }), TypeError, /\bchunk\b/],
  ['observe: NaN timestep', () => new HistogramObserver().observe(f32(3), { timestep: NaN }), RangeError, /\btimestep\b/],
  ['observe: infinity in x', () => new MseObserver().observe(withValue(-Infinity)), RangeError, /\bx\b/],
  ['observe: wrong dtype', () => new MinMaxObserver().observe(int8 as never), TypeError, /\bx\b/],
  ['observe: empty tensor', () => new MinMaxObserver().observe(empty), RangeError, /\bx\b/],
  ['observer config: unknown dtype', () => new MinMaxObserver({ dtype: 'int2' as never }), RangeError, /\bdtype\b/],
  ['observer config: not an object', () => new MseObserver(5 as never), TypeError, /\bconfig\b/],
  ['HistogramObserver: bins not a power of two', () => new HistogramObserver({ bins: 1000 }), RangeError, /\bbins\b/],
  ['HistogramObserver: range reversed', () => new HistogramObserver({ range: [1, 0] }), RangeError, /\brange\b/],
  ['HistogramObserver: range NaN', () => new HistogramObserver({ range: [NaN, 1] }), RangeError, /range\[0\]/],
  ['HistogramObserver: percentile < 0.5', () => new HistogramObserver().observe(f32(3)).calculate({ percentile: 0.2 }), RangeError, /\bpercentile\b/],
  ['MseObserver: percentiles out of range', () => new MseObserver({ percentiles: [1.5] }), RangeError, /\bpercentiles\b/],
  ['MseObserver: chunkWeights too short', () => new MseObserver().observe(f32(3), { chunk: 2 }).calculate({ chunkWeights: [1, 1] }), RangeError, /\bchunkWeights\b/],
  ['MseObserver: NaN chunk weight', () => new MseObserver().observe(f32(3)).calculate({ chunkWeights: [NaN] }), RangeError, /\bchunkWeights\b/],
  ['MseObserver: unknown chunkWeights string', () => new MseObserver().observe(f32(3)).calculate({ chunkWeights: 'sensitivity' as never }), RangeError, /\bchunkWeights\b/],
  ['MseObserver: all weights 0', () => new MseObserver().observe(f32(3)).calculate({ chunkWeights: [0] }), RangeError, /\bchunkWeights\b/],
  ['MseObserver: nothing observed', () => new MseObserver().calculate(), RangeError, /no value/],
  ['MseObserver.merge: other type', () => new MseObserver().merge(new HistogramObserver() as never), TypeError, /\bother\b/],
  ['MseObserver.merge: other bins', () => new MseObserver().merge(new MseObserver({ bins: 1024 })), RangeError, /\bother\b/],
  ['MseObserver.fromJSON: wrong type', () => MseObserver.fromJSON(new MinMaxObserver().toJSON()), TypeError, /json.type/],
  ['PerChannelMinMaxObserver: axis missing', () => new PerChannelMinMaxObserver({} as never), TypeError, /\baxis\b/],
  ['PerChannelMinMaxObserver: axis beyond x', () => new PerChannelMinMaxObserver({ axis: 2 }).observe(mat(2, 2)), RangeError, /\baxis\b/],
  ['detectOutliers: unknown method', () => detectOutliersSync(mat(2, 4), { method: 'zscore' as never }), RangeError, /\bmethod\b/],
  ['detectOutliers: NaN threshold', () => detectOutliersSync(mat(2, 4), { threshold: NaN }), RangeError, /\bthreshold\b/],
  ['detectOutliers: negative minRatio', () => detectOutliersSync(mat(2, 4), { minRatio: -1 }), RangeError, /\bminRatio\b/],
  ['detectOutliers: align 0', () => detectOutliersSync(mat(2, 4), { align: 0 }), RangeError, /\balign\b/],
  ['detectOutliers: unknown median', () => detectOutliersSync(mat(2, 4), { median: 'upper' as never }), RangeError, /\bmedian\b/],
  ['detectOutliers: NaN in w', () => detectOutliersSync(new Tensor('float32', [2, 2], new Float32Array([1, NaN, 1, 1]))), RangeError, /w must be finite/],
  ['detectOutliers: rank 1', () => detectOutliersSync(f32(4)), RangeError, /\bw\b/],
  ['detectOutliersFromNorms: not an array', () => detectOutliersFromNorms(3 as never), TypeError, /\bnorms\b/],
  ['detectOutliersFromNorms: empty', () => detectOutliersFromNorms([]), RangeError, /\bnorms\b/],
  ['chunkWeightsFromSensitivity: negative', () => chunkWeightsFromSensitivity([0.5, -0.1]), RangeError, /\bs\b/],
  ['chunkWeightsFromSensitivity: NaN', () => chunkWeightsFromSensitivity([NaN]), RangeError, /\bs\b/],
  ['chunkWeightsFromSensitivity: all zero', () => chunkWeightsFromSensitivity([0, 0]), RangeError, /\bs\b/],
  ['chunkWeightsFromSensitivity: empty', () => chunkWeightsFromSensitivity([]), RangeError, /\bs\b/],
  ['chunkWeightsFromSensitivity: strings', () => chunkWeightsFromSensitivity(['a'] as never), TypeError, /\bs\b/],
];

t.test('synchronous calls throw the right class, naming the argument', (t) => {
  for (const [label, call, cls, pattern] of SYNC) {
    let error: unknown;
    try {
      call();
    } catch (e) {
      error = e;
    }
    if (!(error instanceof cls) || !pattern.test((error as Error).message)) {
      t.fail(`${label}: expected ${cls.name} matching ${pattern}, got ${error instanceof Error ? `${error.constructor.name}: ${error.message}` : String(error)}`);
    } else {
      t.pass(label);
    }
  }
  t.end();
});

t.test('Promise forms reject with the same classes', async (t) => {
  await t.rejects(minMax(int8 as never), TypeError);
  await t.rejects(minMax(mat(2, 2), { axis: 5 }), RangeError);
  await t.rejects(absMax(empty), RangeError);
  await t.rejects(columnNorms(f32(3)), RangeError);
  await t.rejects(new Histogram({ lo: 0, hi: 1, bins: 2 }).add(f32(3), { weight: -1 }), RangeError);
  await t.rejects(mseClipSearch(f32(3), { candidates: [] }), RangeError);
  await t.rejects(mseChannelClipSearch(mat(2, 2), { dtype: 'fp8' as never }), RangeError);
  await t.rejects(gramAccumulate(mat(2, 2), { rowWeights: [1, 2, 3] }), RangeError);
  await t.rejects(new Gram(4).accumulate(mat(2, 2)), RangeError);
  await t.rejects(detectOutliers(mat(2, 2), { align: -1 }), RangeError);
});

t.test('the native layer re-checks lengths and types and never crashes', (t) => {
  const n = calib();
  const out = () => [new Float32Array(2), new Float32Array(2), new Float64Array(1)] as const;
  t.throws(() => n.calibMinMax(new Float32Array(5), 1, 2, 3, ...out(), false), RangeError);
  t.throws(() => n.calibMinMax(new Float64Array(6) as never, 1, 2, 3, ...out(), false), TypeError);
  t.throws(() => n.calibMinMax(new Float32Array(6), 1, -2, -3, ...out(), false), RangeError);
  t.throws(() => n.calibColumnNorms(new Float32Array(6), 2, 3, new Float64Array(2), false), RangeError);
  t.throws(() => n.calibHistogramAdd(new Float32Array(4), 2, 2, new Float64Array(3), 1, 0, 1, 4, new Float64Array(4), new Float64Array(1), false), RangeError);
  t.throws(() => n.calibHistogramAdd(new Float32Array(4), 2, 2, new Float64Array(0), 1, 1, 0, 4, new Float64Array(4), new Float64Array(1), false), RangeError);
  t.throws(() => n.calibHistogramAdd(new Float32Array(4), 2, 2, new Float64Array(0), 1, 0, 1, 5, new Float64Array(4), new Float64Array(1), false), RangeError);
  t.throws(() => n.calibFakeQuantSse(new Float32Array(4), 4, 1, new Float64Array(0), new Float32Array(2), new Float32Array(1), 4, false, new Float64Array(2), new Float64Array(2), false), RangeError);
  t.throws(() => n.calibFakeQuantSse(new Float32Array(4), 4, 1, new Float64Array(0), new Float32Array(1), new Float32Array(1), 0, false, new Float64Array(1), new Float64Array(2), false), RangeError);
  t.throws(() => n.calibChannelClipSearch(new Float32Array(4), 2, 2, new Float64Array([0.2]), 4, false, new Float32Array(2), new Int32Array(2), new Float32Array(2), new Float32Array(2), new Int32Array(2), new Float64Array(2), false), RangeError);
  t.throws(() => n.calibChannelClipSearch(new Float32Array([1, NaN, 1, 1]), 2, 2, new Float64Array([0.9]), 4, false, new Float32Array(2), new Int32Array(2), new Float32Array(2), new Float32Array(2), new Int32Array(2), new Float64Array(2), false), /NaN/);
  t.throws(() => n.calibGramAccumulate(new Float32Array(4), 2, 2, new Float64Array(0), 1, new Float64Array(3), false), RangeError);
  t.end();
});
