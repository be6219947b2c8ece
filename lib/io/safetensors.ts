// The safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes of JSON
// header, then the tensor bytes. The header maps each tensor name to
// { dtype, shape, data_offsets: [begin, end] } (offsets into the byte buffer) and may hold a
// "__metadata__" map of strings. Owned here rather than taken from a package: it is small, and we
// want every bound checked and a clear error for every corrupt file.
import { open, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Tensor } from '../tensor/tensor.js';
import { allocateStorage, type DType } from '../tensor/dtype.js';
import { describe } from '../util/validate.js';

/** dtypes of the format that map to qarvd dtypes (packed 4-bit data is stored as U8 bytes). */
const FORMAT_DTYPE: Readonly<Record<string, DType>> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
  I32: 'int32',
  I8: 'int8',
  U8: 'uint8',
};
const DTYPE_FORMAT: Partial<Record<DType, string>> = Object.fromEntries(Object.entries(FORMAT_DTYPE).map(([k, v]) => [v, k]));
const BYTES: Readonly<Record<string, number>> = { F32: 4, F16: 2, BF16: 2, I32: 4, I8: 1, U8: 1 };
/** Headers larger than this are refused (the reference implementation uses the same bound). */
const MAX_HEADER_BYTES = 100_000_000;

/** A corrupt, truncated or unsupported safetensors file. */
export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

export interface SafetensorsContent {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
}

/**
 * Serialises tensors (float32, float16, bfloat16, int32, int8, uint8) and string metadata.
 * Tensors are laid out in name order; the header is padded with spaces to a multiple of 8 bytes so
 * that every tensor starts 8-byte aligned.
 *
 * @example
 * const bytes = encodeSafetensors({ w: Tensor.fromArray([1, 2, 3]) }, { format: 'pt' });
 */
export function encodeSafetensors(tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): Uint8Array {
  if (typeof tensors !== 'object' || tensors === null) throw new TypeError(`Expected an object of tensors for tensors but received ${describe(tensors)}`);
  const header: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new TypeError(`Expected a string for metadata.${k} but received ${describe(v)}`);
  }
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  const names = Object.keys(tensors).sort();
  let offset = 0;
  const parts: Uint8Array[] = [];
  for (const name of names) {
    if (name === '__metadata__') throw new RangeError('The tensor name __metadata__ is reserved');
    const t = tensors[name];
    if (!(t instanceof Tensor)) throw new TypeError(`Expected a Tensor for tensors.${name} but received ${describe(t)}`);
    const dtype = DTYPE_FORMAT[t.dtype];
    if (!dtype) throw new TypeError(`Cannot store tensors.${name} of dtype ${t.dtype} in safetensors; pack it as uint8 bytes first`);
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes.byteLength] };
    parts.push(bytes);
    offset += bytes.byteLength;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/**
 * Parses a safetensors buffer, checking every bound: header length, JSON, dtypes, shapes against
 * byte counts, offsets inside the buffer, contiguous and non-overlapping. Tensor data is copied
 * into fresh, aligned typed arrays. `source` names the file in error messages.
 *
 * @example
 * const { tensors, metadata } = decodeSafetensors(bytes);
 */
export function decodeSafetensors(buffer: Uint8Array, source = 'buffer'): SafetensorsContent {
  const fail = (why: string): never => {
    throw new SafetensorsError(`${source}: not a valid safetensors file: ${why}`);
  };
  if (!(buffer instanceof Uint8Array)) throw new TypeError(`Expected a Uint8Array for buffer but received ${describe(buffer)}`);
  if (buffer.byteLength < 8) fail(`${buffer.byteLength} bytes is shorter than the 8-byte header length`);
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) fail(`header length ${headerLength} exceeds ${MAX_HEADER_BYTES} bytes`);
  const n = Number(headerLength);
  if (8 + n > buffer.byteLength) fail(`header length ${n} runs past the end of the file (${buffer.byteLength} bytes): truncated?`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buffer.subarray(8, 8 + n)));
  } catch (e) {
    fail(`header is not UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const entries = header as Record<string, unknown>;
  const dataLength = buffer.byteLength - 8 - n;
  const data = buffer.subarray(8 + n);

  let metadata: Record<string, string> = {};
  if ('__metadata__' in entries) {
    const m = entries.__metadata__;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) fail('__metadata__ is not an object');
    for (const [k, v] of Object.entries(m as object)) if (typeof v !== 'string') fail(`__metadata__.${k} is not a string`);
    metadata = m as Record<string, string>;
  }

  const spans: { name: string; begin: number; end: number }[] = [];
  const tensors: Record<string, Tensor> = {};
  for (const [name, raw] of Object.entries(entries)) {
    if (name === '__metadata__') continue;
    if (typeof raw !== 'object' || raw === null) fail(`entry ${name} is not an object`);
    const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
    if (typeof dtype !== 'string') fail(`${name}.dtype is missing`);
    const ours = FORMAT_DTYPE[dtype as string];
    if (!ours) fail(`${name} has dtype ${String(dtype)}, which qarvd does not read (F32, F16, BF16, I32, I8, U8)`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`${name}.shape is not a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) fail(`${name}.data_offsets is not a pair of non-negative integers`);
    const [begin, end] = offsets as number[];
    if (begin > end) fail(`${name}.data_offsets [${begin}, ${end}] is reversed`);
    if (end > dataLength) fail(`${name} ends at byte ${end} but the data section has ${dataLength} bytes: truncated?`);
    const count = (shape as number[]).reduce((a, b) => a * b, 1);
    if (count * BYTES[dtype as string] !== end - begin) fail(`${name} has shape [${(shape as number[]).join(', ')}] of ${dtype} but ${end - begin} bytes`);
    spans.push({ name, begin, end });
    const storage = allocateStorage(ours, count);
    new Uint8Array(storage.buffer, storage.byteOffset, storage.byteLength).set(data.subarray(begin, end));
    tensors[name] = new Tensor(ours, shape as number[], storage);
  }
  // The byte buffer must be covered exactly, without overlaps or gaps (as the reference parser requires).
  spans.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const s of spans) {
    if (s.begin !== expected) fail(s.begin < expected ? `${s.name} overlaps the tensor before it` : `gap before ${s.name} at byte ${expected}`);
    expected = s.end;
  }
  if (expected !== dataLength) fail(`${dataLength - expected} bytes after the last tensor are not described by the header`);
  return { tensors, metadata };
}

/** Reads and checks a safetensors file. */
export async function readSafetensors(file: string): Promise<SafetensorsContent> {
  if (typeof file !== 'string' || file === '') throw new TypeError(`Expected a path for file but received ${describe(file)}`);
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const buffer = new Uint8Array(size);
    let read = 0;
    while (read < size) {
      const { bytesRead } = await handle.read(buffer, read, size - read, read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    return decodeSafetensors(buffer.subarray(0, read), file);
  } finally {
    await handle.close();
  }
}

/**
 * Writes a safetensors file atomically: the bytes go to a temporary file beside the target, which is
 * flushed to disk and then renamed over it. A failure at any point leaves the target as it was.
 *
 * @example
 * await writeSafetensors('model.safetensors', { 'blocks.0.ffn.0.weight': w }, { qarvd: '1' });
 */
export async function writeSafetensors(file: string, tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): Promise<void> {
  if (typeof file !== 'string' || file === '') throw new TypeError(`Expected a path for file but received ${describe(file)}`);
  const bytes = encodeSafetensors(tensors, metadata);
  await writeFileAtomic(file, bytes);
}

/** Writes `bytes` to `file` through a flushed temporary file and a rename. */
export async function writeFileAtomic(file: string, bytes: Uint8Array | string): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const handle = await open(tmp, 'wx');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
