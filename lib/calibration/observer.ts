// What every observer shares: the tags of an observation (chunk, timestep), the qparams they
// return, and per-batch statistics.
import type { QuantDType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { qparamsFromRange, type Scheme } from '../primitives/qparams.js';
import { describe, expectFiniteNumber, expectInteger } from '../util/validate.js';
import { decodeNumber, encodeNumber, type JsonNumber } from './codec.js';
import { expectDType, expectFloatTensor, expectScheme, options } from './checks.js';
import { minMaxSync } from './reduce.js';

/** Largest chunk index accepted. */
export const MAX_CHUNK = 1 << 20;

/** Tags of an observed batch: the chunk it was generated in (default 0) and the timestep. */
export interface ObserveOptions {
  chunk?: number;
  timestep?: number;
}

/** Quantizer settings; calculate() may override them (the statistics do not depend on them). */
export interface ObserverConfig {
  /** Default 'int8'. */
  dtype?: QuantDType;
  /** Default 'asymmetric'. */
  scheme?: Scheme;
}

/** Per-tensor quantization parameters for the range [lo, hi] (qparamsFromRange). */
export interface TensorQParams {
  scale: number;
  zeroPoint: number;
  lo: number;
  hi: number;
  dtype: QuantDType;
  scheme: Scheme;
}

/** Statistics of the values observed (NaN excluded from count, min and max). */
export interface ValueStats {
  count: number;
  nanCount: number;
  min: number;
  max: number;
}

export function emptyStats(): ValueStats {
  return { count: 0, nanCount: 0, min: Infinity, max: -Infinity };
}

export function mergeStats(into: ValueStats, s: ValueStats): void {
  into.count += s.count;
  into.nanCount += s.nanCount;
  into.min = Math.min(into.min, s.min);
  into.max = Math.max(into.max, s.max);
}

export function statsToJSON(s: ValueStats): { count: number; nanCount: number; min: JsonNumber; max: JsonNumber } {
  return { count: s.count, nanCount: s.nanCount, min: encodeNumber(s.min), max: encodeNumber(s.max) };
}

export function statsFromJSON(j: unknown, name: string): ValueStats {
  if (typeof j !== 'object' || j === null) throw new TypeError(`Expected statistics for ${name} but received ${describe(j)}`);
  const o = j as Record<string, unknown>;
  return {
    count: expectInteger(o.count, `${name}.count`, { min: 0 }),
    nanCount: expectInteger(o.nanCount, `${name}.nanCount`, { min: 0 }),
    min: decodeNumber(o.min, `${name}.min`),
    max: decodeNumber(o.max, `${name}.max`),
  };
}

export function readTags(opts: unknown): { chunk: number; timestep: number | undefined } {
  const o = options(opts);
  const chunk = o.chunk === undefined ? 0 : expectInteger(o.chunk, 'chunk', { min: 0, max: MAX_CHUNK });
  const timestep = o.timestep === undefined ? undefined : expectFiniteNumber(o.timestep, 'timestep', { min: 0 });
  return { chunk, timestep };
}

export function readConfig(config: unknown): { dtype: QuantDType; scheme: Scheme; raw: Record<string, unknown> } {
  const raw = options(config, 'config');
  return { dtype: expectDType(raw.dtype, 'dtype', 'int8'), scheme: expectScheme(raw.scheme, 'scheme', 'asymmetric'), raw };
}

/** Count, NaN count and min/max of a batch; observers reject infinities (they would wreck the range). */
export function batchStats(x: unknown): { t: Tensor<'float32'>; stats: ValueStats } {
  const t = expectFloatTensor(x, 'x');
  const r = minMaxSync(t);
  if (r.min === -Infinity || r.max === Infinity) {
    throw new RangeError(`Expected no infinite values in x but received a tensor with min ${r.min} and max ${r.max}`);
  }
  const count = t.size - r.nanCount;
  return { t, stats: count === 0 ? { ...emptyStats(), nanCount: r.nanCount } : { count, nanCount: r.nanCount, min: r.min, max: r.max } };
}

/** Qparams for [lo, hi] with the overrides of calculate(). */
export function tensorQParams(lo: number, hi: number, dtype: QuantDType, scheme: Scheme): TensorQParams {
  const f = Math.fround;
  return { ...qparamsFromRange(lo, hi, dtype, scheme), lo: f(lo), hi: f(hi), dtype, scheme };
}

export function countTimestep(map: Map<number, number>, timestep: number | undefined): void {
  if (timestep !== undefined) map.set(timestep, (map.get(timestep) ?? 0) + 1);
}

export function mergeTimesteps(into: Map<number, number>, from: Map<number, number>): void {
  for (const [t, n] of from) into.set(t, (into.get(t) ?? 0) + n);
}

export function timestepsFromJSON(j: unknown, name: string): Map<number, number> {
  if (!Array.isArray(j)) throw new TypeError(`Expected an array of [timestep, count] pairs for ${name} but received ${describe(j)}`);
  const m = new Map<number, number>();
  j.forEach((pair, i) => {
    if (!Array.isArray(pair) || pair.length !== 2) throw new TypeError(`Expected a [timestep, count] pair for ${name}[${i}] but received ${describe(pair)}`);
    m.set(expectFiniteNumber(pair[0], `${name}[${i}][0]`, { min: 0 }), expectInteger(pair[1], `${name}[${i}][1]`, { min: 0 }));
  });
  return m;
}

export function nothingObserved(kind: string): RangeError {
  return new RangeError(`${kind}.calculate: no value has been observed yet (only NaN, or nothing)`);
}
