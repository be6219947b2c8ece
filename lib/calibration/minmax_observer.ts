// Min/max observers (per tensor with per-chunk statistics, and per channel), torchao style.
import type { QuantDType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { qparamsFromRange, type Scheme } from '../primitives/qparams.js';
import { describe, expectInteger } from '../util/validate.js';
import { decodeNumber, encodeNumber, expectTagged, type JsonNumber } from './codec.js';
import { expectDType, expectScheme, options } from './checks.js';
import { minMaxSync } from './reduce.js';
import {
  batchStats, countTimestep, emptyStats, mergeStats, mergeTimesteps, nothingObserved, readConfig, readTags, statsFromJSON,
  statsToJSON, tensorQParams, timestepsFromJSON, type ObserveOptions, type ObserverConfig, type TensorQParams, type ValueStats,
} from './observer.js';
import { expectFloatTensor } from './checks.js';

export interface MinMaxObserverJSON {
  type: 'MinMaxObserver';
  version: 1;
  dtype: QuantDType;
  scheme: Scheme;
  chunks: Array<{ chunk: number; count: number; nanCount: number; min: JsonNumber; max: JsonNumber }>;
  timesteps: Array<[number, number]>;
}

/**
 * Tracks the running min and max of everything observed (NaN ignored), per chunk and overall, and
 * turns them into per-tensor qparams (qparamsFromRange of [min, max]).
 *
 * @example
 * const obs = new MinMaxObserver({ dtype: 'int8', scheme: 'asymmetric' });
 * obs.observe(x, { chunk: 0, timestep: 1000 });
 * obs.merge(MinMaxObserver.fromJSON(JSON.parse(textFromOtherProcess)));
 * const { scale, zeroPoint } = obs.calculate();
 * obs.calculate({ chunk: 0 }); // the range seen in chunk 0 only
 */
export class MinMaxObserver {
  readonly dtype: QuantDType;
  readonly scheme: Scheme;
  readonly #chunks = new Map<number, ValueStats>();
  readonly #timesteps = new Map<number, number>();

  constructor(config?: ObserverConfig) {
    const c = readConfig(config);
    this.dtype = c.dtype;
    this.scheme = c.scheme;
  }

  observe(x: Tensor<'float32'>, tags?: ObserveOptions): this {
    const { chunk, timestep } = readTags(tags);
    const { stats } = batchStats(x);
    const s = this.#chunks.get(chunk) ?? emptyStats();
    mergeStats(s, stats);
    this.#chunks.set(chunk, s);
    countTimestep(this.#timesteps, timestep);
    return this;
  }

  merge(other: MinMaxObserver): this {
    if (!(other instanceof MinMaxObserver)) throw new TypeError(`Expected a MinMaxObserver for other but received ${describe(other)}`);
    for (const [k, s] of other.#chunks) {
      const mine = this.#chunks.get(k) ?? emptyStats();
      mergeStats(mine, s);
      this.#chunks.set(k, mine);
    }
    mergeTimesteps(this.#timesteps, other.#timesteps);
    return this;
  }

  /** Chunk indices observed, ascending. */
  chunks(): number[] {
    return [...this.#chunks.keys()].sort((a, b) => a - b);
  }

  /** Statistics of one chunk, or of everything when chunk is omitted. */
  stats(chunk?: number): ValueStats {
    if (chunk !== undefined) return { ...(this.#chunks.get(expectInteger(chunk, 'chunk', { min: 0 })) ?? emptyStats()) };
    const all = emptyStats();
    for (const s of this.#chunks.values()) mergeStats(all, s);
    return all;
  }

  /** Number of observations per timestep. */
  timesteps(): Map<number, number> {
    return new Map(this.#timesteps);
  }

  /** Qparams of [min, max] overall (or of one chunk), with optional dtype/scheme overrides. */
  calculate(opts?: { dtype?: QuantDType; scheme?: Scheme; chunk?: number }): TensorQParams {
    const o = options(opts);
    const dtype = expectDType(o.dtype, 'dtype', this.dtype);
    const scheme = expectScheme(o.scheme, 'scheme', this.scheme);
    const s = this.stats(o.chunk as number | undefined);
    if (s.count === 0) throw nothingObserved('MinMaxObserver');
    return tensorQParams(s.min, s.max, dtype, scheme);
  }

  toJSON(): MinMaxObserverJSON {
    return {
      type: 'MinMaxObserver',
      version: 1,
      dtype: this.dtype,
      scheme: this.scheme,
      chunks: this.chunks().map((chunk) => ({ chunk, ...statsToJSON(this.#chunks.get(chunk)!) })),
      timesteps: [...this.#timesteps].sort((a, b) => a[0] - b[0]),
    };
  }

  static fromJSON(json: unknown): MinMaxObserver {
    const o = expectTagged(json, 'json', 'MinMaxObserver', 1);
    const obs = new MinMaxObserver({ dtype: o.dtype as QuantDType, scheme: o.scheme as Scheme });
    if (!Array.isArray(o.chunks)) throw new TypeError(`Expected an array for json.chunks but received ${describe(o.chunks)}`);
    o.chunks.forEach((c: Record<string, unknown>, i: number) => {
      obs.#chunks.set(expectInteger(c?.chunk, `json.chunks[${i}].chunk`, { min: 0 }), statsFromJSON(c, `json.chunks[${i}]`));
    });
    mergeTimesteps(obs.#timesteps, timestepsFromJSON(o.timesteps, 'json.timesteps'));
    return obs;
  }
}

export interface ChannelQParams {
  axis: number;
  scale: Float32Array;
  zeroPoint: Int32Array;
  lo: Float32Array;
  hi: Float32Array;
  dtype: QuantDType;
  scheme: Scheme;
}

export interface PerChannelMinMaxObserverJSON {
  type: 'PerChannelMinMaxObserver';
  version: 1;
  dtype: QuantDType;
  scheme: Scheme;
  axis: number;
  min: JsonNumber[] | null;
  max: JsonNumber[] | null;
  nanCount: number;
}

/**
 * Running min/max for every index of one axis (e.g. the output channels of a weight, axis 0), and
 * per-channel qparams from them. The number of channels is fixed by the first observation; chunk
 * and timestep tags are accepted and not separated. A channel that has seen no value gets the
 * range [0, 0].
 *
 * @example
 * const obs = new PerChannelMinMaxObserver({ axis: 0, dtype: 'int4', scheme: 'symmetric' });
 * obs.observe(w);
 * const { scale, zeroPoint } = obs.calculate(); // Float32Array / Int32Array, one per row
 */
export class PerChannelMinMaxObserver {
  readonly dtype: QuantDType;
  readonly scheme: Scheme;
  readonly axis: number;
  #min: Float32Array | null = null;
  #max: Float32Array | null = null;
  #nanCount = 0;

  constructor(config: ObserverConfig & { axis: number }) {
    const c = readConfig(config);
    this.dtype = c.dtype;
    this.scheme = c.scheme;
    this.axis = expectInteger(c.raw.axis, 'axis', { min: -64, max: 63 });
  }

  observe(x: Tensor<'float32'>, tags?: ObserveOptions): this {
    readTags(tags);
    const t = expectFloatTensor(x, 'x');
    if (this.axis < -t.rank || this.axis >= t.rank) {
      throw new RangeError(`Expected axis between ${-t.rank} and ${t.rank - 1} for x of shape [${t.shape.join(', ')}] but the observer's axis is ${this.axis}`);
    }
    const r = minMaxSync(t, { axis: this.axis });
    for (let i = 0; i < r.min.length; i++) {
      if (r.min[i] === -Infinity || r.max[i] === Infinity) throw new RangeError('Expected no infinite values in x');
    }
    this.#fold(r.min, r.max, 'x');
    this.#nanCount += r.nanCount;
    return this;
  }

  merge(other: PerChannelMinMaxObserver): this {
    if (!(other instanceof PerChannelMinMaxObserver)) throw new TypeError(`Expected a PerChannelMinMaxObserver for other but received ${describe(other)}`);
    if (other.#min && other.#max) this.#fold(other.#min, other.#max, 'other');
    this.#nanCount += other.#nanCount;
    return this;
  }

  get channels(): number | undefined {
    return this.#min?.length;
  }

  get nanCount(): number {
    return this.#nanCount;
  }

  calculate(opts?: { dtype?: QuantDType; scheme?: Scheme }): ChannelQParams {
    const o = options(opts);
    const dtype = expectDType(o.dtype, 'dtype', this.dtype);
    const scheme = expectScheme(o.scheme, 'scheme', this.scheme);
    if (!this.#min || !this.#max) throw nothingObserved('PerChannelMinMaxObserver');
    const n = this.#min.length;
    const out: ChannelQParams = { axis: this.axis, scale: new Float32Array(n), zeroPoint: new Int32Array(n), lo: new Float32Array(n), hi: new Float32Array(n), dtype, scheme };
    for (let i = 0; i < n; i++) {
      // NaN marks a channel that only saw NaN.
      const lo = Number.isNaN(this.#min[i]) ? 0 : this.#min[i];
      const hi = Number.isNaN(this.#max[i]) ? 0 : this.#max[i];
      const q = qparamsFromRange(lo, hi, dtype, scheme);
      out.scale[i] = q.scale;
      out.zeroPoint[i] = q.zeroPoint;
      out.lo[i] = lo;
      out.hi[i] = hi;
    }
    return out;
  }

  toJSON(): PerChannelMinMaxObserverJSON {
    const enc = (a: Float32Array | null) => (a ? Array.from(a, encodeNumber) : null);
    return { type: 'PerChannelMinMaxObserver', version: 1, dtype: this.dtype, scheme: this.scheme, axis: this.axis, min: enc(this.#min), max: enc(this.#max), nanCount: this.#nanCount };
  }

  static fromJSON(json: unknown): PerChannelMinMaxObserver {
    const o = expectTagged(json, 'json', 'PerChannelMinMaxObserver', 1);
    const obs = new PerChannelMinMaxObserver({ dtype: o.dtype as QuantDType, scheme: o.scheme as Scheme, axis: o.axis as number });
    const dec = (a: unknown, name: string): Float32Array | null => {
      if (a === null) return null;
      if (!Array.isArray(a)) throw new TypeError(`Expected an array or null for ${name} but received ${describe(a)}`);
      return Float32Array.from(a, (v, i) => decodeNumber(v, `${name}[${i}]`));
    };
    const mn = dec(o.min, 'json.min');
    const mx = dec(o.max, 'json.max');
    if ((mn === null) !== (mx === null) || (mn && mx && mn.length !== mx.length)) throw new RangeError('Expected json.min and json.max to have the same length');
    if (mn && mx) obs.#fold(mn, mx, 'json');
    obs.#nanCount = expectInteger(o.nanCount, 'json.nanCount', { min: 0 });
    return obs;
  }

  #fold(mn: Float32Array, mx: Float32Array, name: string): void {
    if (!this.#min || !this.#max) {
      this.#min = mn.slice();
      this.#max = mx.slice();
      return;
    }
    if (mn.length !== this.#min.length) {
      throw new RangeError(`Expected ${name} to have ${this.#min.length} channels on axis ${this.axis} but received ${mn.length}`);
    }
    for (let i = 0; i < mn.length; i++) {
      // NaN (a channel without values so far) loses against any value.
      if (!(mn[i] >= this.#min[i])) this.#min[i] = Number.isNaN(mn[i]) ? this.#min[i] : mn[i];
      if (!(mx[i] <= this.#max[i])) this.#max[i] = Number.isNaN(mx[i]) ? this.#max[i] : mx[i];
    }
  }
}
