// The safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes of JSON
// header, then the tensor bytes. The header maps each tensor name to
// { dtype, shape, data_offsets: [begin, end] } (offsets into the byte buffer) and may hold a
// "__metadata__" map of strings. Owned here rather than taken from a package: it is small, and we
// want every bound checked and a clear error for every corrupt file.
import { open, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Tensor, expectTensor } from '../tensor/tensor.js';
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

/** Name maps (tensors, metadata) are prototype-free objects: a tensor named `__proto__` is just a name. */
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
  if (typeof metadata !== 'object' || metadata === null) throw new TypeError(`Expected an object of strings for metadata but received ${describe(metadata)}`);
  const header: Record<string, unknown> = Object.create(null);
  const meta: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new TypeError(`Expected a string for metadata.${k} but received ${describe(v)}`);
    meta[k] = v;
  }
  if (Object.keys(meta).length) header.__metadata__ = meta;
  const names = Object.keys(tensors).sort();
  let offset = 0;
  const parts: Uint8Array[] = [];
  for (const name of names) {
    if (name === '__metadata__') throw new RangeError('The tensor name __metadata__ is reserved');
    // Made by the Tensor constructor and still attached: its shape and its bytes agree.
    const t = expectTensor(tensors[name], `tensors.${name}`);
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

/** One tensor of a safetensors header: its dtype, shape and byte span in the data section. */
export interface SafetensorsEntry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Checks a safetensors header (the JSON bytes after the 8-byte length) against the size of the data
 * section that follows it: JSON, dtypes, shapes against byte counts, offsets inside the data,
 * contiguous and non-overlapping. Returns the metadata and the tensors' spans in header order.
 * `source` names the file in error messages.
 */
export function parseSafetensorsHeader(json: Uint8Array, dataLength: number, source = 'buffer'): { metadata: Record<string, string>; entries: SafetensorsEntry[] } {
  const fail = (why: string): never => {
    throw new SafetensorsError(`${source}: not a valid safetensors file: ${why}`);
  };
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (e) {
    fail(`header is not UTF-8 JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('header is not a JSON object');
  const items = header as Record<string, unknown>;

  const metadata: Record<string, string> = Object.create(null);
  if (Object.prototype.hasOwnProperty.call(items, '__metadata__')) {
    const m = items.__metadata__;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) fail('__metadata__ is not an object');
    for (const [k, v] of Object.entries(m as object)) {
      if (typeof v !== 'string') fail(`__metadata__.${k} is not a string`);
      metadata[k] = v as string;
    }
  }

  const entries: SafetensorsEntry[] = [];
  for (const [name, raw] of Object.entries(items)) {
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
    entries.push({ name, dtype: ours, shape: shape as number[], begin, end });
  }
  // The byte buffer must be covered exactly, without overlaps or gaps (as the reference parser requires).
  const spans = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  for (const s of spans) {
    if (s.begin !== expected) fail(s.begin < expected ? `${s.name} overlaps the tensor before it` : `gap before ${s.name} at byte ${expected}`);
    expected = s.end;
  }
  if (expected !== dataLength) fail(`${dataLength - expected} bytes after the last tensor are not described by the header`);
  return { metadata, entries };
}

/** The header length of a safetensors file from its first 8 bytes, checked against the file size. */
export function safetensorsHeaderLength(first8: Uint8Array, fileSize: number, source = 'buffer'): number {
  const fail = (why: string): never => {
    throw new SafetensorsError(`${source}: not a valid safetensors file: ${why}`);
  };
  if (fileSize < 8 || first8.byteLength < 8) fail(`${fileSize} bytes is shorter than the 8-byte header length`);
  const headerLength = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) fail(`header length ${headerLength} exceeds ${MAX_HEADER_BYTES} bytes`);
  const n = Number(headerLength);
  if (8 + n > fileSize) fail(`header length ${n} runs past the end of the file (${fileSize} bytes): truncated?`);
  return n;
}

/**
 * Parses a safetensors buffer, checking every bound (see parseSafetensorsHeader). Tensor data is
 * copied into fresh, aligned typed arrays. `source` names the file in error messages.
 *
 * @example
 * const { tensors, metadata } = decodeSafetensors(bytes);
 */
export function decodeSafetensors(buffer: Uint8Array, source = 'buffer'): SafetensorsContent {
  if (!(buffer instanceof Uint8Array)) throw new TypeError(`Expected a Uint8Array for buffer but received ${describe(buffer)}`);
  const n = safetensorsHeaderLength(buffer, buffer.byteLength, source);
  const { metadata, entries } = parseSafetensorsHeader(buffer.subarray(8, 8 + n), buffer.byteLength - 8 - n, source);
  const data = buffer.subarray(8 + n);
  const tensors: Record<string, Tensor> = Object.create(null);
  for (const e of entries) tensors[e.name] = tensorOfBytes(e, data.subarray(e.begin, e.end));
  return { tensors, metadata };
}

/** A tensor of an entry, its bytes copied into fresh, aligned storage. */
function tensorOfBytes(entry: SafetensorsEntry, bytes: Uint8Array): Tensor {
  const storage = allocateStorage(entry.dtype, entry.shape.reduce((a, b) => a * b, 1));
  new Uint8Array(storage.buffer, storage.byteOffset, storage.byteLength).set(bytes);
  return new Tensor(entry.dtype, entry.shape, storage);
}

/**
 * Reads and checks a safetensors file, tensor by tensor (the file is never held whole in memory).
 *
 * @example
 * const { tensors, metadata } = await readSafetensors('model.safetensors');
 */
export async function readSafetensors(file: string): Promise<SafetensorsContent> {
  const f = await openSafetensors(file);
  try {
    const tensors: Record<string, Tensor> = Object.create(null);
    for (const e of f.entries) tensors[e.name] = await f.read(e.name);
    return { tensors, metadata: f.metadata };
  } finally {
    await f.close();
  }
}

/** An open safetensors file whose header has been checked; tensors are read one at a time. */
export interface SafetensorsFile {
  readonly file: string;
  readonly metadata: Record<string, string>;
  /** The tensors in header order. */
  readonly entries: readonly SafetensorsEntry[];
  /** Reads one tensor into fresh storage. */
  read(name: string): Promise<Tensor>;
  close(): Promise<void>;
}

/**
 * Opens a safetensors file and checks its header; each `read(name)` then reads only that tensor's
 * bytes, so a large checkpoint can be converted or loaded without a second copy of the file.
 *
 * @example
 * const f = await openSafetensors('diffusion_pytorch_model.safetensors');
 * try {
 *   for (const e of f.entries) console.log(e.name, e.dtype, e.shape);
 *   const w = await f.read('blocks.0.ffn.0.weight');
 * } finally {
 *   await f.close();
 * }
 */
export async function openSafetensors(file: string): Promise<SafetensorsFile> {
  if (typeof file !== 'string' || file === '') throw new TypeError(`Expected a path for file but received ${describe(file)}`);
  const handle = await open(file, 'r');
  try {
    const { size } = await handle.stat();
    const readAt = async (position: number, length: number, out: Uint8Array = new Uint8Array(length)): Promise<Uint8Array> => {
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(out, done, length - done, position + done);
        if (bytesRead === 0) throw new SafetensorsError(`${file}: not a valid safetensors file: the file ended at byte ${position + done} while reading (truncated while open?)`);
        done += bytesRead;
      }
      return out;
    };
    const n = safetensorsHeaderLength(await readAt(0, Math.min(8, size)), size, file);
    const { metadata, entries } = parseSafetensorsHeader(await readAt(8, n), size - 8 - n, file);
    const byName = new Map(entries.map((e) => [e.name, e]));
    return {
      file,
      metadata,
      entries,
      async read(name: string) {
        const e = byName.get(name);
        if (!e) throw new RangeError(`${file} has no tensor ${describe(name)}`);
        const storage = allocateStorage(e.dtype, e.shape.reduce((a, b) => a * b, 1));
        await readAt(8 + n + e.begin, e.end - e.begin, new Uint8Array(storage.buffer, storage.byteOffset, storage.byteLength));
        return new Tensor(e.dtype, e.shape, storage);
      },
      close: () => handle.close(),
    };
  } catch (e) {
    await handle.close();
    throw e;
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

/** A tensor to write without holding it in memory with the others: its bytes come when asked. */
export interface StreamedTensor {
  name: string;
  dtype: DType;
  shape: number[];
  /** The tensor's bytes (little-endian, row-major, exactly its size). */
  bytes(): Promise<Uint8Array>;
}

/**
 * Writes a safetensors file atomically, one tensor at a time (each one's bytes are asked for when
 * its turn comes), so that a large checkpoint is converted without holding it whole. Tensors are
 * laid out in name order as by encodeSafetensors.
 *
 * @example
 * await writeSafetensorsStream('out.safetensors', [{ name: 'w', dtype: 'bfloat16', shape: [2], bytes: async () => new Uint8Array(4) }]);
 */
export async function writeSafetensorsStream(file: string, tensors: StreamedTensor[], metadata: Record<string, string> = {}): Promise<void> {
  if (typeof file !== 'string' || file === '') throw new TypeError(`Expected a path for file but received ${describe(file)}`);
  if (!Array.isArray(tensors)) throw new TypeError(`Expected an array of tensors for tensors but received ${describe(tensors)}`);
  const header: Record<string, unknown> = Object.create(null);
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new TypeError(`Expected a string for metadata.${k} but received ${describe(v)}`);
  }
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  let offset = 0;
  const sizes: number[] = [];
  for (const t of sorted) {
    if (t.name === '__metadata__') throw new RangeError('The tensor name __metadata__ is reserved');
    if (t.name in header) throw new RangeError(`The tensor name ${t.name} is given twice`);
    const dtype = DTYPE_FORMAT[t.dtype];
    if (!dtype) throw new TypeError(`Cannot store ${t.name} of dtype ${t.dtype} in safetensors`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new RangeError(`Expected a shape of non-negative integers for ${t.name} but received ${describe(t.shape)}`);
    const size = t.shape.reduce((a, b) => a * b, 1) * BYTES[dtype];
    header[t.name] = { dtype, shape: [...t.shape], data_offsets: [offset, offset + size] };
    sizes.push(size);
    offset += size;
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const handle = await open(tmp, 'wx');
    try {
      const writeAll = async (bytes: Uint8Array) => {
        for (let done = 0; done < bytes.byteLength; ) done += (await handle.write(bytes, done, bytes.byteLength - done)).bytesWritten;
      };
      await writeAll(length);
      await writeAll(json);
      for (let i = 0; i < sorted.length; i++) {
        const bytes = await sorted[i].bytes();
        if (!(bytes instanceof Uint8Array) || bytes.byteLength !== sizes[i]) {
          throw new RangeError(`Expected ${sizes[i]} bytes for ${sorted[i].name} but received ${describe(bytes)}`);
        }
        await writeAll(bytes);
      }
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
