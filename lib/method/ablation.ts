// The ablation of the method, one recipe per row, each adding one component to the row above, and
// the evaluation of quantized layer sets against the full-precision model's own videos.
import type { WeightDType } from '../gemm/options.js';
import { videoMetrics } from '../metrics/video.js';
import type { CausalDit } from '../model/dit.js';
import type { GenerateOptions } from '../model/sampling.js';
import { ChunkScheduler, type LayerSet } from '../schedule/scheduler.js';
import type { Tensor } from '../tensor/tensor.js';
import type { QuantRecipe } from './quantize.js';
import { expectObject, expectOneOf } from '../util/validate.js';

/** The settings of the paper: weight bit-width, 8-bit activations. */
export const SETTINGS: Readonly<Record<'W8A8' | 'W4A8', WeightDType>> = Object.freeze({ W8A8: 'int8', W4A8: 'int4' });

/** Short names of the rows (`qarvd quantize --method`). */
export const METHODS = ['naive', 'mse', 'chunk', 'dual', 'gptq', 'full', 'reference'] as const;
export type MethodName = (typeof METHODS)[number];

export interface AblationRow {
  name: MethodName;
  method: string;
  recipe: QuantRecipe;
  /** How the row's videos are generated beyond its layers (quantized attention, a smaller KV cache); default float32. */
  generation?: Generation;
}

/** The attention precision and KV cache storage of a generation. */
export type Generation = Pick<GenerateOptions, 'attention' | 'kvCache'>;

/** Options of {@link ablationRows}: the quantized attention and KV cache of its last two rows. */
export interface AblationOptions {
  /** Default 'int8'. */
  attention?: 'bf16' | 'int8';
  /** Default 'int8'. */
  kvCache?: 'bf16' | 'int8';
}

/** Bit allocation budgets of the last row: chunks that may use dynamic per-token activations, and (W4A8) average weight bits. */
export const ALLOCATION_BUDGET = Object.freeze({ dynamicChunks: 2, weightBitsW4: 4.5 });

/**
 * Rows of the ablation for a weight dtype: naive per-tensor min-max PTQ; per-channel MSE PTQ; then
 * chunk weighting, the two-scale split, GPTQ reconstruction and bit allocation added one by one;
 * the reference's variant of the full method (uniform weights on two-scale layers); and beyond the
 * paper, the full method's layers with quantized attention (int8 Q.K^T with smoothed keys, P.V in
 * bfloat16: `options.attention`), then also a smaller KV cache (`options.kvCache`).
 *
 * @example
 * const rows = ablationRows('int8');             // 9 rows, the last two with int8 attention (and cache)
 * rows.at(-1)!.generation;                        // { attention: 'int8', kvCache: 'int8' }
 */
export function ablationRows(weightDtype: WeightDType, options: AblationOptions = {}): AblationRow[] {
  const o = expectObject(options, 'options') as AblationOptions;
  const attention = o.attention === undefined ? 'int8' : expectOneOf(o.attention, 'options.attention', ['bf16', 'int8'] as const);
  const kvCache = o.kvCache === undefined ? 'int8' : expectOneOf(o.kvCache, 'options.kvCache', ['bf16', 'int8'] as const);
  const full: QuantRecipe = { weightDtype, chunkWeighting: true, dualScale: true, reconstruction: 'gptq' };
  const allocation = weightDtype === 'int4' ? { dynamicChunks: ALLOCATION_BUDGET.dynamicChunks, weightBits: ALLOCATION_BUDGET.weightBitsW4 } : { dynamicChunks: ALLOCATION_BUDGET.dynamicChunks };
  const allocated: QuantRecipe = { ...full, allocation };
  const attentionMethod = attention === 'int8' ? '+ int8 attention (smoothed keys, P.V in bf16)' : '+ bf16 attention';
  return [
    { name: 'naive', method: 'naive per-tensor min-max PTQ', recipe: { weightDtype, weightGranularity: 'perTensor', weightRange: 'minmax', activationRange: 'minmax' } },
    { name: 'mse', method: 'per-channel MSE PTQ', recipe: { weightDtype } },
    { name: 'chunk', method: '+ chunk weighting', recipe: { weightDtype, chunkWeighting: true } },
    { name: 'dual', method: '+ two-scale', recipe: { weightDtype, chunkWeighting: true, dualScale: true } },
    { name: 'gptq', method: '+ reconstruction (GPTQ)', recipe: full },
    { name: 'full', method: '+ bit allocation', recipe: allocated },
    { name: 'reference', method: 'reference variant: uniform weights on two-scale layers', recipe: { ...full, dualUniformWeights: true } },
    // The same layers as the full method (the same recipe object), generated differently.
    { name: 'full', method: attentionMethod, recipe: allocated, generation: { attention } },
    { name: 'full', method: `${attentionMethod} + ${kvCache} KV cache`, recipe: allocated, generation: { attention, kvCache } },
  ];
}

/** The full method of a setting: the bit-allocation row. */
export function fullRecipe(weightDtype: WeightDType): QuantRecipe {
  return ablationRows(weightDtype).find((r) => r.name === 'full' && !r.generation)!.recipe;
}

export interface EvaluationResult {
  /** Means over the videos. */
  psnr: number;
  ssim: number;
  mse: number;
  /** Per chunk, means over the videos. */
  perChunk: { psnr: number[]; ssim: number[]; mse: number[] };
  videos: Tensor<'float32'>[];
}

/** What a video is generated from: prompt and seed (the full-precision reference uses the same). */
export interface VideoRequest {
  prompt: string;
  seed: number;
}

/**
 * Generates the requested videos with the per-chunk layer sets (and the attention precision and KV
 * cache storage of `generation`) and compares them with the full-precision videos of the same prompts
 * and noise (latent MSE, PSNR, SSIM; per chunk too).
 */
export async function evaluateLayerSets(model: CausalDit, sets: LayerSet[], requests: VideoRequest[], references: Tensor<'float32'>[], onVideo?: () => void,
  generation: Generation = {}): Promise<EvaluationResult> {
  const videos: Tensor<'float32'>[] = [];
  const sum = { psnr: 0, ssim: 0, mse: 0 };
  let perChunk: EvaluationResult['perChunk'] | undefined;
  for (let i = 0; i < requests.length; i++) {
    const video = await new ChunkScheduler(model, ChunkScheduler.perChunk(sets)).generate({ ...requests[i], ...generation });
    videos.push(video);
    const m = videoMetrics(video, references[i], { chunkSize: model.config.framesPerChunk });
    sum.psnr += m.psnr;
    sum.ssim += m.ssim;
    sum.mse += m.mse;
    perChunk ??= { psnr: m.perChunk.psnr.map(() => 0), ssim: m.perChunk.ssim.map(() => 0), mse: m.perChunk.mse.map(() => 0) };
    for (const key of ['psnr', 'ssim', 'mse'] as const) m.perChunk[key].forEach((v, k) => (perChunk![key][k] += v / requests.length));
    onVideo?.();
  }
  const n = requests.length;
  return { psnr: sum.psnr / n, ssim: sum.ssim / n, mse: sum.mse / n, perChunk: perChunk!, videos };
}
