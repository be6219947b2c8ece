// The chunk scheduler: drives an autoregressive model chunk by chunk and decides, for every pass,
// which layers run (full precision or one of several quantized sets), so that quantization can be
// restricted to one chunk (for sensitivity) or changed per chunk (for example more bits for chunk 0).
import type { Linear } from '../gemm/linear.js';
import type { CausalDit } from '../model/dit.js';
import { generate, type GenerateOptions, type PassInfo } from '../model/sampling.js';
import type { Tensor } from '../tensor/tensor.js';
import { describe, expectInteger } from '../util/validate.js';

/** Layers by name (block linears), e.g. the quantized replacements of some or all of them. */
export type LayerSet = Readonly<Record<string, Linear>>;

/** Chooses the layers of a pass: a set to install, or null for the model's own (full-precision) layers. */
export type LayerPolicy = (info: PassInfo) => LayerSet | null;

/**
 * Installs the layers a policy chooses before each pass of a generation, tells observers what runs
 * (`current`), and puts the model's own layers back afterwards.
 *
 * @example
 * const scheduler = new ChunkScheduler(model, ChunkScheduler.onlyChunk(2, quantizedLayers));
 * const video = await scheduler.generate({ prompt: 'a red fox', seed: 1 }); // quantized only in chunk 2
 */
export class ChunkScheduler {
  readonly model: CausalDit;
  readonly policy: LayerPolicy;
  /** The pass running now (undefined between generations). */
  current: PassInfo | undefined;
  #installed: LayerSet | null = null;
  #original = new Map<string, Linear>();

  constructor(model: CausalDit, policy: LayerPolicy) {
    if (typeof policy !== 'function') throw new TypeError(`Expected a layer policy function for policy but received ${describe(policy)}`);
    this.model = model;
    this.policy = policy;
  }

  /** Quantized layers in every pass of every chunk. */
  static everyChunk(layers: LayerSet): LayerPolicy {
    return () => layers;
  }

  /** Quantized layers only while chunk `chunk` is generated (its denoising steps and its cache pass). */
  static onlyChunk(chunk: number, layers: LayerSet): LayerPolicy {
    expectInteger(chunk, 'chunk', { min: 0 });
    return (info) => (info.chunk === chunk ? layers : null);
  }

  /** One set per chunk (null: full precision); chunks past the list use its last entry. */
  static perChunk(sets: (LayerSet | null)[]): LayerPolicy {
    if (!Array.isArray(sets) || sets.length === 0) throw new TypeError(`Expected a non-empty array of layer sets for sets but received ${describe(sets)}`);
    return (info) => sets[Math.min(info.chunk, sets.length - 1)];
  }

  /** Runs `generate` with this scheduler's hooks (in front of any given ones); the model's own layers are restored after. */
  async generate(options: GenerateOptions): Promise<Tensor<'float32'>> {
    try {
      return await generate(this.model, {
        ...options,
        beforePass: async (info) => {
          this.current = info;
          this.#install(this.policy(info));
          await options.beforePass?.(info);
        },
      });
    } finally {
      this.#install(null);
      this.current = undefined;
    }
  }

  #install(set: LayerSet | null): void {
    if (set === this.#installed) return;
    // Back to the model's own layers, then the new set on top.
    for (const [name, layer] of this.#original) this.model.setLinear(name, layer);
    this.#original.clear();
    if (set) {
      for (const [name, layer] of Object.entries(set)) {
        this.#original.set(name, this.model.linear(name));
        this.model.setLinear(name, layer);
      }
    }
    this.#installed = set;
  }
}
