// Reading entries of a zip archive (the container of PyTorch checkpoints) without loading the
// archive: yauzl parses the central directory (zip64 included) and each local header; the bytes of
// a stored entry are then read straight from the file at the offsets asked for, so a slice of a
// multi-gigabyte entry costs only its own bytes.
import { open, type FileHandle } from 'node:fs/promises';
import yauzl from 'yauzl';
import { describe } from '../util/validate.js';

/** A missing, corrupt or unsupported zip archive. */
export class ZipError extends Error {
  override name = 'ZipError';
  /** What is wrong, without the file's name. */
  readonly reason: string;
  constructor(file: string, reason: string) {
    super(`${file}: ${reason}`);
    this.reason = reason;
  }
}

export interface ZipEntryInfo {
  name: string;
  /** Uncompressed size in bytes. */
  size: number;
  /** Stored without compression (as torch.save writes every entry). */
  stored: boolean;
}

/** An open archive; read entries with `read`, then `close` it. */
export interface ZipArchive {
  readonly file: string;
  readonly entries: ReadonlyMap<string, ZipEntryInfo>;
  /** Bytes [start, end) of an entry (default: all of it), into `out` when given. */
  read(name: string, range?: { start?: number; end?: number; out?: Uint8Array }): Promise<Uint8Array>;
  close(): Promise<void>;
}

/**
 * Opens a zip archive and reads its central directory (zip64 archives, over 4 GiB, included).
 *
 * @example
 * const zip = await openZip('checkpoint.pt');
 * try {
 *   const pickle = await zip.read('archive/data.pkl');
 * } finally {
 *   await zip.close();
 * }
 */
export async function openZip(file: string): Promise<ZipArchive> {
  if (typeof file !== 'string' || file === '') throw new TypeError(`Expected a path for file but received ${describe(file)}`);
  // yauzl owns its descriptor (its close() closes it); entry bytes are read through our own.
  const handle = await open(file, 'r');
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false, decodeStrings: true, validateEntrySizes: true });
  } catch (e) {
    await handle.close();
    throw new ZipError(file, `not a zip archive (${(e as Error).message})`);
  }
  const entries = new Map<string, ZipEntryInfo>();
  const raw = new Map<string, yauzl.Entry>();
  try {
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName.endsWith('/')) continue;
      if (raw.has(entry.fileName)) throw new ZipError(file, `holds ${entry.fileName} twice`);
      raw.set(entry.fileName, entry);
      entries.set(entry.fileName, { name: entry.fileName, size: entry.uncompressedSize, stored: entry.compressionMethod === 0 && !entry.isEncrypted() });
    }
  } catch (e) {
    zip.close();
    await handle.close();
    throw e instanceof ZipError ? e : new ZipError(file, `corrupt zip archive (${(e as Error).message})`);
  }
  const dataStart = new Map<string, number>();
  return {
    file,
    entries,
    async read(name, range = {}) {
      const entry = raw.get(name);
      if (!entry) throw new ZipError(file, `has no entry ${name}`);
      const start = range.start ?? 0, end = range.end ?? entry.uncompressedSize;
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end > entry.uncompressedSize) {
        throw new RangeError(`Expected a byte range within the ${entry.uncompressedSize} bytes of ${name} but received [${start}, ${end})`);
      }
      const out = range.out ?? new Uint8Array(end - start);
      if (out.byteLength !== end - start) throw new RangeError(`Expected ${end - start} bytes of room in range.out but received ${out.byteLength}`);
      try {
        if (entries.get(name)!.stored) {
          let at = dataStart.get(name);
          if (at === undefined) {
            at = (await zip.readLocalFileHeaderPromise(entry, { minimal: true })).fileDataStart;
            dataStart.set(name, at);
          }
          await readFully(handle, out, at + start, file);
        } else {
          // Compressed (not what torch.save writes): inflate the whole entry, keep the range.
          const chunks: Buffer[] = [];
          for await (const chunk of await zip.openReadStreamPromise(entry)) chunks.push(chunk as Buffer);
          out.set(Buffer.concat(chunks).subarray(start, end));
        }
      } catch (e) {
        throw e instanceof ZipError ? e : new ZipError(file, `cannot read ${name} (${(e as Error).message})`);
      }
      return out;
    },
    async close() {
      zip.close();
      await handle.close();
    },
  };
}

async function readFully(handle: FileHandle, out: Uint8Array, position: number, file: string): Promise<void> {
  for (let done = 0; done < out.byteLength; ) {
    const { bytesRead } = await handle.read(out, done, out.byteLength - done, position + done);
    if (bytesRead === 0) throw new ZipError(file, `ends at byte ${position + done}, inside an entry: truncated?`);
    done += bytesRead;
  }
}
