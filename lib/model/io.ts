// Model files: safetensors with Wan's parameter names and the configuration in the metadata
// (key "qarvd.config"), so a file is self-describing. Files from elsewhere (Wan checkpoints
// converted to float32) load with an explicit configuration.
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { QUANTIZED_METADATA_KEY } from '../checkpoint/format.js';
import { Tensor } from '../tensor/tensor.js';
import { CONFIGS, type DitConfig, checkConfig } from './config.js';
import { CausalDit } from './dit.js';
import { syntheticWeights } from './weights.js';

export const CONFIG_METADATA_KEY = 'qarvd.config';

/** Writes float32 weights under Wan's names with the configuration in the metadata (atomically). */
export async function saveModelWeights(file: string, config: DitConfig, tensors: Record<string, Tensor>): Promise<void> {
  const c = checkConfig(config);
  await writeSafetensors(file, tensors, { [CONFIG_METADATA_KEY]: JSON.stringify(c), format: 'pt' });
}

/**
 * Loads a model file. The configuration comes from the file's metadata, or from `config` (a
 * configuration or the name of a built-in one) for files that carry none.
 *
 * @example
 * const model = await loadModel('dit.safetensors');
 */
export async function loadModel(file: string, config?: DitConfig | string): Promise<CausalDit> {
  const { tensors, metadata } = await readSafetensors(file);
  if (metadata[QUANTIZED_METADATA_KEY] !== undefined) throw new RangeError(`${file} is a quantized checkpoint: load it with loadQuantizedModel`);
  let c: DitConfig;
  if (config !== undefined) {
    c = typeof config === 'string' ? namedConfig(config) : config;
  } else if (metadata[CONFIG_METADATA_KEY]) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(metadata[CONFIG_METADATA_KEY]);
    } catch {
      throw new RangeError(`${file}: the ${CONFIG_METADATA_KEY} metadata is not JSON`);
    }
    c = checkConfig(parsed, `${file} ${CONFIG_METADATA_KEY}`);
  } else {
    throw new RangeError(`${file} carries no ${CONFIG_METADATA_KEY} metadata; give the configuration (one of ${Object.keys(CONFIGS).join(', ')}, or an object)`);
  }
  return CausalDit.fromTensors(c, tensors);
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
