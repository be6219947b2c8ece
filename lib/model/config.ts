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
}

/**
 * The embedded default: small enough that a 7-chunk video takes about a second on 2 CPU cores,
 * with the same structure as the real model (and deterministic seeded weights, see syntheticWeights).
 */
export const EMBEDDED_DEFAULT: Readonly<DitConfig> = Object.freeze({
  name: 'embedded-default',
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
  // A layer's KV cache (every chunk's tokens, dim wide) must fit a typed array.
  const cacheValues = cfg.framesPerChunk * cfg.chunks * tokensPerFrame(cfg) * cfg.dim;
  if (!(cacheValues <= 2 ** 31 - 1)) {
    throw new RangeError(`Expected ${name}.framesPerChunk * ${name}.chunks * tokens per frame * ${name}.dim (a layer's KV cache, ${cacheValues} values) to be below 2^31`);
  }
  return Object.freeze({ ...cfg });
}
