// Synthetic, deterministic weights for the causal DiT under Wan2.1's parameter names, and the
// prompt-to-context hashing of the embedded default. Outlier input columns are planted in about half
// the block linears, the way real DiT layers have a few input channels with much larger weights.
//
// Plain random weights make a poor autoregressive testbed: attention spreads evenly over the whole
// cache, so a chunk barely depends on the chunks before it, and an error made in an early chunk
// hardly reaches the rest of the video. A real video model continues the previous frames, so the
// self-attention here is given the structure such a model learns (see syntheticWeights): heads that
// attend to the same spatial position one chunk back (or, for one head, in every frame), a
// value/output path that carries the attended content, and modulation that favours that branch.
import { Tensor } from '../tensor/tensor.js';
import { type DitConfig, checkConfig } from './config.js';
import { ropeSplit } from './ops/rope.js';
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
 * The structure given to the self-attention of the synthetic model (measured on the embedded
 * default with `npm run bench -- testbed`; see syntheticWeights).
 */
const TESTBED = Object.freeze({
  /** RMS of the positional part of the q/k biases, against about 1 for the content part W y. */
  positional: 3,
  /** norm_q / norm_k weights of self-attention: larger logits make the softmax sharp. */
  qkNorm: 2.5,
  /** RoPE frequency pairs (the fastest) of each part that carry the positional pattern. */
  pairs: 3,
  /** Added to the self-attention gate: the attention branch dominates the residual stream. */
  attentionGate: 0.7,
  /** Multiplies the feed-forward gate: a smaller share of content computed token by token. */
  ffnGate: 0.5,
  /** Gain of cross_attn.o (0.5 for the other residual outputs): a smaller share for the text. */
  crossGain: 0.25,
});

/**
 * Seeded weights for `config` with Wan's names: fan-in scaled normal linears, small biases, norm
 * weights of 1 (2.5 for self-attention's q and k), modulation tables of std 1/sqrt(dim) (plus the gate
 * offsets below). In every other block linear (alternating), 2 to 12 input columns are multiplied by
 * 8 to 24, so that outlier detection has something real to find.
 *
 * The self-attention has the structure of a model that continues a video, so that every chunk
 * depends on the KV cache as in a trained ARVD (an error made in an early chunk reaches all later
 * ones): the q and k biases carry a positional pattern that, through RoPE, makes each head attend to
 * the same spatial position one chunk back (the last head: in every frame alike); self_attn.o is
 * the transpose of self_attn.v, so that the heads pass the attended tokens' features on (its planted
 * outlier columns are compensated in v's rows, keeping that map); the attention branch's gate is
 * raised, the feed-forward gate and the text's cross-attention output lowered.
 *
 * @example
 * const { tensors, plantedOutliers } = syntheticWeights(EMBEDDED_TESTBED, { seed: 0 });
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
    if (name.endsWith('.self_attn.o')) {
      // o = v^T: the value/output map v^T v is close to the identity (fan-in scaled v), so an
      // attended token's features arrive as they are, like the copying heads of trained models.
      const v = tensors[name.replace(/o$/, 'v.weight')];
      const w = new Float32Array(out * inp);
      for (let r = 0; r < out; r++) for (let j = 0; j < inp; j++) w[r * inp + j] = v.data[j * v.shape[1] + r];
      tensors[`${name}.weight`] = new Tensor('float32', [out, inp], w);
      tensors[`${name}.bias`] = normal([out], 0.02);
    } else {
      // Output projections and the second FFN layer start smaller, as residual branches usually do.
      linear(name, out, inp, name.endsWith('.cross_attn.o') ? TESTBED.crossGain : /ffn\.2$/.test(name) ? 0.5 : 1);
    }
    if (index % 2 === 1) {
      const w = tensors[`${name}.weight`].data;
      const count = 2 + rng.below(11);
      const cols = new Set<number>();
      while (cols.size < count) cols.add(rng.below(inp));
      const sorted = [...cols].sort((a, b) => a - b);
      for (const j of sorted) {
        const boost = 8 + rng.uniform() * 16;
        for (let r = 0; r < out; r++) w[r * inp + j] *= boost;
        // In o, the boost is undone in v's output channel j (small activations, large weights, as
        // in real outlier channels), so the copying map stays what it was.
        if (name.endsWith('.self_attn.o')) compensate(tensors, name.replace(/o$/, 'v'), j, boost);
      }
      plantedOutliers[name] = sorted;
    }
  });
  for (let b = 0; b < c.layers; b++) {
    const p = `blocks.${b}`;
    const modulation = normal([1, 6, c.dim], 1 / Math.sqrt(c.dim));
    // Rows: shift, scale, gate of self-attention; shift, scale, gate of the feed-forward.
    for (let j = 0; j < c.dim; j++) {
      modulation.data[2 * c.dim + j] += TESTBED.attentionGate;
      modulation.data[5 * c.dim + j] *= TESTBED.ffnGate;
    }
    tensors[`${p}.modulation`] = modulation;
    const positional = positionalPattern(c, rng);
    for (const [which, pattern] of [['q', positional.q], ['k', positional.k]] as const) {
      const bias = tensors[`${p}.self_attn.${which}.bias`].data;
      for (let j = 0; j < c.dim; j++) bias[j] += pattern[j];
    }
    for (const attn of ['self_attn', 'cross_attn']) {
      const gain = attn === 'self_attn' ? TESTBED.qkNorm : 1;
      tensors[`${p}.${attn}.norm_q.weight`] = constant([c.dim], gain);
      tensors[`${p}.${attn}.norm_k.weight`] = constant([c.dim], gain);
    }
    tensors[`${p}.norm3.weight`] = constant([c.dim], 1);
    tensors[`${p}.norm3.bias`] = constant([c.dim], 0);
  }
  tensors['head.modulation'] = normal([1, 2, c.dim], 1 / Math.sqrt(c.dim));
  linear('head.head', c.outChannels * 4, c.dim);
  return { tensors, plantedOutliers };
}

/** Divides output channel j of the linear `name` (its weight row and bias) by `by`. */
function compensate(tensors: Record<string, Tensor<'float32'>>, name: string, j: number, by: number): void {
  const w = tensors[`${name}.weight`];
  const inp = w.shape[1];
  for (let i = 0; i < inp; i++) w.data[j * inp + i] /= by;
  tensors[`${name}.bias`].data[j] /= by;
}

/**
 * Content-independent parts of the self-attention q and k biases, [dim] each. In every head the
 * fastest RoPE pairs of the height and width parts hold the same random complex numbers in q and k,
 * so the logit, sum of |a|^2 cos(delta w) over those pairs, peaks where the key sits at the query's
 * spatial position. In all heads but the last, the frame part's pairs in q are turned back by
 * framesPerChunk * w, so the logit peaks at the frame one chunk back: each chunk continues the one
 * before it. The last head has no frame preference and reads the same position in every frame
 * alike, the first chunk's included. The pattern is scaled to RMS TESTBED.positional.
 */
function positionalPattern(c: DitConfig, rng: Rng): { q: Float32Array; k: Float32Array } {
  const headDim = c.dim / c.heads;
  const [framePart, spacePart] = ropeSplit(headDim);
  const q = new Float32Array(c.dim);
  const k = new Float32Array(c.dim);
  const put = (at: number, part: number, lag: number, amplitude: number) => {
    for (let i = 0; i < Math.min(TESTBED.pairs, part / 2); i++) {
      const w = Math.pow(10000, (-2 * i) / part); // RoPE's frequency of pair i in a part of `part` elements
      const phase = rng.uniform() * 2 * Math.PI;
      k[at + 2 * i] = amplitude * Math.cos(phase);
      k[at + 2 * i + 1] = amplitude * Math.sin(phase);
      q[at + 2 * i] = amplitude * Math.cos(phase - lag * w);
      q[at + 2 * i + 1] = amplitude * Math.sin(phase - lag * w);
    }
  };
  for (let h = 0; h < c.heads; h++) {
    const base = h * headDim;
    // Equal shares of the pattern for position (height and width together) and for the frame.
    put(base + framePart, spacePart, 0, Math.SQRT1_2);
    put(base + framePart + spacePart, spacePart, 0, Math.SQRT1_2);
    if (h < c.heads - 1 || c.heads === 1) put(base, framePart, c.framesPerChunk, 1);
  }
  let sum = 0;
  for (const v of k) sum += v * v;
  const scale = TESTBED.positional / Math.sqrt(sum / c.dim);
  for (let j = 0; j < c.dim; j++) {
    q[j] *= scale;
    k[j] *= scale;
  }
  return { q, k };
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
