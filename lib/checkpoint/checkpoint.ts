// Quantized checkpoints: a quantized model as one safetensors file.
//   <layer>.q, .scale, .zero_point    a quantized layer's weights: q is I8 [out, in], or for int4 the
//                                     packed bytes as U8 [ceil(out * in / 2)] (element 2i in the low
//                                     nibble); scale F32 and zero_point I8 [out] or [out, groups]
//   <layer>.outlier.*, .normal.*      the same per segment of a dual-scale layer, [out, columns]
//   <layer>.outlier_idx               I32 [outliers], ascending
//   <layer>.bias                      F32 [out], when the layer has one
//   every other tensor                float32 under Wan's names (embeddings, head, modulation, norms,
//                                     and any block linear left in float)
// Metadata "qarvd.quantized" holds the versioned description (format, version, config, one entry
// per layer with each segment's dtype, logical shape, group size and per-chunk activation
// quantizers, and the method's free-form info); "qarvd.config" the configuration, as model files.
import { decodeSafetensors, encodeSafetensors, readSafetensors, writeFileAtomic } from '../io/safetensors.js';
import { buildLayerSets, type LayerSpec } from '../method/spec.js';
import { checkConfig, type DitConfig } from '../model/config.js';
import { CausalDit, expectedShapes } from '../model/dit.js';
import { CONFIG_METADATA_KEY } from '../model/io.js';
import { blockLinears } from '../model/weights.js';
import { ChunkScheduler, type LayerPolicy, type LayerSet } from '../schedule/scheduler.js';
import type { Tensor } from '../tensor/tensor.js';
import { describe, expectObject } from '../util/validate.js';
import { QUANTIZED_FORMAT_VERSION, QUANTIZED_METADATA_KEY } from './format.js';
import { decodeLayer, encodeLayer, type LayerJson, type LinearShapes } from './layers.js';

export { QUANTIZED_METADATA_KEY, QUANTIZED_FORMAT_VERSION };

/** A quantized model as data: what a quantized checkpoint holds. */
export interface QuantizedModelSpec {
  config: DitConfig;
  /**
   * Every parameter that is not a quantized block linear, float32 under Wan's names: embeddings,
   * head, modulation tables, norms (and the weight and bias of any block linear left in float).
   */
  tensors: Record<string, Tensor<'float32'>>;
  /** The quantized block linears. */
  layers: LayerSpec[];
  /** Free JSON the method keeps with the model: plan, sensitivity, calibration settings. */
  info: Record<string, unknown>;
}

/** A loaded quantized checkpoint, ready to generate with `new ChunkScheduler(model, policy)`. */
export interface LoadedQuantizedModel {
  /** The model with chunk 0's quantized layers as its own. */
  model: CausalDit;
  /** The layers of every chunk (see buildLayerSets). */
  layerSets: LayerSet[];
  spec: QuantizedModelSpec;
  /** Installs each chunk's layers (ChunkScheduler.perChunk(layerSets)). */
  policy: LayerPolicy;
}

/** Throws unless `value` survives JSON unchanged: null, booleans, finite numbers, strings, arrays and plain objects. */
function checkJson(value: unknown, path: string, parents: Set<object> = new Set()): void {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new RangeError(`Expected a finite number in ${path} (JSON has no ${value}) but received ${value}`);
    return;
  }
  const plain = typeof value === 'object' && (Array.isArray(value) || [Object.prototype, null].includes(Object.getPrototypeOf(value)));
  if (!plain) throw new TypeError(`Expected JSON data (null, booleans, numbers, strings, arrays, plain objects) in ${path} but received ${describe(value)}`);
  if (parents.has(value)) throw new TypeError(`Expected JSON data in ${path} but it refers back to itself`);
  parents.add(value);
  for (const [k, v] of Object.entries(value)) checkJson(v, Array.isArray(value) ? `${path}[${k}]` : `${path}.${k}`, parents);
  parents.delete(value);
}

/** Checks a file's float tensors: exactly the model's parameters that are not quantized layers. */
function checkFloatTensors(config: DitConfig, tensors: Map<string, Tensor>, quantized: Set<string>, where: string): Record<string, Tensor<'float32'>> {
  const out: Record<string, Tensor<'float32'>> = {};
  for (const [name, shape] of Object.entries(expectedShapes(config))) {
    const base = name.replace(/\.(weight|bias)$/, '');
    if (quantized.has(base)) continue;
    const t = tensors.get(name);
    const kind = ` (float32 [${shape.join(', ')}])`;
    if (!t) {
      const linear = blockLinears(config).some((l) => l.name === base);
      throw new RangeError(
        linear
          ? `${where}: block linear ${base} is neither a quantized layer nor given in float: tensor ${name}${kind} is missing`
          : `${where}: tensor ${name}${kind} is missing`,
      );
    }
    if (t.dtype !== 'float32') throw new TypeError(`${where}: tensor ${name} is ${t.dtype} but float32 was expected`);
    if (t.shape.join() !== shape.join()) throw new RangeError(`${where}: tensor ${name} has shape [${t.shape.join(', ')}] but [${shape.join(', ')}] was expected`);
    out[name] = t as Tensor<'float32'>;
    tensors.delete(name);
  }
  const rest = [...tensors.keys()];
  if (rest.length) {
    throw new RangeError(`${where}: ${rest.length} tensor(s) belong to no parameter or quantized layer of ${config.name}: ${rest.slice(0, 5).join(', ')}${rest.length > 5 ? ', …' : ''}`);
  }
  return out;
}

/** A spec from a file's content (or from a spec's encoding, to check it): every rule of the layout. */
function parseContent(tensors: Record<string, Tensor>, metadata: Record<string, string>, where: string): QuantizedModelSpec {
  const raw = metadata[QUANTIZED_METADATA_KEY];
  if (raw === undefined) {
    throw new RangeError(`${where} has no ${QUANTIZED_METADATA_KEY} metadata: it is not a quantized qarvd checkpoint (a float model file loads with loadModel)`);
  }
  let meta: Record<string, unknown>;
  try {
    meta = JSON.parse(raw);
  } catch (e) {
    throw new RangeError(`${where}: the ${QUANTIZED_METADATA_KEY} metadata is not JSON (${(e as Error).message})`);
  }
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) throw new RangeError(`${where}: the ${QUANTIZED_METADATA_KEY} metadata is not a JSON object`);
  if (meta.format !== QUANTIZED_METADATA_KEY) {
    throw new RangeError(`${where}: the ${QUANTIZED_METADATA_KEY} metadata has format ${describe(meta.format)}, not '${QUANTIZED_METADATA_KEY}'`);
  }
  if (meta.version !== QUANTIZED_FORMAT_VERSION) {
    throw new RangeError(`${where} is a quantized checkpoint of version ${describe(meta.version)}; this qarvd reads version ${QUANTIZED_FORMAT_VERSION}`);
  }
  const config = checkConfig(meta.config, `${where} config`);
  if (typeof meta.info !== 'object' || meta.info === null || Array.isArray(meta.info)) throw new RangeError(`${where}: info is not a JSON object`);
  if (!Array.isArray(meta.layers)) throw new RangeError(`${where}: layers is not a list`);
  const shapes: LinearShapes = new Map(blockLinears(config).map((l) => [l.name, { in: l.in, out: l.out }]));
  const left = new Map(Object.entries(tensors));
  const layers: LayerSpec[] = [];
  const names = new Set<string>();
  meta.layers.forEach((json: unknown, i: number) => {
    const name = (json as { name?: unknown } | null)?.name;
    if (typeof name === 'string' && names.has(name)) throw new RangeError(`${where}: layer ${name} appears twice`);
    const layer = decodeLayer(json, i, shapes, left, where);
    names.add(layer.name);
    layers.push(layer);
  });
  for (const name of names) {
    for (const p of ['weight', 'bias']) {
      if (left.has(`${name}.${p}`)) throw new RangeError(`${where}: layer ${name} is quantized but tensor ${name}.${p} gives it in float too`);
    }
  }
  return { config: { ...config }, tensors: checkFloatTensors(config, left, names, where), layers, info: meta.info as Record<string, unknown> };
}

/**
 * A quantized model as safetensors bytes (the layout is in this module's header comment). The spec is
 * checked by the same rules a reader applies, so what is written loads back.
 *
 * @example
 * const bytes = encodeQuantizedModel({ config, tensors, layers, info: { plan } });
 */
export function encodeQuantizedModel(spec: QuantizedModelSpec): Uint8Array {
  const s = expectObject(spec, 'spec') as unknown as QuantizedModelSpec;
  const config = checkConfig(s.config, 'spec.config');
  const tensors: Record<string, Tensor> = { ...expectObject(s.tensors, 'spec.tensors') } as Record<string, Tensor>;
  if (!Array.isArray(s.layers)) throw new TypeError(`Expected an array of layer specs for spec.layers but received ${describe(s.layers)}`);
  checkJson(expectObject(s.info, 'spec.info'), 'spec.info');
  const layers: LayerJson[] = [];
  const own: Record<string, Tensor> = {};
  s.layers.forEach((l, i) => layers.push(encodeLayer(l, `spec.layers[${i}]`, own)));
  for (const name of Object.keys(own)) {
    if (name in tensors) throw new RangeError(`Expected spec.tensors to hold no tensor of a quantized layer but it has ${name}`);
  }
  Object.assign(tensors, own);
  const metadata = {
    [QUANTIZED_METADATA_KEY]: JSON.stringify({ format: QUANTIZED_METADATA_KEY, version: QUANTIZED_FORMAT_VERSION, config, layers, info: s.info }),
    [CONFIG_METADATA_KEY]: JSON.stringify(config),
  };
  parseContent(tensors, metadata, 'spec');
  return encodeSafetensors(tensors, metadata);
}

/**
 * Reads a quantized checkpoint from bytes. A corrupt or truncated buffer is a SafetensorsError;
 * missing or foreign metadata, another format version, or a layer whose tensors are missing or
 * malformed is a RangeError or TypeError naming `source` and the layer and tensor.
 */
export function decodeQuantizedModel(bytes: Uint8Array, source = 'buffer'): QuantizedModelSpec {
  const { tensors, metadata } = decodeSafetensors(bytes, source);
  return parseContent(tensors, metadata, source);
}

/**
 * Writes a quantized checkpoint atomically (a flushed temporary file renamed over `file`): a failed
 * write leaves any previous file as it was.
 *
 * @example
 * await saveQuantizedModel('w8a8.safetensors', spec);
 */
export async function saveQuantizedModel(file: string, spec: QuantizedModelSpec): Promise<void> {
  if (typeof file !== 'string' || file === '') throw new TypeError(`Expected a path for file but received ${describe(file)}`);
  await writeFileAtomic(file, encodeQuantizedModel(spec));
}

/** Reads and checks a quantized checkpoint (errors as {@link decodeQuantizedModel}, naming the file). */
export async function readQuantizedModel(file: string): Promise<QuantizedModelSpec> {
  const { tensors, metadata } = await readSafetensors(file);
  return parseContent(tensors, metadata, file);
}

/**
 * Loads a quantized checkpoint as a runnable model: the layers of every chunk, a model whose own
 * block linears are chunk 0's, and the policy that installs each chunk's layers.
 *
 * @example
 * const { model, policy } = await loadQuantizedModel('w8a8.safetensors');
 * const video = await new ChunkScheduler(model, policy).generate({ prompt: 'a red fox', seed: 1 });
 */
export async function loadQuantizedModel(file: string): Promise<LoadedQuantizedModel> {
  const spec = await readQuantizedModel(file);
  const layerSets = buildLayerSets(spec.layers);
  const model = CausalDit.fromTensors(spec.config, spec.tensors, { layers: { ...layerSets[0] } });
  return { model, layerSets, spec, policy: ChunkScheduler.perChunk(layerSets) };
}
