// A quantized model as data: what every quantized block linear holds (integer weights, scales,
// zero points, outlier columns) and how its activations are quantized in each chunk. The method
// produces it, the checkpoint stores it, and buildLayerSets() turns it into runnable layers.
import type { Linear } from '../gemm/linear.js';
import { QuantizedLinear, type QuantizedWeight } from '../gemm/quantized.js';
import { DualScaleLinear } from '../gemm/dual.js';
import type { ActivationQuantOptions } from '../gemm/options.js';
import type { LayerSet } from '../schedule/scheduler.js';
import { expectedShapes, type CausalDit } from '../model/dit.js';
import type { Tensor } from '../tensor/tensor.js';

/**
 * One segment of a layer: its integer weights and, per chunk, its activation quantizer. A single
 * entry in `activation` applies to every chunk; otherwise entry k is chunk k's (chunks past the
 * list use the last one), which is how per-chunk settings (e.g. per-chunk static ranges) are kept.
 */
export interface SegmentSpec {
  weight: QuantizedWeight;
  activation: ActivationQuantOptions[];
}

/** A quantized block linear: one scale set, or the dual-scale split of Q-ARVD. */
export type LayerSpec =
  | { type: 'quantized'; name: string; segment: SegmentSpec; bias: Float32Array | null }
  | {
      type: 'dual';
      name: string;
      inFeatures: number;
      /** Outlier input columns, strictly ascending (may be empty: then `outlier` is null). */
      outlierIdx: Int32Array;
      outlier: SegmentSpec | null;
      normal: SegmentSpec | null;
      bias: Float32Array | null;
    };

/** Chunks in which a spec's activation quantizers differ: 1 when every chunk is the same. */
export function activationChunks(spec: LayerSpec): number {
  if (spec.type === 'quantized') return spec.segment.activation.length;
  return Math.max(spec.outlier?.activation.length ?? 1, spec.normal?.activation.length ?? 1);
}

function activationAt(seg: SegmentSpec, chunk: number): ActivationQuantOptions {
  return seg.activation[Math.min(chunk, seg.activation.length - 1)];
}

/** The runnable layer of a spec for chunk `chunk`. */
export function buildLayer(spec: LayerSpec, chunk = 0): Linear {
  const bias = spec.bias ?? undefined;
  if (spec.type === 'quantized') {
    const { weight, activation } = { weight: spec.segment.weight, activation: activationAt(spec.segment, chunk) };
    return QuantizedLinear.fromQuantized(weight.q, { scale: weight.scale, zeroPoint: weight.zeroPoint, groupSize: weight.groupSize || undefined, activation, bias });
  }
  const segment = (seg: SegmentSpec | null) =>
    seg && {
      weight: seg.weight.q,
      scale: seg.weight.scale,
      zeroPoint: seg.weight.zeroPoint,
      groupSize: seg.weight.groupSize || undefined,
      activation: activationAt(seg, chunk),
    };
  return DualScaleLinear.fromQuantized({
    inFeatures: spec.inFeatures,
    outlierIdx: spec.outlierIdx,
    outlier: segment(spec.outlier) ?? undefined,
    normal: segment(spec.normal) ?? undefined,
    bias,
  });
}

/**
 * The layer sets of every chunk (index k: chunk k; the list is as long as the longest per-chunk
 * activation list, at least 1). Chunks whose quantizers are the same share one layer object, so
 * the weights are packed once per distinct setting.
 */
export function buildLayerSets(specs: readonly LayerSpec[]): LayerSet[] {
  const chunks = Math.max(1, ...specs.map(activationChunks));
  const sets: Record<string, Linear>[] = Array.from({ length: chunks }, () => ({}));
  for (const spec of specs) {
    const built = new Map<string, Linear>();
    for (let k = 0; k < chunks; k++) {
      const key = JSON.stringify(activationKey(spec, k));
      if (!built.has(key)) built.set(key, buildLayer(spec, k));
      sets[k][spec.name] = built.get(key)!;
    }
  }
  return sets;
}

function activationKey(spec: LayerSpec, k: number): unknown {
  if (spec.type === 'quantized') return activationAt(spec.segment, k);
  return [spec.outlier && activationAt(spec.outlier, k), spec.normal && activationAt(spec.normal, k)];
}

/**
 * Every parameter of `model` that quantization leaves in full precision (embeddings, time
 * projection, head, modulation tables, norms) under Wan's names and shapes: what a quantized
 * checkpoint stores beside its layer specs.
 */
export function fullPrecisionTensors(model: CausalDit): Record<string, Tensor<'float32'>> {
  const block = new Set(model.blockLinearNames);
  const out: Record<string, Tensor<'float32'>> = {};
  for (const [name, shape] of Object.entries(expectedShapes(model.config))) {
    const m = /^(.*)\.(weight|bias)$/.exec(name);
    if (m && block.has(m[1])) continue;
    const isLinear = m !== null && !model.hasParam(name);
    const t = isLinear ? model.floatWeights(m![1])[m![2] as 'weight' | 'bias'] : model.param(name);
    out[name] = t.reshape(shape);
  }
  return out;
}

/**
 * Bytes a layer's weights take as stored (a checkpoint's tensors: integers, scales, one-byte zero
 * points, outlier columns, bias), without the per-row sums the kernels cache in memory.
 */
export function storedBytes(spec: LayerSpec): number {
  const segment = (s: SegmentSpec | null) => (s ? s.weight.q.data.byteLength + s.weight.scale.data.byteLength + s.weight.zeroPoint.size : 0);
  const bias = spec.bias ? spec.bias.byteLength : 0;
  if (spec.type === 'quantized') return segment(spec.segment) + bias;
  return segment(spec.outlier) + segment(spec.normal) + spec.outlierIdx.byteLength + bias;
}
