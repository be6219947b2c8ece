// Self-Forcing's sampling loop: chunks of frames, each denoised from noise in a few flow-matching
// steps against the KV cache of the chunks before it, then run once more at timestep 0 on the
// clean chunk to commit its keys and values.
import { Tensor } from '../tensor/tensor.js';
import { describe, expectFiniteNumber, expectInteger, expectObject, expectOneOf } from '../util/validate.js';
import type { CausalDit } from './dit.js';
import { expectPrecision, type AttentionPrecision } from './ops/attention.js';
import { KV_CACHE_DTYPES, type KvCacheDtype } from './ops/kv-cache.js';
import { ForwardProfile } from './native_pass.js';
import { Rng } from './random.js';
import { encodePrompt } from './weights.js';
import type { PromptFeatures } from './prompts.js';

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
  /** Prompt text (hashed to a context, see encodePrompt), a context tensor [tokens <= textLen, textDim] or features ({ prompt, context }). */
  prompt: string | Tensor | PromptFeatures;
  /** Seed of the initial noise and of the noise added between steps. */
  seed: number;
  /** Chunks to generate (default: config.chunks). */
  chunks?: number;
  /** Nominal timesteps of the denoising steps (default: the configuration's, else [1000, 750, 500, 250]). */
  timesteps?: number[];
  /** Shift of the flow-matching schedule (default: the configuration's, else 5). */
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
  /** Where the passes' time goes: the video's passes add their kernel times to it (see ForwardProfile). */
  profile?: ForwardProfile;
}

export const DEFAULT_TIMESTEPS: readonly number[] = Object.freeze([1000, 750, 500, 250]);

const f32 = Math.fround;

/**
 * The noise level of a nominal timestep, as Self-Forcing's FlowMatchScheduler computes it, in
 * float32: s is element 1000 - t of torch.linspace(1, 0, 1001) (start + i step before the middle,
 * end - (1000 - i) step after it, step = -1/1000 in float32), then sigma = shift s / (1 + (shift - 1) s)
 * with every operation rounded to float32. The model then runs at timestep float32(1000 sigma):
 * 1000, 937.5, 833.333313, 625 for the default steps (not 833.3333333). Fractional timesteps use
 * s = float32(t / 1000).
 *
 * torch's own linspace on a CPU takes SIMD paths that round some elements differently (by at most 3
 * float32 ulps of sigma, at none of the default steps).
 *
 * @example
 * sigmaOf(500); // 0.8333333134651184 (float32), so the model sees timestep 833.3333129882812
 */
export function sigmaOf(timestep: number, shift = 5): number {
  let s: number;
  if (Number.isInteger(timestep) && timestep >= 0 && timestep <= 1000) {
    const i = 1000 - timestep;
    const step = f32(-1 / 1000);
    s = i < 500 ? f32(1 + f32(step * i)) : f32(0 - f32(step * (1000 - i)));
  } else {
    s = f32(timestep / 1000);
  }
  return f32(f32(f32(shift) * s) / f32(1 + f32(f32(shift - 1) * s)));
}

/** The timestep the model runs at for a noise level: float32(1000 sigma), as the scheduler's timesteps. */
export function modelTimestepOf(sigma: number): number {
  return f32(f32(sigma) * 1000);
}

/**
 * Generates a video of latents [chunks * framesPerChunk, channels, h, w]. Each chunk starts from
 * noise; at step i the model, run at timestep 1000 sigma_i (the shifted schedule, as Self-Forcing's
 * warped steps, in float32: see sigmaOf), predicts the flow (noise - x0); x0 = x_t - sigma_i flow;
 * between steps x0 is re-noised to sigma_{i+1} with fresh noise; after the last step the clean
 * chunk is run at timestep 0 to commit its keys and values. The arithmetic between passes is the
 * original pipeline's (float64 for x0, float32 for the noise), so that with the same noise a video
 * agrees with it to float32 rounding. The same seed gives the same video, bit for bit.
 *
 * @example
 * const model = await loadEmbeddedModel();
 * const video = await generate(model, { prompt: 'a red disc moving left', seed: 1 });
 * const fast = await generate(model, { prompt: 'a red disc moving left', seed: 1, attention: 'int8', kvCache: 'int8' });
 */
export async function generate(model: CausalDit, options: GenerateOptions): Promise<Tensor<'float32'>> {
  const o = expectObject(options, 'options') as unknown as GenerateOptions;
  const c = model.config;
  const seed = expectInteger(o.seed, 'options.seed', { min: 0, max: 2 ** 32 - 1 });
  const chunks = expectInteger(o.chunks ?? c.chunks, 'options.chunks', { min: 1 });
  const shift = expectFiniteNumber(o.shift ?? c.shift ?? 5, 'options.shift', { positive: true });
  const attention = expectPrecision(o.attention, 'options.attention');
  const kvCache = o.kvCache === undefined ? 'fp32' : expectOneOf(o.kvCache, 'options.kvCache', KV_CACHE_DTYPES);
  const timesteps = o.timesteps ?? c.timesteps ?? DEFAULT_TIMESTEPS;
  if (!Array.isArray(timesteps) || timesteps.length === 0) throw new TypeError(`Expected a non-empty array for options.timesteps but received ${describe(timesteps)}`);
  timesteps.forEach((t, i) => expectFiniteNumber(t, `options.timesteps[${i}]`, { min: 0, max: 1000 }));
  let context: Tensor;
  if (typeof o.prompt === 'string') context = encodePrompt(o.prompt, c);
  else if (o.prompt instanceof Tensor) context = o.prompt;
  else if (typeof o.prompt === 'object' && o.prompt !== null && (o.prompt as PromptFeatures).context instanceof Tensor) context = (o.prompt as PromptFeatures).context;
  else throw new TypeError(`Expected a string, a context Tensor or { prompt, context } features for options.prompt but received ${describe(o.prompt)}`);

  const F = c.framesPerChunk;
  const chunkSize = F * c.inChannels * c.latentHeight * c.latentWidth;
  const video = new Float32Array(chunks * chunkSize);
  const noise = new Rng(seed);
  const stepNoise = new Rng((seed ^ 0x5bd1e995) >>> 0);
  noise.fillNormal(video); // the whole video's initial noise, drawn up front as Self-Forcing does

  if (o.profile !== undefined && !(o.profile instanceof ForwardProfile)) throw new TypeError(`Expected a ForwardProfile for options.profile but received ${describe(o.profile)}`);
  const state = model.createState(chunks * F, { kvCache });
  if (o.profile) state.profile = o.profile;
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
      const flow = await model.forward(xt, { timestep: modelTimestepOf(sigma), context: embedded, state, attention });
      await o.afterPass?.(info);
      // x0 in float64, then float32 (the original's _convert_flow_pred_to_x0).
      x0 = new Tensor('float32', shape, xt.data.map((v, j) => v - sigma * flow.data[j]));
      if (i + 1 < timesteps.length) {
        // Re-noised in float32, operation by operation, as the scheduler's add_noise.
        const next = sigmaOf(timesteps[i + 1], shift);
        const keep = f32(1 - next);
        const d = xt.data;
        for (let j = 0; j < d.length; j++) d[j] = f32(keep * x0.data[j]) + f32(next * f32(stepNoise.normal()));
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
