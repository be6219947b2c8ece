// Self-Forcing's sampling loop: chunks of frames, each denoised from noise in a few flow-matching
// steps against the KV cache of the chunks before it, then run once more at timestep 0 on the
// clean chunk to commit its keys and values.
import { Tensor } from '../tensor/tensor.js';
import { describe, expectFiniteNumber, expectInteger, expectObject, expectOneOf } from '../util/validate.js';
import type { CausalDit } from './dit.js';
import { expectPrecision, type AttentionPrecision } from './ops/attention.js';
import { KV_CACHE_DTYPES, type KvCacheDtype } from './ops/kv-cache.js';
import { Rng } from './random.js';
import { encodePrompt } from './weights.js';

/** What runs now: the scheduler and observers key their work on it. */
export interface PassInfo {
  chunk: number;
  /** Denoising step 0..steps-1, or `steps` for the cache pass. */
  step: number;
  kind: 'denoise' | 'cache';
  /** Nominal timestep of the step (1000, 750, 500, 250; 0 for the cache pass). */
  timestep: number;
  /** Noise level sigma of the step (shifted schedule; 0 for the cache pass). */
  sigma: number;
}

export interface GenerateOptions {
  /** Prompt text (hashed to a context, see encodePrompt) or a context tensor [textLen, textDim]. */
  prompt: string | Tensor;
  /** Seed of the initial noise and of the noise added between steps. */
  seed: number;
  /** Chunks to generate (default: config.chunks). */
  chunks?: number;
  /** Nominal timesteps of the denoising steps (default [1000, 750, 500, 250]). */
  timesteps?: number[];
  /** Shift of the flow-matching schedule (default 5). */
  shift?: number;
  /** Precision of the model's attention: 'fp32' (default), 'bf16' or 'int8' (see AttentionPrecision). */
  attention?: AttentionPrecision;
  /** How the KV caches store keys and values: 'fp32' (default), 'bf16' or 'int8' (see KvCacheDtype). */
  kvCache?: KvCacheDtype;
  /** Called before and after each pass; may be async (the chunk scheduler switches layers here). */
  beforePass?: (info: PassInfo) => void | Promise<void>;
  afterPass?: (info: PassInfo) => void | Promise<void>;
  /** Progress: passes done out of the total. */
  onProgress?: (done: number, total: number) => void;
}

export const DEFAULT_TIMESTEPS: readonly number[] = Object.freeze([1000, 750, 500, 250]);

/** sigma = shift s / (1 + (shift - 1) s) with s = t / 1000 (the shifted flow-matching schedule). */
export function sigmaOf(timestep: number, shift = 5): number {
  const s = timestep / 1000;
  return (shift * s) / (1 + (shift - 1) * s);
}

/**
 * Generates a video of latents [chunks * framesPerChunk, channels, h, w]. Each chunk starts from
 * noise; at step i the model, run at timestep 1000 sigma_i (the shifted schedule, as Self-Forcing's
 * warped steps), predicts the flow (noise - x0); x0 = x_t - sigma_i flow; between steps x0 is
 * re-noised to sigma_{i+1} with fresh noise; after the last step the clean chunk is run at
 * timestep 0 to commit its keys and values. The same seed gives the same video, bit for bit.
 *
 * @example
 * const model = CausalDit.synthetic(EMBEDDED_DEFAULT);
 * const video = await generate(model, { prompt: 'a red fox running through snow', seed: 1 });
 * const fast = await generate(model, { prompt: 'a red fox running through snow', seed: 1, attention: 'int8', kvCache: 'int8' });
 */
export async function generate(model: CausalDit, options: GenerateOptions): Promise<Tensor<'float32'>> {
  const o = expectObject(options, 'options') as unknown as GenerateOptions;
  const c = model.config;
  const seed = expectInteger(o.seed, 'options.seed', { min: 0, max: 2 ** 32 - 1 });
  const chunks = expectInteger(o.chunks ?? c.chunks, 'options.chunks', { min: 1 });
  const shift = expectFiniteNumber(o.shift ?? 5, 'options.shift', { positive: true });
  const attention = expectPrecision(o.attention, 'options.attention');
  const kvCache = o.kvCache === undefined ? 'fp32' : expectOneOf(o.kvCache, 'options.kvCache', KV_CACHE_DTYPES);
  const timesteps = o.timesteps ?? DEFAULT_TIMESTEPS;
  if (!Array.isArray(timesteps) || timesteps.length === 0) throw new TypeError(`Expected a non-empty array for options.timesteps but received ${describe(timesteps)}`);
  timesteps.forEach((t, i) => expectFiniteNumber(t, `options.timesteps[${i}]`, { min: 0, max: 1000 }));
  let context: Tensor;
  if (typeof o.prompt === 'string') context = encodePrompt(o.prompt, c);
  else if (o.prompt instanceof Tensor) context = o.prompt;
  else throw new TypeError(`Expected a string or a context Tensor for options.prompt but received ${describe(o.prompt)}`);

  const F = c.framesPerChunk;
  const chunkSize = F * c.inChannels * c.latentHeight * c.latentWidth;
  const video = new Float32Array(chunks * chunkSize);
  const noise = new Rng(seed);
  const stepNoise = new Rng((seed ^ 0x5bd1e995) >>> 0);
  noise.fillNormal(video); // the whole video's initial noise, drawn up front as Self-Forcing does

  const state = model.createState(chunks * F, { kvCache });
  const embedded = await model.embedContext(context);
  const total = chunks * (timesteps.length + 1);
  let done = 0;
  const shape = [F, c.inChannels, c.latentHeight, c.latentWidth];
  for (let k = 0; k < chunks; k++) {
    const xt = new Tensor('float32', shape, video.slice(k * chunkSize, (k + 1) * chunkSize));
    let x0 = xt;
    for (let i = 0; i < timesteps.length; i++) {
      const sigma = sigmaOf(timesteps[i], shift);
      const info: PassInfo = { chunk: k, step: i, kind: 'denoise', timestep: timesteps[i], sigma };
      await o.beforePass?.(info);
      const flow = await model.forward(xt, { timestep: sigma * 1000, context: embedded, state, attention });
      await o.afterPass?.(info);
      x0 = new Tensor('float32', shape, xt.data.map((v, j) => v - sigma * flow.data[j]));
      if (i + 1 < timesteps.length) {
        const next = sigmaOf(timesteps[i + 1], shift);
        const d = xt.data;
        for (let j = 0; j < d.length; j++) d[j] = (1 - next) * x0.data[j] + next * stepNoise.normal();
      }
      o.onProgress?.(++done, total);
    }
    const info: PassInfo = { chunk: k, step: timesteps.length, kind: 'cache', timestep: 0, sigma: 0 };
    await o.beforePass?.(info);
    await model.forward(x0, { timestep: 0, context: embedded, state, commit: true, attention });
    await o.afterPass?.(info);
    o.onProgress?.(++done, total);
    video.set(x0.data, k * chunkSize);
  }
  return new Tensor('float32', [chunks * F, c.inChannels, c.latentHeight, c.latentWidth], video);
}
