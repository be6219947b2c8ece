// Checkpoints from elsewhere to qarvd model files: a PyTorch .pt (Self-Forcing, CausVid) or a
// safetensors file (Wan2.1), its state dict picked and its wrapper prefix stripped, written as
// safetensors under Wan's names with the configuration in the metadata, in the checkpoint's own
// dtypes (bf16 stays bf16). One tensor is held at a time, so a 1.3B checkpoint converts in little memory.
import { open } from 'node:fs/promises';
import path from 'node:path';
import { openSafetensors, writeSafetensorsStream, type StreamedTensor } from '../io/safetensors.js';
import { commonPrefix, findStateDict, openPytorchCheckpoint } from '../io/pytorch.js';
import type { DType } from '../tensor/dtype.js';
import { describe, expectObject } from '../util/validate.js';
import { QUANTIZED_METADATA_KEY } from '../checkpoint/format.js';
import type { DitConfig } from './config.js';
import { expectedShapes } from './dit.js';
import { CONFIG_METADATA_KEY, modelFileConfig } from './io.js';
import { looksLikeWan } from './wan.js';

export interface ConvertOptions {
  /** The state dict's key in a .pt checkpoint (default: see findStateDict; Self-Forcing: generator_ema). */
  key?: string;
  /** Prefix to take off every name: 'auto' (default: wrapper prefixes such as 'model.'), a string, or false. */
  stripPrefix?: string | false;
  /** Configuration fields over what the shapes say (heads for unknown widths, latent size, textLen, ...). */
  config?: Partial<DitConfig>;
  /** Progress: tensors written out of the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface ConvertResult {
  input: string;
  output: string;
  format: 'pytorch' | 'safetensors';
  /** The state dict's key (null: the whole file). */
  key: string | null;
  /** The prefix stripped from every name ('' for none). */
  prefix: string;
  tensors: number;
  bytes: number;
  /** Tensors written per dtype. */
  dtypes: Record<string, number>;
  /** The configuration written into the file, or null (with `note` saying why). */
  config: Readonly<DitConfig> | null;
  note?: string;
  /** Tensors left out, with the reason. */
  skipped: { name: string; why: string }[];
}

interface Source {
  format: ConvertResult['format'];
  key: string | null;
  metadata: Record<string, string>;
  tensors: Map<string, { dtype: DType | string; shape: number[]; bytes: () => Promise<Uint8Array> }>;
  close(): Promise<void>;
}

/**
 * Converts a checkpoint to a qarvd model file (safetensors, Wan names, its dtypes kept). From a
 * PyTorch .pt, the state dict is read without running any of the file's code (see
 * openPytorchCheckpoint). Names lose their wrapper prefix ('model.' for Self-Forcing). When the
 * tensors are a Wan DiT whose configuration is known (see inferWanConfig; `options.config` fills in
 * what the shapes cannot say), exactly the DiT's parameters are written, with the configuration in
 * the metadata, so `loadModel(output)` needs nothing else; other tensors are listed in `skipped`.
 * The output is written atomically.
 *
 * @example
 * const r = await convertCheckpoint('self_forcing_dmd.pt', 'self_forcing.safetensors');
 * r.key;    // 'generator_ema'
 * r.prefix; // 'model.'
 * r.config; // dim 1536, 30 blocks, 12 heads: Self-Forcing's 1.3B
 */
export async function convertCheckpoint(input: string, output: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  if (typeof input !== 'string' || input === '') throw new TypeError(`Expected a path for input but received ${describe(input)}`);
  if (typeof output !== 'string' || output === '') throw new TypeError(`Expected a path for output but received ${describe(output)}`);
  const o = expectObject(options, 'options') as ConvertOptions;
  if (o.config !== undefined) expectObject(o.config, 'options.config');
  if (path.resolve(input) === path.resolve(output)) throw new RangeError(`Expected an output other than the input but received ${output} for both`);
  const source = await openSource(input, o.key);
  try {
    if (source.metadata[QUANTIZED_METADATA_KEY] !== undefined) throw new RangeError(`${input} is a quantized checkpoint, not a model to convert`);
    const skipped: ConvertResult['skipped'] = [];
    const prefix = commonPrefix([...source.tensors.keys()], o.stripPrefix ?? 'auto');
    const named = new Map<string, { dtype: DType | string; shape: number[]; bytes: () => Promise<Uint8Array> }>();
    for (const [name, t] of source.tensors) named.set(name.slice(prefix.length), t);
    const shapes = new Map([...named].map(([n, t]) => [n, t.shape]));

    let config: Readonly<DitConfig> | null = null;
    let note: string | undefined;
    if (source.metadata[CONFIG_METADATA_KEY] || looksLikeWan(shapes)) {
      try {
        config = modelFileConfig(input, source.metadata, shapes, o.config);
      } catch (e) {
        if (o.config?.heads !== undefined || !/give heads/.test((e as Error).message)) throw e;
        note = `${(e as Error).message} (with --heads, or config.heads, the file gets its configuration)`;
      }
    } else {
      if (o.config && Object.keys(o.config).length) throw new RangeError(`${input} is not a Wan-named DiT (no patch_embedding.weight and blocks.0.self_attn.q.weight${prefix ? ` after stripping '${prefix}'` : ''}), so no configuration can be written`);
      note = `not a Wan-named DiT (no patch_embedding.weight and blocks.0.self_attn.q.weight${prefix ? ` after stripping '${prefix}'` : ''}): written without a configuration`;
    }

    const keep = new Map<string, StreamedTensor>();
    const expected = config ? expectedShapes(config) : null;
    for (const [name, t] of named) {
      if (expected && !Object.hasOwn(expected, name)) {
        skipped.push({ name, why: 'not a parameter of the DiT' });
      } else if (!['float32', 'float16', 'bfloat16', 'int32', 'int8', 'uint8'].includes(t.dtype)) {
        if (expected) throw new TypeError(`${input}: ${prefix}${name} is ${t.dtype}; a DiT parameter must be float32, float16 or bfloat16`);
        skipped.push({ name, why: `${t.dtype} is not stored` });
      } else {
        if (expected && expected[name].join() !== t.shape.join()) throw new RangeError(`${input}: ${prefix}${name} has shape [${t.shape.join(', ')}] but the configuration needs [${expected[name].join(', ')}]`);
        keep.set(name, { name, dtype: t.dtype as DType, shape: t.shape, bytes: t.bytes });
      }
    }
    if (expected) {
      const missing = Object.keys(expected).filter((n) => !keep.has(n));
      if (missing.length) throw new RangeError(`${input} lacks ${missing.length} parameter(s) of the DiT, such as ${prefix}${missing[0]}`);
    }
    if (keep.size === 0) throw new RangeError(`${input} holds no tensors to write`);

    const total = keep.size;
    let done = 0, bytes = 0;
    const dtypes: Record<string, number> = {};
    const streamed = [...keep.values()].map((t) => ({
      ...t,
      bytes: async () => {
        const b = await t.bytes();
        bytes += b.byteLength;
        dtypes[t.dtype] = (dtypes[t.dtype] ?? 0) + 1;
        o.onProgress?.(++done, total);
        return b;
      },
    }));
    const metadata: Record<string, string> = { format: 'pt', 'qarvd.source': JSON.stringify({ file: path.basename(input), key: source.key, prefix }) };
    if (config) metadata[CONFIG_METADATA_KEY] = JSON.stringify(config);
    await writeSafetensorsStream(output, streamed, metadata);
    return { input, output, format: source.format, key: source.key, prefix, tensors: total, bytes, dtypes, config, ...(note ? { note } : {}), skipped };
  } finally {
    await source.close();
  }
}

/** A .pt (a zip, or the legacy pickle, by its first bytes) or a safetensors file, as named tensors read on demand. */
async function openSource(file: string, key: string | undefined): Promise<Source> {
  const handle = await open(file, 'r');
  const head = new Uint8Array(4);
  try {
    await handle.read(head, 0, 4, 0);
  } finally {
    await handle.close();
  }
  if ((head[0] === 0x50 && head[1] === 0x4b) || head[0] === 0x80) {
    const ckpt = await openPytorchCheckpoint(file);
    try {
      const sd = findStateDict(ckpt.root, { key, source: file });
      const tensors: Source['tensors'] = new Map();
      for (const [name, t] of sd.tensors) tensors.set(name, { dtype: t.dtype ?? t.torchDtype, shape: [...t.shape], bytes: () => ckpt.readTensorBytes(t) });
      return { format: 'pytorch', key: sd.key, metadata: {}, tensors, close: () => ckpt.close() };
    } catch (e) {
      await ckpt.close();
      throw e;
    }
  }
  if (key !== undefined) throw new RangeError(`${file} is a safetensors file: it has no state dict keys to choose (drop --key)`);
  const f = await openSafetensors(file);
  const tensors: Source['tensors'] = new Map();
  for (const e of f.entries) {
    tensors.set(e.name, {
      dtype: e.dtype,
      shape: e.shape,
      bytes: async () => {
        const t = await f.read(e.name);
        return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
      },
    });
  }
  return { format: 'safetensors', key: null, metadata: f.metadata, tensors, close: () => f.close() };
}
