// Histogram observer: one histogram of everything observed, qparams from percentile clips.
import type { QuantDType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Scheme } from '../primitives/qparams.js';
import { describe } from '../util/validate.js';
import { expectTagged } from './codec.js';
import { expectDType, expectProbability, expectScheme, options } from './checks.js';
import { percentileOfCounts, type Histogram } from './histogram.js';
import { HistogramStore, readGrid, type StoreJSON } from './histogram_store.js';
import { nothingObserved, readConfig, readTags, tensorQParams, type ObserveOptions, type ObserverConfig, type TensorQParams, type ValueStats } from './observer.js';

/** Default bin count of the histogram observers (the reference's 32768). */
export const DEFAULT_BINS = 32768;

/**
 * Grid of a histogram observer: `bins` (default 32768) and either a fixed `range: [lo, hi]`
 * (values outside count in the end bins) or, when omitted, a growing range [-2^e, 2^e) (bins must
 * then be a power of two >= 4): e is the smallest exponent that holds every value seen (at least
 * -126), and when a batch needs a larger e, every pair of adjacent bins is merged per doubling.
 * All bin edges are binary fractions, so a value ends in the same bin however the range grew, and
 * two observers merge exactly into what one observer of all the data would hold.
 */
export interface HistogramGridConfig {
  bins?: number;
  range?: [number, number];
}

export interface HistogramObserverJSON extends StoreJSON {
  type: 'HistogramObserver';
  version: 1;
  dtype: QuantDType;
  scheme: Scheme;
}

/**
 * Accumulates one histogram of every value observed (chunks are not separated; see MseObserver)
 * plus the exact min and max, and derives per-tensor qparams from a percentile clip: the range
 * [P(1 - p), P(p)] read from the histogram (Histogram.percentile), clamped to the observed [min, max];
 * p = 1 (default) gives [min, max] exactly. NaN is ignored and counted; infinities are rejected.
 *
 * @example
 * const obs = new HistogramObserver({ dtype: 'int8' });  // 32768 bins, growing range
 * for (const x of batches) obs.observe(x, { chunk, timestep });
 * obs.calculate({ percentile: 0.9999 });
 */
export class HistogramObserver {
  readonly dtype: QuantDType;
  readonly scheme: Scheme;
  #store: HistogramStore;

  constructor(config?: ObserverConfig & HistogramGridConfig) {
    const c = readConfig(config);
    this.dtype = c.dtype;
    this.scheme = c.scheme;
    const g = readGrid(c.raw, DEFAULT_BINS);
    this.#store = new HistogramStore(g.bins, g.range);
  }

  observe(x: Tensor<'float32'>, tags?: ObserveOptions): this {
    const { timestep } = readTags(tags);
    this.#store.observe(x, 0, timestep);
    return this;
  }

  merge(other: HistogramObserver): this {
    if (!(other instanceof HistogramObserver)) throw new TypeError(`Expected a HistogramObserver for other but received ${describe(other)}`);
    this.#store.merge(other.#store, 'other');
    return this;
  }

  get bins(): number {
    return this.#store.bins;
  }

  /** The current range ([lo, hi]) or null before the first value of a growing observer. */
  get range(): [number, number] | null {
    const g = this.#store.grid();
    return g ? [g.lo, g.hi] : null;
  }

  stats(): ValueStats {
    return this.#store.stats();
  }

  /** A copy of the histogram on the current range. */
  histogram(): Histogram {
    return this.#store.histogram(this.#store.sum());
  }

  calculate(opts?: { percentile?: number; dtype?: QuantDType; scheme?: Scheme }): TensorQParams & { percentile: number } {
    const o = options(opts);
    const p = o.percentile === undefined ? 1 : expectProbability(o.percentile, 'percentile', 0.5);
    const dtype = expectDType(o.dtype, 'dtype', this.dtype);
    const scheme = expectScheme(o.scheme, 'scheme', this.scheme);
    const s = this.#store.stats();
    if (s.count === 0) throw nothingObserved('HistogramObserver');
    const [lo, hi] = percentileRange(this.#store, this.#store.sum(), s, p);
    return { ...tensorQParams(lo, hi, dtype, scheme), percentile: p };
  }

  toJSON(): HistogramObserverJSON {
    return { type: 'HistogramObserver', version: 1, dtype: this.dtype, scheme: this.scheme, ...this.#store.toJSON() };
  }

  static fromJSON(json: unknown): HistogramObserver {
    const o = expectTagged(json, 'json', 'HistogramObserver', 1);
    const obs = new HistogramObserver({ dtype: o.dtype as QuantDType, scheme: o.scheme as Scheme, bins: o.bins as number, range: (o.range ?? undefined) as [number, number] });
    obs.#store = HistogramStore.fromJSON(o);
    return obs;
  }
}

/** [P(1 - p), P(p)] of counts on the store's grid, clamped to [min, max]; p = 1 is [min, max]. */
export function percentileRange(store: HistogramStore, counts: Float64Array, s: ValueStats, p: number): [number, number] {
  if (p === 1) return [s.min, s.max];
  const { lo, hi } = store.grid()!;
  const width = (hi - lo) / store.bins;
  const a = percentileOfCounts(counts, lo, width, 1 - p);
  const b = percentileOfCounts(counts, lo, width, p);
  return [Math.min(Math.max(a, s.min), s.max), Math.min(Math.max(b, s.min), s.max)];
}
