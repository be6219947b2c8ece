// A quantized model spec built by hand from the layers' own exports, covering every kind of layer
// the checkpoint stores: int8 and int4, per channel and per group, static and dynamic activations,
// per-chunk activation lists of different lengths, dual-scale layers with detected, given (odd
// count), or no outlier columns, a layer without bias, and a block linear left in float.
import { DualScaleLinear, QuantizedLinear, type ActivationQuantOptions, type QuantizedModelSpec, type Tensor } from '../../lib/index.js';
import type { LayerSpec } from '../../lib/method/spec.js';
import { type DitConfig, EMBEDDED_TESTBED } from '../../lib/model/config.js';
import { blockLinears, syntheticWeights } from '../../lib/model/weights.js';

/** ffnDim is odd so that int4 segments of ffn.0 ([47, 3] and [47, 29]) pack an odd count of values. */
export const tiny: DitConfig = {
  ...EMBEDDED_TESTBED,
  name: 'tiny',
  inChannels: 4,
  outChannels: 4,
  dim: 32,
  ffnDim: 47,
  heads: 2,
  layers: 2,
  freqDim: 16,
  textDim: 8,
  textLen: 5,
  latentHeight: 4,
  latentWidth: 4,
  framesPerChunk: 2,
  chunks: 3,
};

const dynamic: ActivationQuantOptions = { type: 'dynamic' };
const st = (scale: number, zeroPoint: number): ActivationQuantOptions => ({ type: 'static', scale, zeroPoint });

/** The layer spec of block linear `name` (variant chosen by its position), or null to keep it in float. */
function layerSpec(name: string, index: number, weight: Tensor<'float32'>, bias: Tensor<'float32'>): LayerSpec | null {
  const b = bias.data;
  switch (index % 10) {
    case 0: // self_attn.q: W8A8 per channel, dynamic
      return { type: 'quantized', name, segment: { weight: QuantizedLinear.fromFloat(weight).quantizedWeight(), activation: [dynamic] }, bias: b };
    case 2: // self_attn.v: W4 per group, static activations per chunk (three chunks)
      return {
        type: 'quantized',
        name,
        segment: { weight: QuantizedLinear.fromFloat(weight, { weight: { dtype: 'int4', groupSize: 16 } }).quantizedWeight(), activation: [st(0.05, 2), st(0.04, -1), st(0.03, 0)] },
        bias: b,
      };
    case 1: { // self_attn.k (planted outlier columns): two-scale with detected outliers, int8 outliers and int4 normal columns
      const q = DualScaleLinear.fromFloat(weight, { detect: {}, outlier: { weight: { dtype: 'int8' } }, normal: { weight: { dtype: 'int4', groupSize: 16 } } }).quantizedWeight();
      return {
        type: 'dual',
        name,
        inFeatures: weight.shape[1],
        outlierIdx: q.outlierIdx,
        outlier: q.outlier && { weight: q.outlier, activation: [dynamic] },
        normal: q.normal && { weight: q.normal, activation: [st(0.06, 0), st(0.02, 1)] },
        bias: b,
      };
    }
    case 3: // self_attn.o: asymmetric int8 groups, uint8 symmetric dynamic activations, no bias
      return {
        type: 'quantized',
        name,
        segment: { weight: QuantizedLinear.fromFloat(weight, { weight: { scheme: 'asymmetric', groupSize: 16 } }).quantizedWeight(), activation: [{ type: 'dynamic', dtype: 'uint8', scheme: 'symmetric' }] },
        bias: null,
      };
    case 4: // cross_attn.q: left in float
      return null;
    case 5: { // cross_attn.k: two-scale without outlier columns
      const q = DualScaleLinear.fromFloat(weight, { outlierIdx: [], normal: { weight: { dtype: 'int4' } } }).quantizedWeight();
      return { type: 'dual', name, inFeatures: weight.shape[1], outlierIdx: q.outlierIdx, outlier: null, normal: { weight: q.normal!, activation: [dynamic] }, bias: b };
    }
    case 8: { // ffn.0 [47, 32]: three given outlier columns, int4 in both segments (odd element counts)
      const q = DualScaleLinear.fromFloat(weight, {
        outlierIdx: [3, 17, 30],
        outlier: { weight: { dtype: 'int4' } },
        normal: { weight: { dtype: 'int4', groupSize: 16, scheme: 'asymmetric' } },
      }).quantizedWeight();
      return {
        type: 'dual',
        name,
        inFeatures: weight.shape[1],
        outlierIdx: q.outlierIdx,
        outlier: { weight: q.outlier!, activation: [st(0.1, 0), dynamic] },
        normal: { weight: q.normal!, activation: [dynamic, st(0.03, -2), st(0.05, 4)] },
        bias: b,
      };
    }
    default: // cross_attn.v, cross_attn.o, ffn.2 ([32, 47]: the last int4 group is short)
      return { type: 'quantized', name, segment: { weight: QuantizedLinear.fromFloat(weight, { weight: { dtype: 'int4', groupSize: 16 } }).quantizedWeight(), activation: [dynamic] }, bias: b };
  }
}

/** The spec of `config` (seeded synthetic weights); `info` is free JSON. */
export function makeSpec(config: DitConfig = tiny, seed = 0): QuantizedModelSpec {
  const { tensors } = syntheticWeights(config, { seed });
  const layers: LayerSpec[] = [];
  const kept: Record<string, Tensor<'float32'>> = { ...tensors };
  blockLinears(config).forEach(({ name }, i) => {
    const spec = layerSpec(name, i, tensors[`${name}.weight`], tensors[`${name}.bias`]);
    if (!spec) return;
    layers.push(spec);
    delete kept[`${name}.weight`];
    delete kept[`${name}.bias`];
  });
  const info = {
    plan: { budgetBits: 6.5, layers: Object.fromEntries(layers.map((l, i) => [l.name, i % 2 ? 4 : 8])) },
    sensitivity: [0.4, 0.25, 0.2, 0.15],
    calibration: { prompts: ['a red fox', 'waves — 波'], observer: 'mse', chunkWeighted: true, tiny: 1e-300, nothing: null },
  };
  return { config, tensors: kept, layers, info };
}
