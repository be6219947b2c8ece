// Wan2.1 checkpoints as they ship (diffusion_pytorch_model.safetensors, or a Self-Forcing state dict
// after its prefix is stripped): Wan's parameter names, no configuration. The configuration follows
// from the tensor shapes, except the attention heads (from Wan's known sizes, or given) and what the
// weights cannot say (context length, latent size, chunking), which default to Self-Forcing's.
import { describe } from '../util/validate.js';
import { type DitConfig, SELF_FORCING_1_3B, checkConfig } from './config.js';

/** Attention heads of Wan2.1's released sizes, by hidden size (every Wan head is 128 wide). */
export const WAN_HEADS: Readonly<Record<number, number>> = Object.freeze({ 1536: 12, 5120: 40 });

/** Names of Wan2.1's released text-to-video models, by hidden size and blocks. */
const WAN_NAMES: Readonly<Record<string, string>> = Object.freeze({ '1536x30': 'wan2.1-t2v-1.3b', '5120x40': 'wan2.1-t2v-14b' });

/** What the weights do not determine; Self-Forcing's settings (text_len 512, 480x832 video as 21 latent frames of 60x104, chunks of 3). */
const UNSEEN_DEFAULTS = Object.freeze({
  textLen: SELF_FORCING_1_3B.textLen,
  latentHeight: SELF_FORCING_1_3B.latentHeight,
  latentWidth: SELF_FORCING_1_3B.latentWidth,
  framesPerChunk: SELF_FORCING_1_3B.framesPerChunk,
  chunks: SELF_FORCING_1_3B.chunks,
  eps: SELF_FORCING_1_3B.eps,
});

/** Shapes by tensor name (from a safetensors header, a state dict, or tensors). */
export type ShapeTable = ReadonlyMap<string, readonly number[]> | Readonly<Record<string, readonly number[]>>;

/** Whether the names look like a Wan DiT (its patch embedding and blocks under Wan's names). */
export function looksLikeWan(shapes: ShapeTable): boolean {
  const get = shapeGetter(shapes);
  return get('patch_embedding.weight') !== undefined && get('blocks.0.self_attn.q.weight') !== undefined;
}

/**
 * The configuration of a Wan-named checkpoint from its tensor shapes: dim and input channels from
 * patch_embedding, output channels from head.head, the FFN size from blocks.0.ffn.0, the text and
 * frequency widths from text_embedding.0 and time_embedding.0, blocks by counting. Heads come from
 * `given.heads` or Wan's known sizes (1536: 12, 5120: 40); context length, latent size, frames per
 * chunk and chunks from `given`, else Self-Forcing's (512; 60 x 104; 3; 7). A given value that
 * contradicts the shapes is an error.
 *
 * @example
 * const f = await openSafetensors('diffusion_pytorch_model.safetensors');
 * const config = inferWanConfig(new Map(f.entries.map((e) => [e.name, e.shape]))); // dim 1536, 30 blocks, 12 heads
 */
export function inferWanConfig(shapes: ShapeTable, given: Partial<DitConfig> = {}, source = 'the checkpoint'): Readonly<DitConfig> {
  const get = shapeGetter(shapes);
  const need = (name: string, rank: number): readonly number[] => {
    const s = get(name);
    if (!s) throw new RangeError(`${source} has no ${name}: not a Wan2.1 DiT under Wan's parameter names${hasPrefixedNames(shapes) ? ' (its names carry a prefix: convert it with qarvd convert, which strips it)' : ''}`);
    if (s.length !== rank) throw new RangeError(`Expected ${name} of ${source} to have rank ${rank} but received [${s.join(', ')}]`);
    return s;
  };
  const patch = need('patch_embedding.weight', 5);
  if (patch[2] !== 1 || patch[3] !== 2 || patch[4] !== 2) throw new RangeError(`${source}: patch_embedding.weight [${patch.join(', ')}] is not a 1 x 2 x 2 patch (Wan2.1 text-to-video)`);
  const dim = patch[0];
  const head = need('head.head.weight', 2);
  if (head[0] % 4 !== 0) throw new RangeError(`${source}: head.head.weight [${head.join(', ')}] does not produce 1 x 2 x 2 patches`);
  let layers = 0;
  while (get(`blocks.${layers}.self_attn.q.weight`)) layers++;
  const inferred: Omit<DitConfig, 'heads' | 'name' | keyof typeof UNSEEN_DEFAULTS> = {
    dim,
    inChannels: patch[1],
    outChannels: head[0] / 4,
    ffnDim: need('blocks.0.ffn.0.weight', 2)[0],
    textDim: need('text_embedding.0.weight', 2)[1],
    freqDim: need('time_embedding.0.weight', 2)[1],
    layers,
  };
  for (const [k, v] of Object.entries(inferred)) {
    const g = given[k as keyof DitConfig];
    if (g !== undefined && g !== v) throw new RangeError(`Expected ${k} ${describe(g)} to match ${source}, whose tensors say ${v}`);
  }
  const heads = given.heads ?? WAN_HEADS[dim];
  if (heads === undefined) {
    throw new RangeError(`${source}: the attention heads of a Wan DiT of width ${dim} cannot be read from its tensors (known widths: ${Object.entries(WAN_HEADS).map(([d, h]) => `${d} -> ${h} heads`).join(', ')}); give heads`);
  }
  const name = given.name ?? WAN_NAMES[`${dim}x${layers}`] ?? `wan-${dim}x${layers}`;
  return checkConfig({ ...UNSEEN_DEFAULTS, ...given, ...inferred, heads, name }, 'config');
}

function shapeGetter(shapes: ShapeTable): (name: string) => readonly number[] | undefined {
  if (shapes instanceof Map) return (n) => shapes.get(n);
  const record = shapes as Readonly<Record<string, readonly number[]>>;
  return (n) => (Object.hasOwn(record, n) ? record[n] : undefined);
}

function hasPrefixedNames(shapes: ShapeTable): boolean {
  const names = shapes instanceof Map ? [...shapes.keys()] : Object.keys(shapes);
  return names.some((n) => /\.patch_embedding\.weight$/.test(n));
}
