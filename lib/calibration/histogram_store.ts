// Histograms of observed values kept per chunk on one shared grid: a fixed range, or the growing
// power-of-two range of grid.ts. Counts are exact integers (unweighted adds), so merging stores is
// exact; weights are applied only when a calculate() combines chunks.
import { describe, expectFiniteNumber, expectInteger } from '../util/validate.js';
import { decodeFloat64, encodeFloat64 } from './codec.js';
import { Histogram, MAX_BINS } from './histogram.js';
import { calib, NO_WEIGHTS } from './native.js';
import { coarsen, exponentFor, gridRange, isPowerOfTwo } from './grid.js';
import {
  batchStats, countTimestep, emptyStats, mergeStats, mergeTimesteps, statsFromJSON, statsToJSON, timestepsFromJSON, type ValueStats,
} from './observer.js';
import type { Tensor } from '../tensor/tensor.js';

interface Entry {
  counts: Float64Array;
  stats: ValueStats;
}

export interface StoreJSON {
  bins: number;
  range: [number, number] | null;
  exponent: number | null;
  chunks: Array<{ chunk: number; counts: string } & ReturnType<typeof statsToJSON>>;
  timesteps: Array<[number, number]>;
}

export function readGrid(raw: Record<string, unknown>, defaultBins: number): { bins: number; range: [number, number] | null } {
  const bins = raw.bins === undefined ? defaultBins : expectInteger(raw.bins, 'bins', { min: 1, max: MAX_BINS });
  if (raw.range === undefined || raw.range === null) {
    if (!isPowerOfTwo(bins) || bins < 4) {
      throw new RangeError(`Expected bins to be a power of two >= 4 for a growing range (or give a fixed range) but received ${bins}`);
    }
    return { bins, range: null };
  }
  const r = raw.range;
  if (!Array.isArray(r) || r.length !== 2) throw new TypeError(`Expected a [lo, hi] pair for range but received ${describe(r)}`);
  const lo = expectFiniteNumber(r[0], 'range[0]');
  const hi = expectFiniteNumber(r[1], 'range[1]');
  if (!(hi > lo)) throw new RangeError(`Expected range[1] > range[0] but received [${lo}, ${hi}]`);
  return { bins, range: [lo, hi] };
}

export class HistogramStore {
  readonly bins: number;
  readonly range: [number, number] | null;
  exponent: number | null = null;
  readonly entries = new Map<number, Entry>();
  readonly timesteps = new Map<number, number>();

  constructor(bins: number, range: [number, number] | null) {
    this.bins = bins;
    this.range = range;
  }

  /** Current range: the fixed one, or [-2^e, 2^e); null before the first value of a growing store. */
  grid(): { lo: number; hi: number } | null {
    if (this.range) return { lo: this.range[0], hi: this.range[1] };
    return this.exponent === null ? null : gridRange(this.exponent);
  }

  observe(x: Tensor<'float32'>, key: number, timestep: number | undefined): void {
    const { t, stats } = batchStats(x);
    const entry = this.#entry(key);
    countTimestep(this.timesteps, timestep);
    if (stats.count > 0 && !this.range) this.#growTo(exponentFor(stats.min, stats.max));
    if (stats.count > 0) {
      const { lo, hi } = this.grid()!;
      calib().calibHistogramAdd(t.data, 1, t.size, NO_WEIGHTS, 1, lo, hi, this.bins, entry.counts, new Float64Array(1), false);
    }
    mergeStats(entry.stats, stats);
  }

  /** Same bins and fixed range required; growing ranges are aligned to the wider one. */
  merge(other: HistogramStore, name: string): void {
    const sameRange = (this.range === null && other.range === null) || (this.range !== null && other.range !== null && this.range[0] === other.range[0] && this.range[1] === other.range[1]);
    if (other.bins !== this.bins || !sameRange) {
      const fmt = (s: HistogramStore) => `${s.bins} bins on ${s.range ? `[${s.range[0]}, ${s.range[1]}]` : 'a growing range'}`;
      throw new RangeError(`Expected ${name} to have ${fmt(this)} but it has ${fmt(other)}`);
    }
    if (other.exponent !== null) this.#growTo(other.exponent);
    const shift = other.exponent === null || this.exponent === null ? 0 : this.exponent - other.exponent;
    for (const [k, e] of other.entries) {
      const mine = this.#entry(k);
      const counts = shift > 0 ? coarsen(e.counts, shift) : e.counts;
      for (let i = 0; i < this.bins; i++) mine.counts[i] += counts[i];
      mergeStats(mine.stats, e.stats);
    }
    mergeTimesteps(this.timesteps, other.timesteps);
  }

  /** Sum over chunks of weightOf(chunk) * counts (all weights 1 by default). */
  sum(weightOf: (chunk: number) => number = () => 1): Float64Array {
    const out = new Float64Array(this.bins);
    for (const [k, e] of this.entries) {
      const w = weightOf(k);
      if (w === 0) continue;
      for (let i = 0; i < this.bins; i++) out[i] += w * e.counts[i];
    }
    return out;
  }

  stats(): ValueStats {
    const s = emptyStats();
    for (const e of this.entries.values()) mergeStats(s, e.stats);
    return s;
  }

  chunks(): number[] {
    return [...this.entries.keys()].sort((a, b) => a - b);
  }

  /** A Histogram holding `counts` on the current grid. */
  histogram(counts: Float64Array): Histogram {
    const g = this.grid() ?? { lo: -1, hi: 1 };
    const h = new Histogram({ lo: g.lo, hi: g.hi, bins: this.bins });
    h.counts.set(counts);
    return h;
  }

  toJSON(): StoreJSON {
    return {
      bins: this.bins,
      range: this.range,
      exponent: this.exponent,
      chunks: this.chunks().map((chunk) => {
        const e = this.entries.get(chunk)!;
        return { chunk, counts: encodeFloat64(e.counts), ...statsToJSON(e.stats) };
      }),
      timesteps: [...this.timesteps].sort((a, b) => a[0] - b[0]),
    };
  }

  static fromJSON(o: Record<string, unknown>): HistogramStore {
    const { bins, range } = readGrid(o, 0);
    const s = new HistogramStore(bins, range);
    if (o.exponent !== null) s.exponent = expectInteger(o.exponent, 'json.exponent', { min: -1074, max: 1024 });
    if (!Array.isArray(o.chunks)) throw new TypeError(`Expected an array for json.chunks but received ${describe(o.chunks)}`);
    o.chunks.forEach((c: Record<string, unknown>, i: number) => {
      const e = s.#entry(expectInteger(c?.chunk, `json.chunks[${i}].chunk`, { min: 0 }));
      e.counts.set(decodeFloat64(c.counts, `json.chunks[${i}].counts`, bins));
      e.stats = statsFromJSON(c, `json.chunks[${i}]`);
    });
    mergeTimesteps(s.timesteps, timestepsFromJSON(o.timesteps, 'json.timesteps'));
    return s;
  }

  #entry(key: number): Entry {
    let e = this.entries.get(key);
    if (!e) {
      e = { counts: new Float64Array(this.bins), stats: emptyStats() };
      this.entries.set(key, e);
    }
    return e;
  }

  #growTo(e: number): void {
    if (this.exponent === null) {
      this.exponent = e;
      return;
    }
    if (e <= this.exponent) return;
    const d = e - this.exponent;
    for (const entry of this.entries.values()) entry.counts = coarsen(entry.counts, d);
    this.exponent = e;
  }
}
