// Quantized layer specs to and from their stored form: tensors named after the layer plus a JSON
// description. Reading checks every tensor against the description (presence, dtype, shape) and
// every value the kernels rely on (scales, zero points, outlier columns, activation quantizers),
// so that a checkpoint either loads into runnable layers or fails naming the layer and tensor.
import { checkOutlierIdx } from '../gemm/dual.js';
import { checkWeightParams, groupCount, parseActivation, parseSegment, WEIGHT_DTYPES, type ActivationQuantOptions, type WeightDType } from '../gemm/options.js';
import type { QuantizedWeight } from '../gemm/quantized.js';
import type { LayerSpec, SegmentSpec } from '../method/spec.js';
import { Tensor, expectTensor } from '../tensor/tensor.js';
import { qrange, type DType } from '../tensor/dtype.js';
import { describe, expectInteger, expectObject, expectOneOf } from '../util/validate.js';

/** How one segment is described in the metadata; its tensors are `<prefix>.q/.scale/.zero_point`. */
export interface SegmentJson {
  dtype: WeightDType;
  /** The logical shape [out, columns] of `q` (int4 is stored as packed U8 bytes). */
  shape: [number, number];
  /** 0: per output channel. */
  groupSize: number;
  activation: ActivationQuantOptions[];
}

/** How one layer is described in the metadata. */
export type LayerJson =
  | { name: string; type: 'quantized'; inFeatures: number; outFeatures: number; bias: boolean; segment: SegmentJson }
  | {
      name: string;
      type: 'dual';
      inFeatures: number;
      outFeatures: number;
      bias: boolean;
      /** Outlier columns: the length of `<name>.outlier_idx`. */
      outliers: number;
      outlier: SegmentJson | null;
      normal: SegmentJson | null;
    };

/** The features of a block linear, by name. */
export type LinearShapes = ReadonlyMap<string, { in: number; out: number }>;

/** The known fields of an activation quantizer, so stored JSON holds nothing else. */
function activationJson(a: ActivationQuantOptions): ActivationQuantOptions {
  const out: Record<string, unknown> = { type: a.type };
  for (const k of ['scale', 'zeroPoint', 'dtype', 'scheme'] as const) if (k in a && (a as Record<string, unknown>)[k] !== undefined) out[k] = (a as Record<string, unknown>)[k];
  return out as unknown as ActivationQuantOptions;
}

function encodeSegment(seg: unknown, prefix: string, path: string, out: Record<string, Tensor>): SegmentJson {
  const s = expectObject(seg, path) as unknown as SegmentSpec;
  const w = expectObject(s.weight, `${path}.weight`) as unknown as QuantizedWeight;
  const q = expectTensor(w.q, `${path}.weight.q`, ['int8', 'int4']);
  if (q.rank !== 2) throw new RangeError(`Expected ${path}.weight.q to have shape [out, columns] but received [${q.shape.join(', ')}]`);
  if (w.dtype !== q.dtype) throw new TypeError(`Expected ${path}.weight.dtype to be ${q.dtype} (the dtype of its q) but received ${describe(w.dtype)}`);
  if (!Array.isArray(s.activation)) throw new TypeError(`Expected an array of activation quantizers for ${path}.activation but received ${describe(s.activation)}`);
  out[`${prefix}.q`] = q.dtype === 'int8' ? q : new Tensor('uint8', [q.data.length], q.data as Uint8Array);
  out[`${prefix}.scale`] = expectTensor(w.scale, `${path}.weight.scale`, ['float32']);
  // Zero points lie in the weights' own range (int8 or int4), so one byte each is enough on disk.
  const zeroPoint = expectTensor(w.zeroPoint, `${path}.weight.zeroPoint`, ['int32']);
  const { qmin, qmax } = qrange(q.dtype);
  zeroPoint.data.forEach((z, i) => {
    if (z < qmin || z > qmax) throw new RangeError(`Expected ${path}.weight.zeroPoint values between ${qmin} and ${qmax} for ${q.dtype} but element ${i} is ${z}`);
  });
  out[`${prefix}.zero_point`] = new Tensor('int8', zeroPoint.shape, Int8Array.from(zeroPoint.data));
  return {
    dtype: q.dtype,
    shape: [q.shape[0], q.shape[1]],
    groupSize: w.groupSize,
    activation: s.activation.map((a, k) => activationJson(expectObject(a, `${path}.activation[${k}]`) as unknown as ActivationQuantOptions)),
  };
}

/**
 * Puts a layer spec's tensors into `out` and returns its description. Only the structure is checked
 * here; {@link decodeLayer} checks the result, so writing and reading apply the same rules.
 */
export function encodeLayer(spec: LayerSpec, path: string, out: Record<string, Tensor>): LayerJson {
  const l = expectObject(spec, path) as unknown as LayerSpec;
  if (typeof l.name !== 'string') throw new TypeError(`Expected a layer name for ${path}.name but received ${describe(l.name)}`);
  const type = expectOneOf(l.type, `${path}.type`, ['quantized', 'dual'] as const);
  if (l.bias !== null && !(l.bias instanceof Float32Array)) throw new TypeError(`Expected a Float32Array or null for ${path}.bias but received ${describe(l.bias)}`);
  if (l.bias) out[`${l.name}.bias`] = new Tensor('float32', [l.bias.length], l.bias);
  const bias = l.bias !== null;
  if (type === 'quantized' && l.type === 'quantized') {
    const segment = encodeSegment(l.segment, l.name, `${path}.segment`, out);
    return { name: l.name, type, inFeatures: segment.shape[1], outFeatures: segment.shape[0], bias, segment };
  }
  const d = l as Extract<LayerSpec, { type: 'dual' }>;
  if (!(d.outlierIdx instanceof Int32Array)) throw new TypeError(`Expected an Int32Array for ${path}.outlierIdx but received ${describe(d.outlierIdx)}`);
  out[`${d.name}.outlier_idx`] = new Tensor('int32', [d.outlierIdx.length], d.outlierIdx);
  const outlier = d.outlier === null ? null : encodeSegment(d.outlier, `${d.name}.outlier`, `${path}.outlier`, out);
  const normal = d.normal === null ? null : encodeSegment(d.normal, `${d.name}.normal`, `${path}.normal`, out);
  const outFeatures = (outlier ?? normal)?.shape[0] ?? (d.bias ? d.bias.length : 0);
  return { name: d.name, type: 'dual', inFeatures: d.inFeatures, outFeatures, bias, outliers: d.outlierIdx.length, outlier, normal };
}

/** Takes the tensors a layer description names out of a file's tensors and checks each. */
class LayerReader {
  constructor(
    private readonly tensors: Map<string, Tensor>,
    private readonly where: string,
    private readonly layer: string,
  ) {}

  fail(why: string, Err: typeof RangeError = RangeError): never {
    throw new Err(`${this.where}: layer ${this.layer}: ${why}`);
  }

  take(name: string, dtype: DType, shape: number[]): Tensor {
    const t = this.tensors.get(name);
    if (!t) this.fail(`tensor ${name} (${dtype} [${shape.join(', ')}]) is missing`);
    if (t.dtype !== dtype) this.fail(`tensor ${name} is ${t.dtype} but ${dtype} was expected`, TypeError);
    if (t.shape.join() !== shape.join()) this.fail(`tensor ${name} has shape [${t.shape.join(', ')}] but [${shape.join(', ')}] was expected`);
    this.tensors.delete(name);
    return t;
  }

  /** Re-throws a check's error with the file and layer in front. */
  check<T>(fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof TypeError) this.fail(e.message, TypeError);
      if (e instanceof RangeError) this.fail(e.message);
      throw e;
    }
  }

  segment(value: unknown, prefix: string, out: number, columns: number): SegmentSpec {
    const j = this.check(() => expectObject(value, `${prefix} segment`));
    const dtype = this.check(() => expectOneOf(j.dtype, `${prefix} dtype`, WEIGHT_DTYPES));
    const shape = j.shape;
    if (!Array.isArray(shape) || shape.length !== 2 || shape[0] !== out || shape[1] !== columns) {
      this.fail(`${prefix} has shape ${JSON.stringify(shape)} but [${out}, ${columns}] was expected`);
    }
    const groupSize = this.check(() => expectInteger(j.groupSize, `${prefix} groupSize`, { min: 0 }));
    this.check(() => parseSegment({ dtype, groupSize: groupSize || undefined }, undefined, prefix, out, columns));
    if (!Array.isArray(j.activation) || j.activation.length === 0) {
      this.fail(`Expected a non-empty array for ${prefix} activation but received ${describe(j.activation)}`, TypeError);
    }
    const activation = j.activation.map((a: unknown, k: number) => {
      this.check(() => parseActivation(a, `${prefix} activation[${k}]`));
      return activationJson(a as ActivationQuantOptions);
    });
    const count = out * columns;
    const stored = this.take(`${prefix}.q`, dtype === 'int8' ? 'int8' : 'uint8', dtype === 'int8' ? [out, columns] : [Math.ceil(count / 2)]);
    const q = dtype === 'int8' ? (stored as Tensor<'int8'>) : new Tensor('int4', [out, columns], stored.data as Uint8Array);
    const paramShape = groupSize > 0 ? [out, groupCount(columns, groupSize)] : [out];
    const scale = this.take(`${prefix}.scale`, 'float32', paramShape) as Tensor<'float32'>;
    const stored8 = this.take(`${prefix}.zero_point`, 'int8', paramShape);
    const zeroPoint = new Tensor('int32', paramShape, Int32Array.from(stored8.data as Int8Array));
    this.check(() => checkWeightParams(scale, zeroPoint, dtype, scale.size, prefix));
    return { weight: { q, scale, zeroPoint, dtype, groupSize }, activation };
  }
}

/**
 * A layer spec from its description and the file's tensors (`tensors`: what is not yet claimed;
 * this layer's tensors are removed from it). `shapes`: the model's block linears.
 */
export function decodeLayer(value: unknown, index: number, shapes: LinearShapes, tensors: Map<string, Tensor>, where: string): LayerSpec {
  const j = value as Record<string, unknown>;
  if (typeof value !== 'object' || value === null || typeof j.name !== 'string') {
    throw new TypeError(`${where}: layers[${index}] is not a layer description with a name`);
  }
  const name = j.name;
  const r: LayerReader = new LayerReader(tensors, where, name);
  const linear = shapes.get(name);
  if (!linear) r.fail(`not a block linear of this model (such as blocks.0.ffn.0)`);
  const type = r.check(() => expectOneOf(j.type, 'type', ['quantized', 'dual'] as const));
  if (j.inFeatures !== linear.in || j.outFeatures !== linear.out) {
    r.fail(`has ${describe(j.inFeatures)} -> ${describe(j.outFeatures)} features but the model's layer has ${linear.in} -> ${linear.out}`);
  }
  if (typeof j.bias !== 'boolean') r.fail(`Expected a boolean for bias but received ${describe(j.bias)}`, TypeError);
  const bias = j.bias ? (r.take(`${name}.bias`, 'float32', [linear.out]).data as Float32Array) : null;
  if (type === 'quantized') return { type, name, segment: r.segment(j.segment, name, linear.out, linear.in), bias };

  const outliers = r.check(() => expectInteger(j.outliers, 'outliers', { min: 0, max: linear.in }));
  const idx = r.take(`${name}.outlier_idx`, 'int32', [outliers]);
  const outlierIdx = r.check(() => checkOutlierIdx(idx.data as Int32Array, linear.in, `${name}.outlier_idx`));
  const part = (key: 'outlier' | 'normal', columns: number): SegmentSpec | null => {
    if (columns === 0) {
      if (j[key] !== null) r.fail(`${key} must be null: the segment has no columns`);
      return null;
    }
    return r.segment(j[key], `${name}.${key}`, linear.out, columns);
  };
  return { type, name, inFeatures: linear.in, outlierIdx, outlier: part('outlier', outliers), normal: part('normal', linear.in - outliers), bias };
}
