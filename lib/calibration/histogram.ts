// Fixed-range weighted histograms with float64 counts: they merge by adding, and percentiles are read
// from them with linear interpolation inside a bin.
import type { Tensor } from '../tensor/tensor.js';
import { describe, expectFiniteNumber, expectInteger } from '../util/validate.js';
import { encodeFloat64, decodeFloat64, decodeNumber, encodeNumber, expectTagged, type JsonNumber } from './codec.js';
import { expectFloatTensor, expectProbability, expectWeight, expectWeights, options, rowsCols } from './checks.js';
import { calib, NO_WEIGHTS } from './native.js';

/** Largest bin count accepted (16 Mi bins, 128 MiB of counts). */
export const MAX_BINS = 1 << 24;

/** Range and resolution of a histogram. */
export interface HistogramOptions {
  lo: number;
  hi: number;
  bins: number;
}

/**
 * Weights of an add: every element counts `weight` (default 1) times the weight of its row, where
 * the tensor is seen as [rows, lastDim] and `rowWeights` has one entry per row (e.g. per token).
 */
export interface HistogramAddOptions {
  weight?: number;
  rowWeights?: ArrayLike<number>;
}

export interface HistogramJSON {
  type: 'Histogram';
  version: 1;
  lo: number;
  hi: number;
  bins: number;
  /** base64 of the little-endian float64 counts */
  counts: string;
  nanWeight: JsonNumber;
}

/**
 * The q-percentile (q in [0, 1]) of histogram counts over [lo, lo + bins * width].
 *
 * Each bin's mass is spread uniformly over its interval [lo + i w, lo + (i + 1) w], so that half of
 * it lies below the bin centre lo + (i + 0.5) w. With S_i the cumulative count up to and including
 * bin i and N = S_{bins-1}: t = q N; i is the first bin with S_i >= t (for q = 0, the first
 * non-empty bin) and the result is lo + w (i + (t - S_{i-1}) / n_i). q = 0 gives the lower edge of
 * the first non-empty bin, q = 1 the upper edge of the last one.
 */
export function percentileOfCounts(counts: Float64Array, lo: number, width: number, q: number): number {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i];
  if (!(total > 0)) throw new RangeError('Cannot read a percentile from an empty histogram (total weight is 0)');
  const t = q * total;
  let before = 0;
  for (let i = 0; i < counts.length; i++) {
    const n = counts[i];
    if (n > 0 && before + n >= t) return lo + width * (i + (t - before) / n);
    before += n;
  }
  // Only reachable through rounding of t = total: the last non-empty bin's upper edge.
  for (let i = counts.length - 1; i >= 0; i--) if (counts[i] > 0) return lo + width * (i + 1);
  return lo;
}

/**
 * The bin of a value on a histogram starting at lo with `bins` bins of width 1 / invWidth, the rule
 * of the native kernel: s = x - lo in float64 with its rounding error e (s + e == x - lo exactly,
 * TwoSum), t = s * invWidth, b = floor(clamp(t, 0, bins - 1)), minus 1 when t is an integer > 0
 * and e < 0 (the subtraction rounded up onto a bin edge). -1 for NaN.
 */
export function binOf(x: number, lo: number, invWidth: number, bins: number): number {
  if (Number.isNaN(x)) return -1;
  const c = -lo;
  const s = x + c;
  const bb = s - x;
  const err = x - (s - bb) + (c - bb);
  const t = s * invWidth;
  let f = Math.floor(Math.min(Math.max(t, 0), bins - 1));
  if (t === f && err < 0 && t > 0) f -= 1;
  return f;
}

/**
 * A histogram of float32 values on a fixed range [lo, hi] with `bins` equal bins and float64 counts.
 *
 * Bin of a value x: `floor((x - lo) * (bins / (hi - lo)))` evaluated in float64 (exactly: see
 * binOf, which also undoes a rounding of x - lo onto a bin edge, so that with a power-of-two bin
 * width every value lands in the bin whose interval contains it); values below lo (and -Inf) count
 * in bin 0, values at or above hi (and +Inf) in the last bin. NaN is never binned: its weight goes
 * to `nanWeight`. An add without row weights adds `weight * n_b` to bin b, n_b being the exact
 * integer count of that add, so unweighted histograms hold exact integers and merge exactly.
 *
 * @example
 * const h = new Histogram({ lo: -4, hi: 4, bins: 32768 });
 * h.addSync(activations, { weight: chunkWeights[chunk] });
 * h.merge(otherProcessHistogram);
 * const hi = h.percentile(0.9999);
 */
export class Histogram {
  readonly lo: number;
  readonly hi: number;
  readonly bins: number;
  readonly counts: Float64Array;
  /** Total weight of the NaN values seen (they are not in any bin). */
  nanWeight = 0;
  #tail: Promise<unknown> = Promise.resolve();
  #pending = 0;

  constructor(options: HistogramOptions) {
    const o = expectOptions(options);
    this.lo = expectFiniteNumber(o.lo, 'lo');
    this.hi = expectFiniteNumber(o.hi, 'hi');
    if (!(this.hi > this.lo)) throw new RangeError(`Expected hi > lo but received lo ${this.lo} and hi ${this.hi}`);
    if (!Number.isFinite(this.hi - this.lo)) throw new RangeError(`Expected hi - lo to be finite but received lo ${this.lo} and hi ${this.hi}`);
    this.bins = expectInteger(o.bins, 'bins', { min: 1, max: MAX_BINS });
    this.counts = new Float64Array(this.bins);
  }

  /** Bin width (hi - lo) / bins. */
  get width(): number {
    return (this.hi - this.lo) / this.bins;
  }

  /** Centre of bin i: lo + (i + 0.5) * width. */
  centre(i: number): number {
    return this.lo + (i + 0.5) * this.width;
  }

  /** All bin centres rounded to float32 (the values the MSE search quantizes). */
  centres(): Float32Array {
    const out = new Float32Array(this.bins);
    const w = this.width;
    for (let i = 0; i < this.bins; i++) out[i] = this.lo + (i + 0.5) * w;
    return out;
  }

  /** The bin a value falls in (after rounding it to float32), or -1 for NaN: the kernel's rule. */
  binOf(x: number): number {
    return binOf(Math.fround(x), this.lo, this.bins / (this.hi - this.lo), this.bins);
  }

  /** Sum of the counts. */
  total(): number {
    let s = 0;
    for (let i = 0; i < this.bins; i++) s += this.counts[i];
    return s;
  }

  /** Adds the values of x (float32). Blocks the event loop; see add() for large tensors. */
  addSync(x: Tensor<'float32'>, options?: HistogramAddOptions): this {
    this.#idle('addSync');
    const a = prepareAdd(x, options);
    calib().calibHistogramAdd(a.data, a.rows, a.cols, a.rowWeights, a.weight, this.lo, this.hi, this.bins, this.counts, a.nan, false);
    this.nanWeight += a.nan[0];
    return this;
  }

  /**
   * Adds the values of x off the event loop. Adds to the same histogram run one after another; do
   * not read the counts before the returned Promise resolves.
   */
  add(x: Tensor<'float32'>, options?: HistogramAddOptions): Promise<this> {
    let a: AddArgs;
    try {
      a = prepareAdd(x, options);
    } catch (e) {
      return Promise.reject(e);
    }
    this.#pending++;
    const run = this.#tail
      .then(() => calib().calibHistogramAdd(a.data, a.rows, a.cols, a.rowWeights, a.weight, this.lo, this.hi, this.bins, this.counts, a.nan, true))
      .then(() => {
        this.nanWeight += a.nan[0];
        return this;
      })
      .finally(() => this.#pending--);
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /** Adds the counts of a histogram with the same lo, hi and bins. */
  merge(other: Histogram): this {
    this.#idle('merge');
    if (!(other instanceof Histogram)) throw new TypeError(`Expected a Histogram for other but received ${describe(other)}`);
    if (other.lo !== this.lo || other.hi !== this.hi || other.bins !== this.bins) {
      throw new RangeError(
        `Expected other to have lo ${this.lo}, hi ${this.hi} and ${this.bins} bins but received lo ${other.lo}, hi ${other.hi} and ${other.bins} bins`,
      );
    }
    other.#idle('merge');
    for (let i = 0; i < this.bins; i++) this.counts[i] += other.counts[i];
    this.nanWeight += other.nanWeight;
    return this;
  }

  /** The p-percentile (p in [0, 1]) with linear interpolation inside the bin (see percentileOfCounts). */
  percentile(p: number): number {
    this.#idle('percentile');
    return percentileOfCounts(this.counts, this.lo, this.width, expectProbability(p, 'p'));
  }

  clone(): Histogram {
    this.#idle('clone');
    const h = new Histogram({ lo: this.lo, hi: this.hi, bins: this.bins });
    h.counts.set(this.counts);
    h.nanWeight = this.nanWeight;
    return h;
  }

  toJSON(): HistogramJSON {
    this.#idle('toJSON');
    return { type: 'Histogram', version: 1, lo: this.lo, hi: this.hi, bins: this.bins, counts: encodeFloat64(this.counts), nanWeight: encodeNumber(this.nanWeight) };
  }

  /** Rebuilds a histogram from toJSON() output (or its JSON.parse). */
  static fromJSON(json: unknown): Histogram {
    const o = expectTagged(json, 'json', 'Histogram', 1);
    const h = new Histogram({ lo: o.lo as number, hi: o.hi as number, bins: o.bins as number });
    h.counts.set(decodeFloat64(o.counts, 'json.counts', h.bins));
    h.nanWeight = decodeNumber(o.nanWeight, 'json.nanWeight');
    return h;
  }

  #idle(what: string): void {
    if (this.#pending > 0) throw new Error(`Histogram.${what}: an add() is still running; await it first`);
  }
}

interface AddArgs {
  data: Float32Array;
  rows: number;
  cols: number;
  rowWeights: Float64Array;
  weight: number;
  nan: Float64Array;
}

function prepareAdd(x: unknown, opts: unknown): AddArgs {
  const t = expectFloatTensor(x, 'x');
  const o = options(opts);
  const weight = o.weight === undefined ? 1 : expectWeight(o.weight, 'weight');
  const { rows, cols } = rowsCols(t);
  const rowWeights = o.rowWeights === undefined ? NO_WEIGHTS : expectWeights(o.rowWeights, 'rowWeights', rows);
  return { data: t.data, rows, cols, rowWeights, weight, nan: new Float64Array(1) };
}

function expectOptions(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(`Expected an options object { lo, hi, bins } for options but received ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}
