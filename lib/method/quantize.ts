// From calibration statistics to quantized layers (Q-ARVD, step 2 continued): weight quantizers
// (per tensor or per channel, min/max or MSE clipping), static activation ranges (min/max or
// chunk-weighted MSE), the dual-scale split of outlier layers, GPTQ reconstruction with the
// chunk-weighted Hessian, and sensitivity-weighted bit allocation. Every switch is a recipe field,
// so the ablation is a list of recipes.
import { allocate, type AllocationPlan } from '../allocation/knapsack.js';
import { detectOutliersSync, type OutlierMethod } from '../calibration/outliers.js';
import { mseChannelClipSearchSync } from '../calibration/clip_search.js';
import { minMaxSync } from '../calibration/reduce.js';
import type { Histogram } from '../calibration/histogram.js';
import { gptq, type GptqResult } from '../calibration/gptq.js';
import type { MseObserver } from '../calibration/mse_observer.js';
import type { Gram } from '../calibration/gram.js';
import { DualScaleLinear } from '../gemm/dual.js';
import { QuantizedLinear } from '../gemm/quantized.js';
import type { ActivationQuantOptions, WeightDType } from '../gemm/options.js';
import type { CausalDit } from '../model/dit.js';
import type { Linear } from '../gemm/linear.js';
import type { LayerSet } from '../schedule/scheduler.js';
import { dequantizeValue, qparamsFromRange, quantizeValue } from '../primitives/qparams.js';
import { Tensor } from '../tensor/tensor.js';
import { describe, expectInteger, expectObject, expectOneOf } from '../util/validate.js';
import { complement, gatherColumns, type CalibrationStats } from './calibrate.js';
import type { LayerSpec, SegmentSpec } from './spec.js';

/** How a model is quantized. Omitted switches are off. */
export interface QuantRecipe {
  /** Weight bit-width of the setting (W8A8: 'int8', W4A8: 'int4'). */
  weightDtype: WeightDType;
  /** 'perTensor' (one scale per layer) or 'perChannel' (per output channel; default). */
  weightGranularity?: 'perTensor' | 'perChannel';
  /** Weight clipping: 'minmax' or 'mse' (per channel among percentile clips; default). */
  weightRange?: 'minmax' | 'mse';
  /** Static per-tensor activation range: 'minmax' or 'mse' (from the histograms; default). */
  activationRange?: 'minmax' | 'mse';
  /** Weigh calibration samples by their chunk weights (activation MSE and GPTQ's Hessian). */
  chunkWeighting?: boolean;
  /** Split layers with outlier columns into the dual-scale form (the columns of the calibration). */
  dualScale?: boolean;
  /** The reference's choice: dual-scale layers are calibrated with uniform chunk weights. */
  dualUniformWeights?: boolean;
  /** Layer-wise reconstruction beyond round-to-nearest. */
  reconstruction?: 'gptq';
  /** Sensitivity-weighted bit allocation. */
  allocation?: AllocationRecipe;
}

export interface AllocationRecipe {
  /** Average weight bits allowed over the block linears (options: 4 and 8 bits, and 8-bit outliers with 4-bit normal columns). */
  weightBits?: number;
  /** Chunks allowed dynamic per-token activations (the others use the static range). */
  dynamicChunks?: number;
}

/** What the method decided for one layer. */
export interface LayerReport {
  name: string;
  type: 'quantized' | 'dual';
  outlierCount: number;
  /** Weight dtype (normal segment for dual layers) and of the outlier segment. */
  weightDtype: WeightDType;
  outlierDtype: WeightDType | null;
  /** Reconstruction loss trace(D H D^T) / rows, D the weight error, H the calibration's chunk-weighted Gram mean (uniform when reconstructing with uniform weights). */
  loss: number;
}

export interface QuantizedModel {
  layers: LayerSpec[];
  report: LayerReport[];
  /** The bit allocation plans, when the recipe asks for them. */
  plans: { weights?: AllocationPlan; chunks?: AllocationPlan };
}

/**
 * Round-to-nearest replacements of every block linear (per output channel, symmetric, dynamic
 * per-token int8 activations): the quantized layers chunk-wise sensitivity is measured with.
 *
 * @example
 * const { sensitivity } = await measureSensitivity(model, { quantized: roundToNearest(model, { dtype: 'int8' }), prompts });
 */
export function roundToNearest(model: CausalDit, options: { dtype?: WeightDType } = {}): LayerSet {
  const dtype = options.dtype === undefined ? 'int8' : expectOneOf(options.dtype, 'options.dtype', ['int8', 'int4'] as const);
  const layers: Record<string, Linear> = {};
  for (const name of model.blockLinearNames) {
    const { weight, bias } = model.floatWeights(name);
    layers[name] = QuantizedLinear.fromFloat(weight, { bias, weight: { dtype }, activation: { type: 'dynamic' } });
  }
  return layers;
}

/** Outlier columns of every block linear from its weight's column norms (MAD or IQR, SPEC section 1); layers with none are left out. */
export function detectModelOutliers(model: CausalDit, options: { method?: OutlierMethod } = {}): Record<string, Int32Array> {
  const method = options.method === undefined ? 'mad' : expectOneOf(options.method, 'options.method', ['mad', 'iqr'] as const);
  const out: Record<string, Int32Array> = {};
  for (const name of model.blockLinearNames) {
    const r = detectOutliersSync(model.floatWeights(name).weight, { method });
    if (r.outlierIdx.length > 0) out[name] = r.outlierIdx;
  }
  return out;
}

function checkRecipe(value: unknown): Required<Omit<QuantRecipe, 'reconstruction' | 'allocation'>> & Pick<QuantRecipe, 'reconstruction' | 'allocation'> {
  const r = expectObject(value, 'recipe');
  const allocation = r.allocation === undefined ? undefined : (expectObject(r.allocation, 'recipe.allocation') as AllocationRecipe);
  if (allocation?.weightBits !== undefined && !(allocation.weightBits >= 4 && allocation.weightBits <= 8)) {
    throw new RangeError(`Expected recipe.allocation.weightBits between 4 and 8 but received ${describe(allocation.weightBits)}`);
  }
  if (allocation?.dynamicChunks !== undefined) expectInteger(allocation.dynamicChunks, 'recipe.allocation.dynamicChunks', { min: 0 });
  return {
    weightDtype: expectOneOf(r.weightDtype, 'recipe.weightDtype', ['int8', 'int4'] as const),
    weightGranularity: r.weightGranularity === undefined ? 'perChannel' : expectOneOf(r.weightGranularity, 'recipe.weightGranularity', ['perTensor', 'perChannel'] as const),
    weightRange: r.weightRange === undefined ? 'mse' : expectOneOf(r.weightRange, 'recipe.weightRange', ['minmax', 'mse'] as const),
    activationRange: r.activationRange === undefined ? 'mse' : expectOneOf(r.activationRange, 'recipe.activationRange', ['minmax', 'mse'] as const),
    chunkWeighting: r.chunkWeighting === true,
    dualScale: r.dualScale === true,
    dualUniformWeights: r.dualUniformWeights === true,
    reconstruction: r.reconstruction === undefined ? undefined : expectOneOf(r.reconstruction, 'recipe.reconstruction', ['gptq'] as const),
    allocation,
  };
}

/** One candidate quantization of a layer's weights, with its error and size. */
interface Candidate {
  spec: LayerSpec;
  report: LayerReport;
  bits: number;
}

/**
 * Quantizes every calibrated block linear of `model` by `recipe` and returns the layers as specs
 * (buildLayerSets() makes them runnable; saveQuantizedModel() stores them).
 *
 * @example
 * const q = await quantizeModel(model, stats, { weightDtype: 'int8', chunkWeighting: true, dualScale: true, reconstruction: 'gptq' });
 * const scheduler = new ChunkScheduler(model, ChunkScheduler.perChunk(buildLayerSets(q.layers)));
 */
export async function quantizeModel(model: CausalDit, stats: CalibrationStats, recipe: QuantRecipe, options: { onProgress?: (done: number, total: number) => void } = {}): Promise<QuantizedModel> {
  const r = checkRecipe(recipe);
  const names = [...stats.layers.keys()];
  const chunks = stats.chunkWeights.length;
  const byLayer: Candidate[][] = [];
  const bitOptions: WeightDType[] = r.allocation?.weightBits !== undefined ? ['int4', 'int8'] : [r.weightDtype];
  for (let i = 0; i < names.length; i++) {
    const name = names[i];
    const candidates: Candidate[] = [];
    for (const dtype of bitOptions) candidates.push(await quantizeLayer(model, stats, name, r, dtype, dtype));
    if (r.allocation?.weightBits !== undefined && r.dualScale && stats.layer(name).segments) {
      candidates.push(await quantizeLayer(model, stats, name, r, 'int4', 'int8'));
    }
    byLayer.push(candidates);
    options.onProgress?.(i + 1, names.length);
  }

  const plans: QuantizedModel['plans'] = {};
  let picks = byLayer.map(() => 0);
  if (r.allocation?.weightBits !== undefined) {
    const elements = names.map((n) => model.linear(n).inFeatures * model.linear(n).outFeatures);
    const total = elements.reduce((a, b) => a + b, 0);
    // A layer's error is its whole output's: the per-row loss times the rows.
    const rows = names.map((n) => model.linear(n).outFeatures);
    plans.weights = allocate(
      byLayer.map((cands, i) => ({ name: names[i], options: cands.map((c, j) => ({ label: j, cost: c.bits * elements[i], error: c.report.loss * rows[i] })) })),
      { budget: r.allocation.weightBits * total },
    );
    picks = names.map((n) => plans.weights!.choices[n].index);
  }
  const chosen = byLayer.map((c, i) => c[picks[i]]);

  if (r.allocation?.dynamicChunks !== undefined && r.allocation.dynamicChunks > 0) {
    plans.chunks = allocateChunks(stats, chosen.map((c) => c.spec), r.chunkWeighting ? stats.chunkWeights : new Array(chunks).fill(1), r.allocation.dynamicChunks);
    const dynamic = Array.from({ length: chunks }, (_, k) => plans.chunks!.choices[`chunk ${k}`].label === 'dynamic');
    for (const c of chosen) perChunkActivations(c.spec, dynamic);
  }
  return { layers: chosen.map((c) => c.spec), report: chosen.map((c) => c.report), plans };
}

/** Quantizes one layer (normal columns at `dtype`, outlier columns at `outlierDtype` when dual). */
async function quantizeLayer(model: CausalDit, stats: CalibrationStats, name: string, r: ReturnType<typeof checkRecipe>, dtype: WeightDType, outlierDtype: WeightDType): Promise<Candidate> {
  const s = stats.layer(name);
  const { weight: w, bias } = model.floatWeights(name);
  const [n, k] = w.shape;
  const dual = r.dualScale && s.segments !== null;
  const weighted = r.chunkWeighting && !(dual && r.dualUniformWeights);
  const chunkWeights = weighted ? stats.chunkWeights : 'uniform';
  const activation = (obs: MseObserver): ActivationQuantOptions => {
    if (r.activationRange === 'minmax') {
      const st = obs.stats();
      const q = qparamsFromRange(st.min, st.max, 'int8', 'asymmetric');
      return { type: 'static', scale: q.scale, zeroPoint: q.zeroPoint, dtype: 'int8' };
    }
    const q = obs.calculate({ chunkWeights, dtype: 'int8', scheme: 'asymmetric' });
    return { type: 'static', scale: q.scale, zeroPoint: q.zeroPoint, dtype: 'int8' };
  };
  // Reconstruction minimises the loss under this Hessian; without it, it only measures the error.
  const hessian = (r.reconstruction && !weighted ? uniformGram(stats, name) : s.gram).mean();
  // Weight qparams of some columns: one range for all (per tensor), each row's min/max, or each row's MSE clip.
  const params = (cols: Tensor<'float32'>, d: WeightDType) => {
    const rows = cols.shape[0];
    if (r.weightGranularity === 'perChannel' && r.weightRange === 'mse') {
      const c = mseChannelClipSearchSync(cols, { dtype: d, scheme: 'asymmetric' });
      return { scale: c.scale, zeroPoint: c.zeroPoint };
    }
    const scale = new Float32Array(rows), zeroPoint = new Int32Array(rows);
    if (r.weightGranularity === 'perTensor') {
      const { min, max } = minMaxSync(cols);
      const q = qparamsFromRange(min, max, d, 'asymmetric');
      return { scale: scale.fill(q.scale), zeroPoint: zeroPoint.fill(q.zeroPoint) };
    }
    const { min, max } = minMaxSync(cols, { axis: 0 });
    for (let i = 0; i < rows; i++) {
      const q = qparamsFromRange(min[i], max[i], d, 'asymmetric');
      scale[i] = q.scale;
      zeroPoint[i] = q.zeroPoint;
    }
    return { scale, zeroPoint };
  };
  const one = (a: ActivationQuantOptions) => [a];

  let result: GptqResult;
  let spec: LayerSpec;
  if (dual) {
    const seg = s.segments!;
    const normalIdx = complement(seg.outlierIdx, k);
    const po = params(gatherColumns(w, seg.outlierIdx), outlierDtype);
    const pn = params(gatherColumns(w, normalIdx), dtype);
    const d = await gptq(w, hessian, {
      outlierIdx: seg.outlierIdx,
      outlier: { dtype: outlierDtype, scheme: 'asymmetric', ...po },
      normal: { dtype, scheme: 'asymmetric', ...pn },
    });
    result = d;
    const actO = activation(seg.outlier);
    const actN = activation(seg.normal);
    const layer = r.reconstruction === 'gptq'
      ? DualScaleLinear.fromGptq(d, { bias, outlier: { activation: actO }, normal: { activation: actN } })
      : DualScaleLinear.fromFloat(w, {
          outlierIdx: seg.outlierIdx,
          outlier: { weight: { dtype: outlierDtype, scheme: 'asymmetric', ...po }, activation: actO },
          normal: { weight: { dtype, scheme: 'asymmetric', ...pn }, activation: actN },
          bias,
        });
    const q = layer.quantizedWeight();
    // The layer was built only to read its weights back: its native memory goes now, not at the next GC.
    layer.dispose();
    spec = {
      type: 'dual', name, inFeatures: k, outlierIdx: seg.outlierIdx,
      outlier: q.outlier && { weight: q.outlier, activation: one(actO) },
      normal: q.normal && { weight: q.normal, activation: one(actN) },
      bias: layer.bias,
    };
  } else {
    const p = params(w, dtype);
    const single = await gptq(w, hessian, { dtype, scheme: 'asymmetric', ...p });
    result = single;
    const act = activation(s.input);
    const layer = r.reconstruction === 'gptq'
      ? QuantizedLinear.fromGptq(single, { bias, activation: act })
      : QuantizedLinear.fromFloat(w, { bias, weight: { dtype, scheme: 'asymmetric', ...p }, activation: act });
    spec = { type: 'quantized', name, segment: { weight: layer.quantizedWeight(), activation: one(act) }, bias: layer.bias };
    layer.dispose();
  }
  const loss = (r.reconstruction === 'gptq' ? result.loss.gptq : result.loss.rtn!) / n;
  const outliers = dual ? s.segments!.outlierIdx.length : 0;
  const bits = ((k - outliers) * bitsOf(dtype) + outliers * bitsOf(outlierDtype)) / k;
  return {
    spec,
    bits,
    report: { name, type: spec.type, outlierCount: outliers, weightDtype: dtype, outlierDtype: dual ? outlierDtype : null, loss },
  };
}

/** The Gram of a layer with every sample weighing 1. */
function uniformGram(stats: CalibrationStats, name: string): Gram {
  const s = stats.layer(name);
  if (stats.chunkWeights.every((w) => w === stats.chunkWeights[0])) return s.gram;
  if (s.gramUniform) return s.gramUniform;
  throw new RangeError(`${name} was calibrated with chunk weights and without a uniform Gram (kept for dual-scale candidates only); quantize it with chunkWeighting`);
}

function bitsOf(d: WeightDType): number {
  return d === 'int8' ? 8 : 4;
}

/**
 * Per-chunk activation allocation: each chunk runs its layers' activations either at their static
 * range or dynamically per token (more accurate, a little slower). The error of each choice is the
 * squared activation error summed over layers (static: from the chunk's histograms at the chosen
 * range; dynamic: measured during calibration), weighted by the chunk weight; at most `budget`
 * chunks go dynamic.
 */
function allocateChunks(stats: CalibrationStats, specs: LayerSpec[], weights: ArrayLike<number>, budget: number): AllocationPlan {
  const chunks = stats.chunkWeights.length;
  const staticSse = new Float64Array(chunks);
  const dynamicSse = new Float64Array(chunks);
  for (const spec of specs) {
    const s = stats.layer(spec.name);
    const parts: [MseObserver, SegmentSpec | null][] =
      spec.type === 'quantized' ? [[s.input, spec.segment]] : [[s.segments!.outlier, spec.outlier], [s.segments!.normal, spec.normal]];
    for (let k = 0; k < chunks; k++) {
      dynamicSse[k] += s.tokenSse[k] ?? 0;
      for (const [obs, seg] of parts) {
        if (!seg || obs.stats(k).count === 0) continue;
        const a = seg.activation[0];
        if (a.type !== 'static') continue;
        staticSse[k] += histogramSse(obs.histogram(k), a.scale, a.zeroPoint);
      }
    }
  }
  return allocate(
    Array.from({ length: chunks }, (_, k) => ({
      name: `chunk ${k}`,
      options: [
        { label: 'static', cost: 0, error: weights[k] * staticSse[k] },
        { label: 'dynamic', cost: 1, error: weights[k] * dynamicSse[k] },
      ],
    })),
    { budget: Math.min(budget, chunks) },
  );
}

/** Squared error of quantizing every histogram bin centre (weighted by its count) with the given int8 qparams. */
function histogramSse(h: Histogram, scale: number, zeroPoint: number): number {
  let sse = 0;
  for (let i = 0; i < h.bins; i++) {
    if (h.counts[i] === 0) continue;
    const m = h.centre(i);
    const e = dequantizeValue(quantizeValue(m, scale, zeroPoint, 'int8'), scale, zeroPoint) - m;
    sse += h.counts[i] * e * e;
  }
  return sse;
}

/** Gives each segment one activation entry per chunk: dynamic per token where `dynamic[k]`, else its static range. */
function perChunkActivations(spec: LayerSpec, dynamic: boolean[]): void {
  const expand = (seg: SegmentSpec | null) => {
    if (!seg) return;
    const fixed = seg.activation[0];
    seg.activation = dynamic.map((d) => (d ? { type: 'dynamic', dtype: 'int8', scheme: 'asymmetric' } : fixed));
  };
  if (spec.type === 'quantized') expand(spec.segment);
  else {
    expand(spec.outlier);
    expand(spec.normal);
  }
}
