// Chunk-wise sensitivity (Q-ARVD, step 1): how much quantizing the generation of one chunk costs the
// final video, through the KV cache every later chunk reads.
import type { CausalDit } from '../model/dit.js';
import { expectPrompts, type Prompt } from '../model/prompts.js';
import { expectInteger, expectObject, describe } from '../util/validate.js';
import { ChunkScheduler, type LayerSet } from './scheduler.js';

export interface SensitivityOptions {
  /** The quantized layers (for example W8A8 replacements of every block linear). */
  quantized: LayerSet;
  /** Prompts (text, or text-encoder features { prompt, context }); video i uses seed + i, the same noise with and without quantization. */
  prompts: Prompt[];
  seed?: number;
  /** Chunks per video (default: the model's configuration). */
  chunks?: number;
  /** Progress: videos generated out of prompts x (chunks + 1). */
  onProgress?: (done: number, total: number) => void;
}

export interface SensitivityResult {
  /** s_k: the normalised sensitivities, summing to 1. */
  sensitivity: number[];
  /** The mean squared error of the whole video per quantized chunk, averaged over prompts. */
  mse: number[];
  /** The same per prompt. */
  perPrompt: number[][];
}

/**
 * For every prompt: the full-precision video, then one video per chunk k with the quantized layers
 * in place only while chunk k is generated (its denoising passes and its cache pass). The
 * sensitivity of chunk k is the mean squared error between that video's final latents and the
 * full-precision ones, over the whole video, averaged over prompts and normalised to sum to 1.
 * Costs prompts x (chunks + 1) generations.
 *
 * @example
 * const { sensitivity } = await measureSensitivity(model, { quantized: w8a8Layers, prompts: DEFAULT_PROMPTS });
 * const weights = chunkWeightsFromSensitivity(sensitivity); // w_k = s_k / mean(s)
 */
export async function measureSensitivity(model: CausalDit, options: SensitivityOptions): Promise<SensitivityResult> {
  const o = expectObject(options, 'options') as unknown as SensitivityOptions;
  if (typeof o.quantized !== 'object' || o.quantized === null || Object.keys(o.quantized).length === 0) {
    throw new TypeError(`Expected a non-empty set of layers for options.quantized but received ${describe(o.quantized)}`);
  }
  expectPrompts(o.prompts, 'options.prompts');
  const seed = expectInteger(o.seed ?? 0, 'options.seed', { min: 0 });
  const chunks = expectInteger(o.chunks ?? model.config.chunks, 'options.chunks', { min: 1 });
  const total = o.prompts.length * (chunks + 1);
  let done = 0;
  const perPrompt: number[][] = [];
  for (let i = 0; i < o.prompts.length; i++) {
    const request = { prompt: o.prompts[i], seed: seed + i, chunks };
    const reference = await new ChunkScheduler(model, () => null).generate(request);
    o.onProgress?.(++done, total);
    const row: number[] = [];
    for (let k = 0; k < chunks; k++) {
      const video = await new ChunkScheduler(model, ChunkScheduler.onlyChunk(k, o.quantized)).generate(request);
      let s = 0;
      for (let j = 0; j < video.size; j++) s += (video.data[j] - reference.data[j]) ** 2;
      row.push(s / video.size);
      o.onProgress?.(++done, total);
    }
    perPrompt.push(row);
  }
  return sensitivityFromPerPrompt(perPrompt);
}

/**
 * The sensitivity of per-prompt errors (row i: prompt i's whole-video MSE per quantized chunk):
 * the mean over prompts, normalised to sum 1. Rows measured in several processes and put back in
 * prompt order give exactly the single-process result.
 *
 * @example
 * const merged = sensitivityFromPerPrompt([...shard1.perPrompt, ...shard2.perPrompt]);
 */
export function sensitivityFromPerPrompt(perPrompt: number[][]): SensitivityResult {
  if (!Array.isArray(perPrompt) || perPrompt.length === 0) throw new TypeError(`Expected a non-empty array of rows for perPrompt but received ${describe(perPrompt)}`);
  const chunks = perPrompt[0]?.length;
  perPrompt.forEach((row, i) => {
    if (!Array.isArray(row) || row.length !== chunks || !row.every((v) => Number.isFinite(v) && v >= 0)) {
      throw new RangeError(`Expected perPrompt[${i}] to hold ${chunks} finite non-negative errors but received ${describe(row)}`);
    }
  });
  const mse = Array.from({ length: chunks }, (_, k) => perPrompt.reduce((s, r) => s + r[k], 0) / perPrompt.length);
  const sum = mse.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) throw new RangeError('options.quantized changes no video: every chunk has zero error, so sensitivities are undefined');
  return { sensitivity: mse.map((m) => m / sum), mse, perPrompt };
}
