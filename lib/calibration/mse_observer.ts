// The activation observer of the reference: per-chunk histograms, the range chosen among percentile
// clips by the chunk-weighted MSE of fake quantization.
import type { QuantDType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import type { Scheme } from '../primitives/qparams.js';
import { describe, expectInteger } from '../util/validate.js';
import { expectTagged } from './codec.js';
import { expectDType, expectScheme, expectWeights, options } from './checks.js';
import { DEFAULT_PERCENTILES, mseClipSearchSync } from './clip_search.js';
import type { Histogram } from './histogram.js';
import { DEFAULT_BINS, percentileRange, type HistogramGridConfig } from './histogram_observer.js';
import { HistogramStore, readGrid, type StoreJSON } from './histogram_store.js';
import { nothingObserved, readConfig, readTags, tensorQParams, type ObserveOptions, type ObserverConfig, type TensorQParams, type ValueStats } from './observer.js';

export interface MseObserverConfig extends ObserverConfig, HistogramGridConfig {
  /** Percentile clips tried besides the full [min, max] (default 0.999, 0.9999, 0.99999). */
  percentiles?: ArrayLike<number>;
}

/**
 * Chunk weights of calculate(): 'uniform' (every chunk 1; what the reference uses for dual-scale
 * layers) or w[k] for chunk k (e.g. chunkWeightsFromSensitivity(s)), one per observed chunk at least.
 */
export type ChunkWeights = 'uniform' | ArrayLike<number>;

export interface MseCandidate {
  /** The percentile p of the clip [P(1 - p), P(p)]; 1 for the full [min, max]. */
  percentile: number;
  lo: number;
  hi: number;
  /** Chunk-weighted mean squared error of fake quantization with this range. */
  mse: number;
}

export interface MseObserverJSON extends StoreJSON {
  type: 'MseObserver';
  version: 1;
  dtype: QuantDType;
  scheme: Scheme;
  percentiles: number[];
}

/**
 * Keeps one histogram per chunk (32768 bins by default, on the shared fixed or growing grid of
 * HistogramObserver) and the exact min/max, never the raw values. calculate() builds the candidate
 * ranges [P(1 - p), P(p)] for each percentile p from the histogram of all chunks together (clamped to
 * [min, max]) plus [min, max] itself, and picks the one with the least chunk-weighted MSE:
 *
 *   MSE(c) = sum_k w_k sum_i h_k[i] (x'_c(m_i) - m_i)^2 / sum_k w_k sum_i h_k[i],
 *
 * m_i = lo + (i + 0.5) width the bin centres (as float32), x'_c fake quantization with the qparams
 * of candidate c (quant_math semantics). A sample of chunk k thus weighs w_k, as SPEC section 1 asks.
 *
 * @example
 * const obs = new MseObserver({ dtype: 'int8', scheme: 'asymmetric' });
 * obs.observe(x, { chunk: 0, timestep: 1000 });
 * const w = chunkWeightsFromSensitivity([0.546, 0.167, 0.119, 0.079, 0.053, 0.026, 0.010]);
 * const q = obs.calculate({ chunkWeights: w }); // q.scale, q.zeroPoint, q.candidates, q.chosen
 */
export class MseObserver {
  readonly dtype: QuantDType;
  readonly scheme: Scheme;
  readonly percentiles: readonly number[];
  #store: HistogramStore;

  constructor(config?: MseObserverConfig) {
    const c = readConfig(config);
    this.dtype = c.dtype;
    this.scheme = c.scheme;
    this.percentiles = Object.freeze(Array.from(readPercentiles(c.raw.percentiles, 'percentiles', DEFAULT_PERCENTILES)));
    const g = readGrid(c.raw, DEFAULT_BINS);
    this.#store = new HistogramStore(g.bins, g.range);
  }

  observe(x: Tensor<'float32'>, tags?: ObserveOptions): this {
    const { chunk, timestep } = readTags(tags);
    this.#store.observe(x, chunk, timestep);
    return this;
  }

  merge(other: MseObserver): this {
    if (!(other instanceof MseObserver)) throw new TypeError(`Expected an MseObserver for other but received ${describe(other)}`);
    this.#store.merge(other.#store, 'other');
    return this;
  }

  /** Chunk indices observed, ascending. */
  chunks(): number[] {
    return this.#store.chunks();
  }

  get range(): [number, number] | null {
    const g = this.#store.grid();
    return g ? [g.lo, g.hi] : null;
  }

  stats(chunk?: number): ValueStats {
    if (chunk === undefined) return this.#store.stats();
    const e = this.#store.entries.get(expectInteger(chunk, 'chunk', { min: 0 }));
    return e ? { ...e.stats } : { count: 0, nanCount: 0, min: Infinity, max: -Infinity };
  }

  /** A copy of one chunk's histogram, or of all chunks summed. */
  histogram(chunk?: number): Histogram {
    if (chunk === undefined) return this.#store.histogram(this.#store.sum());
    const k = expectInteger(chunk, 'chunk', { min: 0 });
    return this.#store.histogram(this.#store.sum((c) => (c === k ? 1 : 0)));
  }

  calculate(opts?: { chunkWeights?: ChunkWeights; dtype?: QuantDType; scheme?: Scheme; percentiles?: ArrayLike<number> }): TensorQParams & { candidates: MseCandidate[]; chosen: number } {
    const o = options(opts);
    const dtype = expectDType(o.dtype, 'dtype', this.dtype);
    const scheme = expectScheme(o.scheme, 'scheme', this.scheme);
    const pcts = readPercentiles(o.percentiles, 'percentiles', this.percentiles);
    const s = this.#store.stats();
    if (s.count === 0) throw nothingObserved('MseObserver');
    const weightOf = this.#weights(o.chunkWeights);

    const all = this.#store.sum();
    const ranges: Array<[number, number]> = Array.from(pcts, (p) => percentileRange(this.#store, all, s, p));
    ranges.push([s.min, s.max]);
    const weighted = this.#store.histogram(this.#store.sum(weightOf));
    if (!(weighted.total() > 0)) throw new RangeError('Expected chunkWeights to give a positive weight to at least one observed chunk');
    const r = mseClipSearchSync(weighted, { candidates: ranges, dtype, scheme });
    const candidates = ranges.map(([lo, hi], i) => ({ percentile: i < pcts.length ? pcts[i] : 1, lo: Math.fround(lo), hi: Math.fround(hi), mse: r.errors[i] }));
    return { ...tensorQParams(ranges[r.best][0], ranges[r.best][1], dtype, scheme), candidates, chosen: r.best };
  }

  toJSON(): MseObserverJSON {
    return { type: 'MseObserver', version: 1, dtype: this.dtype, scheme: this.scheme, percentiles: [...this.percentiles], ...this.#store.toJSON() };
  }

  static fromJSON(json: unknown): MseObserver {
    const o = expectTagged(json, 'json', 'MseObserver', 1);
    const obs = new MseObserver({
      dtype: o.dtype as QuantDType,
      scheme: o.scheme as Scheme,
      percentiles: o.percentiles as number[],
      bins: o.bins as number,
      range: (o.range ?? undefined) as [number, number],
    });
    obs.#store = HistogramStore.fromJSON(o);
    return obs;
  }

  #weights(value: unknown): (chunk: number) => number {
    if (value === undefined || value === 'uniform') return () => 1;
    if (typeof value === 'string') throw new RangeError(`Expected 'uniform' or an array of weights for chunkWeights but received ${describe(value)}`);
    const w = expectWeights(value, 'chunkWeights');
    const chunks = this.#store.chunks();
    const last = chunks[chunks.length - 1];
    if (last !== undefined && last >= w.length) {
      throw new RangeError(`Expected a weight for every observed chunk in chunkWeights (chunk ${last} was observed) but received ${w.length} weights`);
    }
    return (k) => w[k];
  }
}

function readPercentiles(value: unknown, name: string, fallback: readonly number[]): Float64Array {
  const p = expectWeights(value ?? fallback, name);
  p.forEach((v, i) => {
    if (v < 0.5 || v > 1) throw new RangeError(`Expected ${name} in [0.5, 1] but ${name}[${i}] is ${v}`);
  });
  return p;
}
