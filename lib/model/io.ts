// Model files: safetensors with Wan's parameter names and the configuration in the metadata
// (key "qarvd.config"), so a file is self-describing. Wan's own files (no configuration, bf16 or
// float32) load too: their configuration follows from the tensor shapes (wan.ts).
import { openSafetensors, writeSafetensors } from '../io/safetensors.js';
import { QUANTIZED_METADATA_KEY } from '../checkpoint/format.js';
import { Tensor } from '../tensor/tensor.js';
import { toFloat32 } from '../tensor/convert.js';
import { describe } from '../util/validate.js';
import { inferWanConfig, looksLikeWan, type ShapeTable } from './wan.js';
import { CONFIGS, type DitConfig, checkConfig } from './config.js';
import { CausalDit, expectedShapes } from './dit.js';
import { syntheticWeights } from './weights.js';

export const CONFIG_METADATA_KEY = 'qarvd.config';

/** Writes float32 weights under Wan's names with the configuration in the metadata (atomically). */
export async function saveModelWeights(file: string, config: DitConfig, tensors: Record<string, Tensor>): Promise<void> {
  const c = checkConfig(config);
  await writeSafetensors(file, tensors, { [CONFIG_METADATA_KEY]: JSON.stringify(c), format: 'pt' });
}

/**
 * Loads a model file, tensor by tensor (the file is never held whole in memory; 16-bit weights stay
 * 16-bit in the model's float source and are widened only to be packed). The configuration comes
 * from the file's metadata; for files without one, such as Wan2.1's own
 * diffusion_pytorch_model.safetensors, from the tensor shapes (see inferWanConfig: the heads of
 * Wan's released sizes are known). `config` may name a built-in configuration, or give some fields
 * (for example `{ heads: 8 }`, or the latent size) over what the file says.
 *
 * @example
 * const model = await loadModel('dit.safetensors');
 * const wan = await loadModel('Wan2.1-T2V-1.3B/diffusion_pytorch_model.safetensors'); // 1536 wide, 30 blocks, 12 heads
 */
export async function loadModel(file: string, config?: DitConfig | Partial<DitConfig> | string): Promise<CausalDit> {
  const f = await openSafetensors(file);
  try {
    if (f.metadata[QUANTIZED_METADATA_KEY] !== undefined) throw new RangeError(`${file} is a quantized checkpoint: load it with loadQuantizedModel`);
    const c = modelFileConfig(file, f.metadata, new Map(f.entries.map((e) => [e.name, e.shape])), config);
    // The file must hold exactly the configuration's tensors: a missing, extra or misshapen one (say
    // a fourth block in a file whose configuration says three) is an error naming it.
    // (Wan's own files, without a configuration, may carry tensors the model does not use: those are skipped.)
    const expected = expectedShapes(c);
    const own = Boolean(f.metadata[CONFIG_METADATA_KEY]);
    for (const e of f.entries) {
      const shape = Object.prototype.hasOwnProperty.call(expected, e.name) ? expected[e.name] : undefined;
      if (!shape && !own) continue;
      if (!shape) throw new RangeError(`${file}: tensor ${e.name} is not part of the ${c.name} configuration (${c.layers} blocks); the file and its configuration disagree`);
      if (e.shape.join() !== shape.join()) throw new RangeError(`${file}: tensor ${e.name} has shape [${e.shape.join(', ')}] but the configuration needs [${shape.join(', ')}]`);
    }
    const present = new Set(f.entries.map((e) => e.name));
    for (const name of Object.keys(expected)) {
      if (!present.has(name)) throw new RangeError(`${file}: tensor ${name} is missing (shape [${expected[name].join(', ')}])`);
    }
    const tensors: Record<string, Tensor> = Object.create(null);
    for (const e of f.entries) {
      if (!Object.prototype.hasOwnProperty.call(expected, e.name)) continue;
      const t = await f.read(e.name);
      if (t.dtype === 'float32' || t.dtype === 'float16' || t.dtype === 'bfloat16') {
        const values = toFloat32(t).data;
        for (let i = 0; i < values.length; i++) {
          if (!Number.isFinite(values[i])) throw new RangeError(`${file}: tensor ${e.name} holds a non-finite weight (${values[i]} at element ${i})`);
        }
      }
      tensors[e.name] = t;
    }
    return CausalDit.fromTensors(c, tensors);
  } finally {
    await f.close();
  }
}

/** The configuration of a model file: its metadata's or the shapes' (Wan files), with `given` over it. */
export function modelFileConfig(file: string, metadata: Record<string, string>, shapes: ShapeTable, given?: DitConfig | Partial<DitConfig> | string): Readonly<DitConfig> {
  if (typeof given === 'string') return namedConfig(given);
  if (given !== undefined && (typeof given !== 'object' || given === null)) throw new TypeError(`Expected a configuration, some of its fields or a name for config but received ${describe(given)}`);
  if (metadata[CONFIG_METADATA_KEY]) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(metadata[CONFIG_METADATA_KEY]);
    } catch {
      throw new RangeError(`${file}: the ${CONFIG_METADATA_KEY} metadata is not JSON`);
    }
    const own = checkConfig(parsed, `${file} ${CONFIG_METADATA_KEY}`);
    return given ? checkConfig({ ...own, ...given }) : own;
  }
  if (!looksLikeWan(shapes) && given === undefined) {
    throw new RangeError(`${file} carries no ${CONFIG_METADATA_KEY} metadata and is not a Wan-named DiT; give the configuration (one of ${Object.keys(CONFIGS).join(', ')}, or an object)`);
  }
  return inferWanConfig(shapes, given, file);
}

/** A built-in configuration by name. */
export function namedConfig(name: string): DitConfig {
  const c = CONFIGS[name];
  if (!c) throw new RangeError(`Expected one of ${Object.keys(CONFIGS).join(', ')} for config but received '${name}'`);
  return c;
}

/** Writes the seeded synthetic weights of a configuration as a model file. */
export async function saveSyntheticModel(file: string, config: DitConfig, seed = 0): Promise<void> {
  await saveModelWeights(file, config, syntheticWeights(config, { seed }).tensors);
}
