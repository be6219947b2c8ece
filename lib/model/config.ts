// Configurations of the causal video DiT (the architecture of Wan2.1 as used by Self-Forcing).
import { describe, expectInteger, expectObject } from '../util/validate.js';

export interface DitConfig {
  /** A name for reports and checkpoints. */
  name: string;
  /** Latent channels in and out (Wan VAE: 16). */
  inChannels: number;
  outChannels: number;
  /** Hidden size, feed-forward size, attention heads, blocks. */
  dim: number;
  ffnDim: number;
  heads: number;
  layers: number;
  /** Size of the sinusoidal timestep embedding (Wan: 256). */
  freqDim: number;
  /** Width of the text encoder output (Wan: T5 4096) and the context length (Wan: 512). */
  textDim: number;
  textLen: number;
  /** Latent frame size; the patch is 1 x 2 x 2, so tokens per frame = (height / 2) * (width / 2). */
  latentHeight: number;
  latentWidth: number;
  /** Frames generated per chunk (Self-Forcing: 3) and chunks per video (Self-Forcing: 7). */
  framesPerChunk: number;
  chunks: number;
  /** Normalisation epsilon (Wan: 1e-6). */
  eps: number;
  /**
   * The nominal timesteps of each chunk's denoising steps, when the model is sampled with other
   * steps than Self-Forcing's four (1000, 750, 500, 250): generate() uses them when not told
   * otherwise. A model trained without step distillation needs more steps, or other ones.
   */
  timesteps?: readonly number[];
  /** The shift of the flow-matching schedule the model was trained for (Self-Forcing: 5), the default of generate(). */
  shift?: number;
}

/**
 * The embedded testbed: small enough that a 7-chunk video takes about a second on 2 CPU cores, with
 * the same structure as the real model and deterministic seeded weights (see syntheticWeights),
 * whose self-attention is arranged by hand to pass errors through the KV cache. The speed targets
 * of the benchmarks are measured on it. (Before the trained embedded default shipped, this was the
 * embedded default.)
 */
export const EMBEDDED_TESTBED: Readonly<DitConfig> = Object.freeze({
  name: 'embedded-testbed',
  inChannels: 16,
  outChannels: 16,
  dim: 256,
  ffnDim: 1024,
  heads: 4,
  layers: 4,
  freqDim: 256,
  textDim: 64,
  textLen: 16,
  latentHeight: 16,
  latentWidth: 16,
  framesPerChunk: 3,
  chunks: 7,
  eps: 1e-6,
});

/**
 * The embedded default: a causal DiT trained on the moving-shapes videos (lib/data/shapes.ts; 32 x 32
 * RGB frames as 48 x 8 x 8 latents by a 4 x 4 space-to-depth), whose weights ship with the package
 * (models/embedded-default.safetensors, float16; load them with loadEmbeddedModel). It was trained
 * without step distillation, so it is not sampled with Self-Forcing's four shifted steps but with
 * four unshifted ones (500, 300, 150, 50; sigma = t / 1000) that start below pure noise: its estimate of a chunk at
 * sigma = 1 is the mean over positions (the background), which the loop's re-noising fades away;
 * told a lower noise level, it commits to something in the noise. The steps were chosen by the
 * object tracker's agreement on validation captions (README, "The trained embedded default").
 */
export const EMBEDDED_DEFAULT: Readonly<DitConfig> = Object.freeze({
  name: 'embedded-default',
  inChannels: 48,
  outChannels: 48,
  dim: 192,
  ffnDim: 512,
  heads: 4,
  layers: 4,
  freqDim: 256,
  textDim: 32,
  textLen: 8,
  latentHeight: 8,
  latentWidth: 8,
  framesPerChunk: 3,
  chunks: 7,
  eps: 1e-6,
  timesteps: Object.freeze([500, 300, 150, 50]),
  shift: 1,
});

/** The real sizes of Self-Forcing (Wan2.1-T2V-1.3B): for benchmarks, with synthetic weights. */
export const SELF_FORCING_1_3B: Readonly<DitConfig> = Object.freeze({
  name: 'self-forcing-1.3b',
  inChannels: 16,
  outChannels: 16,
  dim: 1536,
  ffnDim: 8960,
  heads: 12,
  layers: 30,
  freqDim: 256,
  textDim: 4096,
  textLen: 512,
  latentHeight: 60,
  latentWidth: 104,
  framesPerChunk: 3,
  chunks: 7,
  eps: 1e-6,
});

export const CONFIGS: Readonly<Record<string, Readonly<DitConfig>>> = Object.freeze({
  [EMBEDDED_DEFAULT.name]: EMBEDDED_DEFAULT,
  [EMBEDDED_TESTBED.name]: EMBEDDED_TESTBED,
  [SELF_FORCING_1_3B.name]: SELF_FORCING_1_3B,
});

/** Tokens per latent frame after the 1 x 2 x 2 patch embedding. */
export function tokensPerFrame(c: DitConfig): number {
  return (c.latentHeight / 2) * (c.latentWidth / 2);
}

/** Validates a configuration (for example one read from a checkpoint) and returns a frozen copy. */
export function checkConfig(value: unknown, name = 'config'): Readonly<DitConfig> {
  const c = expectObject(value, name);
  const int = (k: keyof DitConfig, min = 1) => expectInteger(c[k], `${name}.${k}`, { min });
  if (typeof c.name !== 'string' || c.name === '') throw new TypeError(`Expected a string for ${name}.name but received ${describe(c.name)}`);
  for (const k of ['inChannels', 'outChannels', 'dim', 'ffnDim', 'heads', 'layers', 'freqDim', 'textDim', 'textLen', 'latentHeight', 'latentWidth', 'framesPerChunk', 'chunks'] as const) int(k);
  const cfg = c as unknown as DitConfig;
  if (cfg.dim % cfg.heads !== 0) throw new RangeError(`Expected ${name}.dim (${cfg.dim}) to be a multiple of ${name}.heads (${cfg.heads})`);
  const headDim = cfg.dim / cfg.heads;
  if (headDim % 2 !== 0 || headDim < 6) throw new RangeError(`Expected an even head size of at least 6 (${name}.dim / ${name}.heads) but received ${headDim}`);
  if (cfg.freqDim % 2 !== 0) throw new RangeError(`Expected an even ${name}.freqDim but received ${cfg.freqDim}`);
  if (cfg.latentHeight % 2 || cfg.latentWidth % 2) throw new RangeError(`Expected even ${name}.latentHeight and ${name}.latentWidth (2 x 2 patches) but received ${cfg.latentHeight} x ${cfg.latentWidth}`);
  if (typeof cfg.eps !== 'number' || !(cfg.eps > 0) || !Number.isFinite(cfg.eps)) throw new RangeError(`Expected a positive ${name}.eps but received ${describe(cfg.eps)}`);
  if (cfg.timesteps !== undefined) {
    const t = cfg.timesteps as unknown;
    if (!Array.isArray(t) || t.length === 0 || !t.every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 1000)) {
      throw new RangeError(`Expected ${name}.timesteps to be a non-empty array of timesteps in [0, 1000] but received ${describe(t)}`);
    }
  }
  if (cfg.shift !== undefined && (typeof cfg.shift !== 'number' || !(cfg.shift > 0) || !Number.isFinite(cfg.shift))) {
    throw new RangeError(`Expected a positive ${name}.shift but received ${describe(cfg.shift)}`);
  }
  // A layer's KV cache (every chunk's tokens, dim wide) must fit a typed array.
  const cacheValues = cfg.framesPerChunk * cfg.chunks * tokensPerFrame(cfg) * cfg.dim;
  if (!(cacheValues <= 2 ** 31 - 1)) {
    throw new RangeError(`Expected ${name}.framesPerChunk * ${name}.chunks * tokens per frame * ${name}.dim (a layer's KV cache, ${cacheValues} values) to be below 2^31`);
  }
  const out = { ...cfg };
  if (cfg.timesteps !== undefined) out.timesteps = Object.freeze([...cfg.timesteps]);
  return Object.freeze(out);
}
