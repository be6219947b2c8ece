// JSON encodings that keep numbers exact: float64 arrays as base64 of their little-endian bytes, and
// the non-finite values JSON cannot hold (the +-Infinity identities of empty min/max) as strings.
import { describe } from '../util/validate.js';

export function encodeFloat64(values: Float64Array): string {
  const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  if (isBigEndian()) {
    const copy = Buffer.from(bytes);
    copy.swap64();
    return copy.toString('base64');
  }
  return bytes.toString('base64');
}

export function decodeFloat64(text: unknown, name: string, length?: number): Float64Array {
  if (typeof text !== 'string') throw new TypeError(`Expected a base64 string for ${name} but received ${describe(text)}`);
  const bytes = Buffer.from(text, 'base64');
  if (bytes.length % 8 !== 0 || (length !== undefined && bytes.length !== length * 8)) {
    throw new RangeError(`Expected ${length ?? 'a whole number of'} float64 values in ${name} but received ${bytes.length} bytes`);
  }
  const copy = Buffer.alloc(bytes.length);
  bytes.copy(copy);
  if (isBigEndian()) copy.swap64();
  return new Float64Array(copy.buffer, copy.byteOffset, copy.length / 8).slice();
}

export type JsonNumber = number | 'Infinity' | '-Infinity' | 'NaN';

export function encodeNumber(v: number): JsonNumber {
  if (Number.isFinite(v)) return v;
  return Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
}

export function decodeNumber(v: unknown, name: string): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (v === 'Infinity') return Infinity;
  if (v === '-Infinity') return -Infinity;
  if (v === 'NaN') return NaN;
  throw new TypeError(`Expected a number for ${name} but received ${describe(v)}`);
}

function isBigEndian(): boolean {
  return new Uint8Array(new Uint16Array([1]).buffer)[0] === 0;
}

/** Checks the `type` and `version` tags of a serialized object. */
export function expectTagged(json: unknown, name: string, type: string, version: number): Record<string, unknown> {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new TypeError(`Expected a serialized ${type} object for ${name} but received ${describe(json)}`);
  }
  const o = json as Record<string, unknown>;
  if (o.type !== type) throw new TypeError(`Expected ${name}.type to be '${type}' but received ${describe(o.type)}`);
  if (o.version !== version) throw new RangeError(`Expected ${name}.version ${version} but received ${describe(o.version)}`);
  return o;
}
