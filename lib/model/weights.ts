// Synthetic, deterministic weights for the causal DiT under Wan2.1's parameter names, and the
// prompt-to-context hashing of the embedded default. Outlier input columns are planted in about half
// the block linears, the way real DiT layers have a few input channels with much larger weights.
import { Tensor } from '../tensor/tensor.js';
import { type DitConfig, checkConfig } from './config.js';
import { Rng, hashString } from './random.js';

export interface SyntheticWeights {
  tensors: Record<string, Tensor<'float32'>>;
  /** For each linear with planted outliers (name without '.weight'): the boosted input columns, ascending. */
  plantedOutliers: Record<string, number[]>;
}

/** The names and [out, in] shapes of every linear layer of the blocks (the ones Q-ARVD quantizes). */
export function blockLinears(config: DitConfig): { name: string; out: number; in: number }[] {
  const c = config;
  const list: { name: string; out: number; in: number }[] = [];
  for (let b = 0; b < c.layers; b++) {
    for (const attn of ['self_attn', 'cross_attn']) {
      for (const p of ['q', 'k', 'v', 'o']) list.push({ name: `blocks.${b}.${attn}.${p}`, out: c.dim, in: c.dim });
    }
    list.push({ name: `blocks.${b}.ffn.0`, out: c.ffnDim, in: c.dim });
    list.push({ name: `blocks.${b}.ffn.2`, out: c.dim, in: c.ffnDim });
  }
  return list;
}

/**
 * Seeded weights for `config` with Wan's names: fan-in scaled normal linears, small biases, unit norm
 * weights, modulation tables of std 1/sqrt(dim). In every other block linear (alternating), 2 to 12
 * input columns are multiplied by 8 to 24, so that outlier detection has something real to find.
 *
 * @example
 * const { tensors, plantedOutliers } = syntheticWeights(EMBEDDED_DEFAULT, { seed: 0 });
 * tensors['blocks.0.self_attn.q.weight'].shape; // [256, 256]
 */
export function syntheticWeights(config: DitConfig, options: { seed?: number } = {}): SyntheticWeights {
  const c = checkConfig(config);
  const rng = new Rng(options.seed ?? 0);
  const tensors: Record<string, Tensor<'float32'>> = {};
  const plantedOutliers: Record<string, number[]> = {};
  const normal = (shape: number[], std: number) => new Tensor('float32', shape, rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1)), std));
  const constant = (shape: number[], v: number) => new Tensor('float32', shape, new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(v));
  const linear = (name: string, out: number, inp: number, gain = 1) => {
    tensors[`${name}.weight`] = normal([out, inp], gain / Math.sqrt(inp));
    tensors[`${name}.bias`] = normal([out], 0.02);
  };

  const patchIn = c.inChannels * 4;
  tensors['patch_embedding.weight'] = normal([c.dim, c.inChannels, 1, 2, 2], 1 / Math.sqrt(patchIn));
  tensors['patch_embedding.bias'] = normal([c.dim], 0.02);
  linear('text_embedding.0', c.dim, c.textDim);
  linear('text_embedding.2', c.dim, c.dim);
  linear('time_embedding.0', c.dim, c.freqDim);
  linear('time_embedding.2', c.dim, c.dim);
  linear('time_projection.1', 6 * c.dim, c.dim, 0.5);

  blockLinears(c).forEach(({ name, out, in: inp }, index) => {
    // Output projections and the second FFN layer start smaller, as residual branches usually do.
    const gain = /\.o$|ffn\.2$/.test(name) ? 0.5 : 1;
    linear(name, out, inp, gain);
    if (index % 2 === 1) {
      const w = tensors[`${name}.weight`].data;
      const count = 2 + rng.below(11);
      const cols = new Set<number>();
      while (cols.size < count) cols.add(rng.below(inp));
      const sorted = [...cols].sort((a, b) => a - b);
      for (const j of sorted) {
        const boost = 8 + rng.uniform() * 16;
        for (let r = 0; r < out; r++) w[r * inp + j] *= boost;
      }
      plantedOutliers[name] = sorted;
    }
  });
  for (let b = 0; b < c.layers; b++) {
    tensors[`blocks.${b}.modulation`] = normal([1, 6, c.dim], 1 / Math.sqrt(c.dim));
    for (const attn of ['self_attn', 'cross_attn']) {
      tensors[`blocks.${b}.${attn}.norm_q.weight`] = constant([c.dim], 1);
      tensors[`blocks.${b}.${attn}.norm_k.weight`] = constant([c.dim], 1);
    }
    tensors[`blocks.${b}.norm3.weight`] = constant([c.dim], 1);
    tensors[`blocks.${b}.norm3.bias`] = constant([c.dim], 0);
  }
  tensors['head.modulation'] = normal([1, 2, c.dim], 1 / Math.sqrt(c.dim));
  linear('head.head', c.outChannels * 4, c.dim);
  return { tensors, plantedOutliers };
}

/**
 * A prompt as a text context [textLen, textDim], deterministically: each word (lower-cased) is hashed
 * to its own unit-variance embedding, so prompts that share words share context rows; positions past
 * the last word are zero, as Wan pads T5 outputs.
 *
 * @example
 * const context = encodePrompt('a red fox running through snow', EMBEDDED_DEFAULT);
 */
export function encodePrompt(prompt: string, config: Pick<DitConfig, 'textLen' | 'textDim'>): Tensor<'float32'> {
  if (typeof prompt !== 'string') throw new TypeError(`Expected a string for prompt but received ${typeof prompt}`);
  const words = prompt.toLowerCase().split(/[^\p{L}\p{N}]+/u).filter(Boolean).slice(0, config.textLen);
  const out = new Float32Array(config.textLen * config.textDim);
  words.forEach((word, i) => {
    const rng = new Rng(hashString(word));
    rng.fillNormal(out.subarray(i * config.textDim, (i + 1) * config.textDim));
  });
  return new Tensor('float32', [config.textLen, config.textDim], out);
}
