// PyTorch checkpoints (torch.save since 1.6): a zip archive whose `<name>/data.pkl` pickles the saved
// object, each tensor storage a stored entry `<name>/data/<key>`. Read without running any Python:
// the pickle goes through the restricted unpickler, which accepts only what torch.save writes for
// tensors (torch._utils._rebuild_tensor_v2 and _rebuild_parameter, collections.OrderedDict, the
// typed *Storage classes as persistent ids), and tensor bytes are read from the archive only when asked.
import { open } from 'node:fs/promises';
import { Tensor } from '../tensor/tensor.js';
import { allocateStorage, type DType } from '../tensor/dtype.js';
import { describe } from '../util/validate.js';
import { GlobalRef, PickleDict, PickleError, PickleTuple, unpickle, type PickleGlobal } from './pickle.js';
import { openZip, ZipError, type ZipArchive } from './zip.js';

/** Element types of torch storages, with their sizes; `dtype` is qarvd's where it has one. */
const STORAGE_TYPES: Readonly<Record<string, { torch: string; bytes: number; dtype?: DType }>> = {
  FloatStorage: { torch: 'float32', bytes: 4, dtype: 'float32' },
  HalfStorage: { torch: 'float16', bytes: 2, dtype: 'float16' },
  BFloat16Storage: { torch: 'bfloat16', bytes: 2, dtype: 'bfloat16' },
  IntStorage: { torch: 'int32', bytes: 4, dtype: 'int32' },
  CharStorage: { torch: 'int8', bytes: 1, dtype: 'int8' },
  ByteStorage: { torch: 'uint8', bytes: 1, dtype: 'uint8' },
  DoubleStorage: { torch: 'float64', bytes: 8 },
  LongStorage: { torch: 'int64', bytes: 8 },
  ShortStorage: { torch: 'int16', bytes: 2 },
  BoolStorage: { torch: 'bool', bytes: 1 },
};

/** One storage of the archive (shared by the tensors that view it). */
export interface TorchStorage {
  readonly key: string;
  /** torch's dtype name, e.g. 'bfloat16', 'int64'. */
  readonly torchDtype: string;
  readonly elementBytes: number;
  readonly numel: number;
}

/** A tensor of the checkpoint, not yet read: a view (offset, shape, strides) of a storage. */
export class TorchTensor {
  constructor(
    readonly storage: TorchStorage,
    readonly storageOffset: number,
    readonly shape: readonly number[],
    readonly stride: readonly number[],
  ) {}

  /** torch's dtype name, e.g. 'bfloat16'. */
  get torchDtype(): string {
    return this.storage.torchDtype;
  }

  /** qarvd's dtype, or undefined for float64, int64, int16 and bool. */
  get dtype(): DType | undefined {
    return Object.values(STORAGE_TYPES).find((s) => s.torch === this.storage.torchDtype)?.dtype;
  }

  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  /** Bytes of the tensor itself (not of its storage). */
  get byteLength(): number {
    return this.size * this.storage.elementBytes;
  }
}

/** An open checkpoint: the unpickled object and the reads of its tensors. */
export interface PytorchCheckpoint {
  readonly file: string;
  /** What was saved: PickleDict for dicts, arrays, PickleTuple, numbers, strings, TorchTensor leaves. */
  readonly root: unknown;
  /** A tensor's bytes, row-major and little-endian, whatever its strides (any dtype). */
  readTensorBytes(t: TorchTensor): Promise<Uint8Array>;
  /** A tensor as a qarvd Tensor (float32, float16, bfloat16, int32, int8, uint8; bf16 stays bf16). */
  readTensor(t: TorchTensor, name?: string): Promise<Tensor>;
  close(): Promise<void>;
}

/** A checkpoint that cannot be read: not a torch.save archive, or refused (see PickleError). */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

/**
 * Opens a PyTorch checkpoint written by torch.save (the zip format of torch >= 1.6) and unpickles its
 * object with the restricted unpickler: no code of the file runs, and a pickle that names any other
 * global (os.system, builtins.eval, ...) is refused with a PickleError naming it. Tensors are read
 * later, one at a time, with readTensor.
 *
 * @example
 * const ckpt = await openPytorchCheckpoint('self_forcing_dmd.pt');
 * try {
 *   const { tensors } = findStateDict(ckpt.root, { key: 'generator_ema' });
 *   const w = await ckpt.readTensor(tensors.get('model.blocks.0.ffn.0.weight')!); // bfloat16
 * } finally {
 *   await ckpt.close();
 * }
 */
export async function openPytorchCheckpoint(file: string): Promise<PytorchCheckpoint> {
  let zip: ZipArchive;
  try {
    zip = await openZip(file);
  } catch (e) {
    if (!(e instanceof ZipError)) throw e;
    const legacy = await startsLikeLegacyPickle(file);
    throw new CheckpointError(legacy
      ? `${file} is in the legacy torch.save format (before torch 1.6), which qarvd does not read: load and save it again with torch >= 1.6 (torch.save(torch.load(f, weights_only=True), g))`
      : `${file} is not a PyTorch checkpoint (torch.save's zip format): ${e.reason}`);
  }
  try {
    const pkl = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
    if (pkl.length !== 1) throw new CheckpointError(`${file} is a zip archive but not a torch.save checkpoint (${pkl.length ? 'several' : 'no'} <name>/data.pkl entries)`);
    const prefix = pkl[0].slice(0, -'data.pkl'.length);
    const byteorder = zip.entries.has(`${prefix}byteorder`) ? new TextDecoder().decode(await zip.read(`${prefix}byteorder`)).trim() : 'little';
    if (byteorder !== 'little') throw new CheckpointError(`${file} was saved on a ${byteorder}-endian machine; only little-endian checkpoints are read`);
    const storages = new Map<string, TorchStorage>();
    const root = unpickle(await zip.read(pkl[0]), {
      source: `${file}: ${pkl[0]}`,
      globals: TORCH_GLOBALS,
      allowedText: 'torch tensors and storages (torch._utils._rebuild_tensor_v2, torch._utils._rebuild_parameter, torch.*Storage) and collections.OrderedDict',
      persistentLoad(pid) {
        // ('storage', storage type, key, location, numel), as torch.save's persistent_id writes it.
        const type = pid instanceof PickleTuple && pid[1] instanceof GlobalRef ? pid[1].impl : undefined;
        if (!(pid instanceof PickleTuple) || pid.length !== 5 || pid[0] !== 'storage' || !(type instanceof StorageType) || typeof pid[2] !== 'string' || !Number.isSafeInteger(pid[4])) {
          throw new PickleError(`${file}: expected a persistent id ('storage', storage type, key, location, numel) but received ${describe(pid)}`);
        }
        const [, , key, , numel] = pid as unknown as [string, unknown, string, string, number];
        const entry = zip.entries.get(`${prefix}data/${key}`);
        if (!entry) throw new CheckpointError(`${file} has no entry ${prefix}data/${key} for storage ${key}`);
        const known = storages.get(key);
        if (known) return known;
        const s: TorchStorage = { key, torchDtype: type.info.torch, elementBytes: type.info.bytes, numel };
        if (entry.size < numel * s.elementBytes) throw new CheckpointError(`${file}: storage ${key} holds ${entry.size} bytes, less than its ${numel} ${s.torchDtype} elements (truncated?)`);
        storages.set(key, s);
        storageMarks.add(s);
        return s;
      },
    });
    const readTensorBytes = async (t: TorchTensor): Promise<Uint8Array> => {
      if (!(t instanceof TorchTensor)) throw new TypeError(`Expected a TorchTensor for t but received ${describe(t)}`);
      const item = t.storage.elementBytes, entry = `${prefix}data/${t.storage.key}`;
      if (t.size === 0) return new Uint8Array(0);
      // The storage elements the view spans: [offset, last] with last = offset + sum (size_i - 1) stride_i.
      const last = t.storageOffset + t.shape.reduce((s, n, i) => s + (n - 1) * t.stride[i], 0);
      if (last >= t.storage.numel) throw new CheckpointError(`${file}: a tensor reads element ${last} of storage ${t.storage.key}, which has ${t.storage.numel}`);
      if (isContiguous(t.shape, t.stride)) return zip.read(entry, { start: t.storageOffset * item, end: (t.storageOffset + t.size) * item });
      const span = await zip.read(entry, { start: t.storageOffset * item, end: (last + 1) * item });
      return gather(span, t.shape, t.stride, item);
    };
    return {
      file,
      root,
      readTensorBytes,
      async readTensor(t, name = 'tensor') {
        if (!(t instanceof TorchTensor)) throw new TypeError(`Expected a TorchTensor for ${name} but received ${describe(t)}`);
        const dtype = t.dtype;
        if (!dtype) throw new TypeError(`${name} is ${t.torchDtype}, which qarvd tensors do not hold (float32, float16, bfloat16, int32, int8, uint8)`);
        const storage = allocateStorage(dtype, t.size);
        const bytes = await readTensorBytes(t);
        new Uint8Array(storage.buffer, storage.byteOffset, storage.byteLength).set(bytes);
        return new Tensor(dtype, [...t.shape], storage);
      },
      close: () => zip.close(),
    };
  } catch (e) {
    await zip.close();
    throw e;
  }
}

/** What a `torch.<X>Storage` global stands for: a storage type in a persistent id, never called. */
class StorageType implements PickleGlobal {
  readonly call = undefined;
  constructor(readonly info: { torch: string; bytes: number; dtype?: DType }) {}
}

function expectInts(v: unknown, what: string): number[] {
  if (!(v instanceof PickleTuple) || !v.every((x) => Number.isSafeInteger(x) && (x as number) >= 0)) throw new PickleError(`expected a tuple of non-negative integers for ${what} but received ${describe(v)}`);
  return [...v] as number[];
}

/** The globals a torch.save checkpoint of tensors needs, and nothing else. */
const TORCH_GLOBALS: Readonly<Record<string, PickleGlobal>> = Object.freeze({
  'collections.OrderedDict': {
    call(args: unknown[]) {
      const d = new PickleDict();
      // OrderedDict(items): (key, value) pairs; torch.save passes none and adds the items with SETITEMS.
      if (Array.isArray(args[0])) {
        for (const pair of args[0]) {
          if (!(pair instanceof PickleTuple) || pair.length !== 2 || typeof pair[0] !== 'string') throw new PickleError(`expected (name, value) pairs but received ${describe(pair)}`);
          d.set(pair[0], pair[1]);
        }
      }
      return d;
    },
    // A state dict carries `_metadata` (module versions) as an attribute: not needed for the weights.
    build: (target: unknown) => target,
  },
  'torch._utils._rebuild_tensor_v2': {
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    call(args: unknown[]) {
      if (args.length < 4) throw new PickleError(`expected at least 4 arguments but received ${args.length}`);
      const [storage, offset] = args;
      if (!isStorage(storage)) throw new PickleError(`expected a storage but received ${describe(storage)}`);
      if (!Number.isSafeInteger(offset) || (offset as number) < 0) throw new PickleError(`expected a storage offset but received ${describe(offset)}`);
      const shape = expectInts(args[2], 'the size'), stride = expectInts(args[3], 'the stride');
      if (shape.length !== stride.length) throw new PickleError(`size (${shape.join(', ')}) and stride (${stride.join(', ')}) differ in length`);
      return new TorchTensor(storage, offset as number, shape, stride);
    },
  },
  // nn.Parameter: (data, requires_grad, backward_hooks); the data is the tensor.
  'torch._utils._rebuild_parameter': {
    call(args: unknown[]) {
      if (!(args[0] instanceof TorchTensor)) throw new PickleError(`expected a tensor but received ${describe(args[0])}`);
      return args[0];
    },
  },
  ...Object.fromEntries(Object.entries(STORAGE_TYPES).map(([name, info]) => [`torch.${name}`, new StorageType(info)])),
});

const storageMarks = new WeakSet<object>();
function isStorage(v: unknown): v is TorchStorage {
  return typeof v === 'object' && v !== null && storageMarks.has(v);
}

/** Whether strides are those of a row-major tensor of this shape (dimensions of size 1 may have any stride). */
function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expected) return false;
    expected *= shape[i];
  }
  return true;
}

/** The elements of a strided view, row-major, from the bytes of the storage span it covers. */
function gather(span: Uint8Array, shape: readonly number[], stride: readonly number[], item: number): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  const out = new Uint8Array(count * item);
  const index = new Array(shape.length).fill(0);
  for (let n = 0; n < count; n++) {
    let at = 0;
    for (let d = 0; d < shape.length; d++) at += index[d] * stride[d];
    out.set(span.subarray(at * item, (at + 1) * item), n * item);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d] < shape[d]) break;
      index[d] = 0;
    }
  }
  return out;
}

/** Whether a file starts like the legacy format (a pickled magic number, protocol 2). */
async function startsLikeLegacyPickle(file: string): Promise<boolean> {
  const handle = await open(file, 'r').catch(() => null);
  if (!handle) return false;
  try {
    const head = new Uint8Array(2);
    await handle.read(head, 0, 2, 0);
    return head[0] === 0x80 && head[1] === 0x02;
  } finally {
    await handle.close();
  }
}

/** Keys under which checkpoints keep their weights, in the order tried when none is given. */
export const STATE_DICT_KEYS: readonly string[] = Object.freeze(['generator_ema', 'generator', 'state_dict', 'model', 'module', 'ema', 'model_ema', 'net']);

/** Prefixes that wrappers add to parameter names, stripped (repeatedly) when every name has one. */
export const WRAPPER_PREFIXES: readonly string[] = Object.freeze(['model.', 'module.', '_orig_mod.', 'generator.', 'diffusion_model.', 'net.']);

export interface StateDict {
  /** The key of the checkpoint's top-level dict it came from (null: the checkpoint is the state dict). */
  key: string | null;
  /** Tensors by parameter name, in the checkpoint's order. */
  tensors: Map<string, TorchTensor>;
  /** Entries that are not tensors (kept out). */
  other: string[];
}

const tensorEntries = (v: unknown) => (v instanceof PickleDict ? [...v].filter(([, x]) => x instanceof TorchTensor).length : 0);

/**
 * The state dict of a checkpoint: the dict under `key`; without one, the checkpoint itself when it
 * is a dict of tensors, else the first of STATE_DICT_KEYS it holds (for Self-Forcing's checkpoints,
 * generator_ema: the EMA weights its README samples with).
 *
 * @example
 * const { key, tensors } = findStateDict(ckpt.root);  // key: 'generator_ema'
 */
export function findStateDict(root: unknown, options: { key?: string; source?: string } = {}): StateDict {
  const source = options.source ?? 'the checkpoint';
  if (!(root instanceof PickleDict)) throw new CheckpointError(`${source} holds ${describe(root)}, not a dict of tensors`);
  const holders = [...root].filter(([, v]) => tensorEntries(v) > 0).map(([k]) => String(k));
  let key: string | null;
  if (options.key !== undefined) {
    if (typeof options.key !== 'string') throw new TypeError(`Expected a string for options.key but received ${describe(options.key)}`);
    if (!root.has(options.key)) throw new CheckpointError(`${source} has no key '${options.key}'; its keys are ${[...root.keys()].map((k) => `'${String(k)}'`).join(', ')}`);
    if (!tensorEntries(root.get(options.key))) throw new CheckpointError(`${source}: '${options.key}' holds no tensors${holders.length ? `; these keys do: ${holders.join(', ')}` : ''}`);
    key = options.key;
  } else if (tensorEntries(root) > 0) {
    key = null;
  } else {
    key = STATE_DICT_KEYS.find((k) => holders.includes(k)) ?? (holders.length === 1 ? holders[0] : null);
    if (key === null) {
      throw new CheckpointError(holders.length
        ? `${source} holds tensors under several keys (${holders.join(', ')}); choose one (--key)`
        : `${source} holds no tensors (keys: ${[...root.keys()].map(String).join(', ')})`);
    }
  }
  const dict = (key === null ? root : root.get(key)) as PickleDict;
  const tensors = new Map<string, TorchTensor>();
  const other: string[] = [];
  for (const [name, v] of dict) {
    if (v instanceof TorchTensor) tensors.set(String(name), v);
    else other.push(String(name));
  }
  return { key, tensors, other };
}

/**
 * The prefix to take off every name: `prefix` itself (every name must start with it), none for
 * false or '', or with 'auto' the wrapper prefixes (WRAPPER_PREFIXES, such as Self-Forcing's
 * 'model.') that every name shares, repeatedly.
 *
 * @example
 * commonPrefix(['model.head.head.weight', 'model.patch_embedding.weight'], 'auto'); // 'model.'
 */
export function commonPrefix(names: readonly string[], prefix: string | false | 'auto' = 'auto'): string {
  if (prefix === false || prefix === '') return '';
  if (typeof prefix !== 'string') throw new TypeError(`Expected a string, 'auto' or false for prefix but received ${describe(prefix)}`);
  if (prefix !== 'auto') {
    const without = names.find((n) => !n.startsWith(prefix));
    if (without !== undefined) throw new RangeError(`Expected every name to start with the prefix '${prefix}' but ${without} does not`);
    return prefix;
  }
  let found = '';
  for (;;) {
    const next = WRAPPER_PREFIXES.find((p) => names.length > 0 && names.every((n) => n.startsWith(found + p) && n.length > (found + p).length));
    if (!next) return found;
    found += next;
  }
}
