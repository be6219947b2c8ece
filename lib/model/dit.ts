// The causal video DiT of Wan2.1 as Self-Forcing runs it: patch embedding, sinusoidal time embedding
// projected to six modulation vectors, blocks of (self-attention with RMSNorm on q and k, 3-D RoPE
// and a chunk-causal KV cache; cross-attention to the text context; GELU feed-forward) with gated
// residuals, a modulated head and unpatchify. Every linear layer is a `Linear`, so FP32 and
// quantized layers can sit side by side; the blocks' linears are the ones Q-ARVD quantizes.
import { Tensor, checkAttached, expectTensor } from '../tensor/tensor.js';
import { toFloat32 } from '../tensor/convert.js';
import { LinearF32, type Linear } from '../gemm/linear.js';
import { gatedResidual, layerNorm, rmsNorm } from './ops/norm.js';
import { gelu, silu } from './ops/activation.js';
import { rope3d } from './ops/rope.js';
import { attention, expectPrecision, type AttentionPrecision } from './ops/attention.js';
import { KvCache, KV_CACHE_DTYPES, type KvCacheDtype } from './ops/kv-cache.js';
import { type DitConfig, checkConfig, tokensPerFrame } from './config.js';
import { blockLinears, syntheticWeights } from './weights.js';
import { describe, expectFiniteNumber, expectInteger, expectObject, expectOneOf } from '../util/validate.js';
import { ForwardProfile, canRunNative, disposeWorkspace, nativeForward } from './native_pass.js';
import type { NativeHandle } from '../gemm/native.js';

/** Linears outside the blocks: they stay in full precision (as in the reference). */
const EMBEDDING_LINEARS = ['patch_embedding', 'text_embedding.0', 'text_embedding.2', 'time_embedding.0', 'time_embedding.2', 'time_projection.1', 'head.head'];

/** Options of {@link CausalDit.fromTensors}. */
export interface FromTensorsOptions {
  /** Prebuilt block linears by name (e.g. quantized layers); they replace `<name>.weight`/`.bias`. */
  layers?: Record<string, Linear>;
}

/** Checks `options.layers`: block linear names, each a layer with that linear's features. */
function givenLayers(c: DitConfig, value: unknown): Map<string, Linear> {
  const out = new Map<string, Linear>();
  if (value === undefined) return out;
  const layers = expectObject(value, 'options.layers');
  const shapes = new Map(blockLinears(c).map((l) => [l.name, l]));
  for (const [name, layer] of Object.entries(layers)) {
    const b = shapes.get(name);
    if (!b) throw new RangeError(`Expected block linear names (such as blocks.0.ffn.0) in options.layers but received ${describe(name)}`);
    const l = layer as Partial<Linear> | null;
    if (!l || typeof l.forward !== 'function' || typeof l.forwardSync !== 'function' || l.inFeatures !== b.in || l.outFeatures !== b.out) {
      throw new TypeError(`Expected a Linear of ${b.in} -> ${b.out} features for options.layers['${name}'] but received ${describe(layer)}`);
    }
    out.set(name, layer as Linear);
  }
  return out;
}

/** Options of {@link CausalDit.createState}. */
export interface StateOptions {
  /** How the KV caches store keys and values: 'fp32' (default), 'bf16' or 'int8' (see KvCacheDtype). */
  kvCache?: KvCacheDtype;
}

/** Per-video state: each block's KV cache, the cross-attention keys/values of the context, and how many tokens are committed. */
export class DitState {
  readonly caches: KvCache[];
  /** Tokens of finished chunks in every cache (the cache pass commits a chunk). */
  committedTokens = 0;
  /** Frames already committed: the start frame of the next chunk for RoPE. */
  committedFrames = 0;
  crossKv: ({ k: Tensor<'float32'>; v: Tensor<'float32'> } | undefined)[];
  /** The model's cross-attention layer version the cached keys/values were computed with. */
  crossVersion = -1;
  /** Set it to a {@link ForwardProfile} to learn where the passes with this state spend their time. */
  profile?: ForwardProfile;
  /** @internal The native pass's buffers, kept from pass to pass. */
  nativeWorkspace?: NativeHandle;

  constructor(config: DitConfig, maxFrames: number, options: StateOptions = {}) {
    config = checkConfig(config);
    expectInteger(maxFrames, 'maxFrames', { min: 1 });
    const headDim = config.dim / config.heads;
    const maxTokens = maxFrames * tokensPerFrame(config);
    const o = expectObject(options, 'options');
    const storage = o.kvCache === undefined ? 'fp32' : expectOneOf(o.kvCache, 'options.kvCache', KV_CACHE_DTYPES);
    this.caches = Array.from({ length: config.layers }, () => new KvCache({ maxTokens, heads: config.heads, headDim, storage }));
    this.crossKv = new Array(config.layers).fill(undefined);
  }

  /** Forgets the cached context keys/values, e.g. after the cross-attention layers were swapped. */
  invalidateCrossAttention(): void {
    this.crossKv.fill(undefined);
  }

  /** Bytes held by the KV caches. */
  get cacheBytes(): number {
    return this.caches.reduce((s, c) => s + c.memory.allocatedBytes, 0);
  }

  /** Frees the native pass's buffers now (idempotent); a later pass with this state allocates them again. */
  dispose(): void {
    if (this.nativeWorkspace) disposeWorkspace(this.nativeWorkspace);
    this.nativeWorkspace = undefined;
  }
}

export interface ForwardOptions {
  /** Model timestep (0..1000) of this pass, shared by the chunk's frames. */
  timestep: number;
  /** The text context after text_embedding ([textLen, dim]), from {@link CausalDit.embedContext}. */
  context: Tensor<'float32'>;
  state: DitState;
  /** Commit this pass's keys and values (the cache pass after a chunk's last step). Default false. */
  commit?: boolean;
  /** Precision of self- and cross-attention: 'fp32' (default), 'bf16' or 'int8' (see AttentionPrecision). */
  attention?: AttentionPrecision;
  /**
   * How the pass runs: 'native' as one job in the addon (every linear must be a LinearF32 or a
   * QuantizedLinear/DualScaleLinear in 'fast' mode), 'ops' one operation at a time from TypeScript
   * (any Linear: observers, emulated layers, your own), 'auto' (default) native when it can. Both
   * give the same floats, bit for bit.
   */
  execution?: 'auto' | 'native' | 'ops';
}

/**
 * The causal DiT with Wan2.1's parameter names. Build it from tensors (for example a safetensors
 * file) or from seeded synthetic weights; swap any block linear for a quantized one with setLinear.
 *
 * @example
 * const model = CausalDit.synthetic(EMBEDDED_TESTBED, { seed: 0 });
 * const state = model.createState();
 * const ctx = await model.embedContext(encodePrompt('a red fox', model.config));
 * const flow = await model.forward(noisyChunk, { timestep: 1000, context: ctx, state }); // [3, 16, 16, 16]
 */
export class CausalDit {
  readonly config: Readonly<DitConfig>;
  readonly #linears = new Map<string, Linear>();
  readonly #params = new Map<string, Tensor<'float32'>>();
  /**
   * The float weights the model was built from (referenced, not copied, in their own dtype: a bf16
   * checkpoint stays bf16 here and is widened when asked for): what quantization starts from.
   */
  readonly #source = new Map<string, { weight: Tensor; bias: Tensor }>();
  /** The FP32 layers the model packed itself (dispose() frees them). */
  readonly #built: LinearF32[] = [];
  readonly #ones: Tensor<'float32'>;
  /** Bumped whenever a cross-attention k or v layer is replaced, so states recompute the context's keys/values. */
  #crossVersion = 0;

  private constructor(config: Readonly<DitConfig>) {
    this.config = config;
    this.#ones = new Tensor('float32', [1, config.dim], new Float32Array(config.dim).fill(1));
  }

  /** Seeded synthetic weights (see syntheticWeights), with planted outlier columns. */
  static synthetic(config: DitConfig, options: { seed?: number } = {}): CausalDit {
    return CausalDit.fromTensors(config, syntheticWeights(config, options).tensors);
  }

  /**
   * A model from tensors under Wan's names (every name must be present with its shape; float16 and
   * bfloat16 tensors, as Wan checkpoints ship, are packed as float32 and kept as they are for
   * floatWeights(), which widens them). Linears become FP32 layers
   * (LinearF32, weights packed once), except the block linears given in `options.layers` (e.g.
   * quantized ones read from a checkpoint): those need no `<name>.weight`/`.bias` in `tensors`, and
   * the model keeps no float weights for them.
   *
   * @example
   * const model = CausalDit.fromTensors(config, tensors, { layers: { 'blocks.0.ffn.0': quantizedLayer } });
   */
  static fromTensors(config: DitConfig, tensors: Record<string, Tensor>, options: FromTensorsOptions = {}): CausalDit {
    const c = checkConfig(config);
    expectObject(tensors, 'tensors');
    const layers = givenLayers(c, expectObject(options, 'options').layers);
    const model = new CausalDit(c);
    const float: Record<string, Tensor> = {};
    for (const [name, shape] of Object.entries(expectedShapes(c))) {
      if (layers.has(name.replace(/\.(weight|bias)$/, ''))) continue;
      const t = tensors[name];
      if (!(t instanceof Tensor)) throw new RangeError(`tensors is missing ${name} (shape [${shape.join(', ')}])`);
      if (!['float32', 'float16', 'bfloat16'].includes(t.dtype)) throw new TypeError(`Expected tensors['${name}'] to be float32, float16 or bfloat16 but received ${t.dtype}`);
      if (t.shape.join() !== shape.join()) throw new RangeError(`Expected tensors['${name}'] to have shape [${shape.join(', ')}] but received [${t.shape.join(', ')}]`);
      float[name] = t;
    }
    const get = (n: string) => float[n];
    for (const name of [...EMBEDDING_LINEARS, ...blockLinears(c).map((l) => l.name)]) {
      const given = layers.get(name);
      if (given) {
        model.#linears.set(name, given);
        continue;
      }
      let w = get(`${name}.weight`);
      if (name === 'patch_embedding') w = w.reshape([c.dim, c.inChannels * 4]);
      // Packed from float32; a 16-bit source is widened for the packing only.
      const built = LinearF32.fromFloat(toFloat32(w), { bias: toFloat32(get(`${name}.bias`)) });
      model.#linears.set(name, built);
      model.#built.push(built);
      model.#source.set(name, { weight: w, bias: get(`${name}.bias`) });
    }
    for (const [name, shape] of Object.entries(expectedShapes(c))) {
      const base = name.replace(/\.(weight|bias)$/, '');
      if (!model.#linears.has(base)) model.#params.set(name, toFloat32(get(name)).reshape([shape.reduce((a, b) => a * b, 1)]));
    }
    return model;
  }

  /** Names of the block linears (the layers quantization replaces), e.g. 'blocks.0.self_attn.q'. */
  get blockLinearNames(): string[] {
    return blockLinears(this.config).map((l) => l.name);
  }

  /** The linear layer called `name` (block linears and the full-precision embedding/head linears). */
  linear(name: string): Linear {
    const l = this.#linears.get(name);
    if (!l) throw new RangeError(`Expected a linear layer name such as blocks.0.ffn.0 but received ${describe(name)}`);
    return l;
  }

  /** The full-precision weight [out, in] and bias of a linear, as the model was built (float32; widened from bf16/fp16 sources on each call). */
  floatWeights(name: string): { weight: Tensor<'float32'>; bias: Tensor<'float32'> } {
    const s = this.#source.get(name);
    if (!s && this.#linears.has(name)) {
      throw new RangeError(`${name} was loaded as a prebuilt (quantized) layer: the model has no float weights for it`);
    }
    if (!s) throw new RangeError(`Expected a linear layer name such as blocks.0.ffn.0 but received ${describe(name)}`);
    return { weight: toFloat32(s.weight), bias: toFloat32(s.bias) };
  }

  /** Replaces a block linear (for example with a QuantizedLinear); features must match. */
  setLinear(name: string, layer: Linear): void {
    const old = this.linear(name);
    if (!this.blockLinearNames.includes(name)) throw new RangeError(`Only block linears are replaced; ${name} stays in full precision`);
    if (!layer || layer.inFeatures !== old.inFeatures || layer.outFeatures !== old.outFeatures) {
      throw new RangeError(`Expected a layer of ${old.inFeatures} -> ${old.outFeatures} features for ${name} but received ${describe(layer)}`);
    }
    if (layer === old) return;
    this.#linears.set(name, layer);
    if (/\.cross_attn\.[kv]$/.test(name)) this.#crossVersion++;
  }

  /**
   * Frees the native weights of the FP32 layers the model built itself, now (idempotent; layers
   * given through options.layers or setLinear stay their owner's). The model is unusable afterwards.
   */
  dispose(): void {
    for (const l of this.#built) l.dispose();
  }

  /** Whether `name` is a non-linear parameter (see param). */
  hasParam(name: string): boolean {
    return this.#params.has(name);
  }

  /** A full-precision non-linear parameter (modulation tables, norm weights), flattened. */
  param(name: string): Tensor<'float32'> {
    const p = this.#params.get(name);
    if (!p) throw new RangeError(`Unknown parameter ${describe(name)}`);
    return p;
  }

  /** Bytes of all weights: each linear's packed weights plus the other parameters. */
  get weightBytes(): number {
    let bytes = 0;
    for (const l of this.#linears.values()) bytes += l.weightBytes + (l.bias ? l.bias.byteLength : 0);
    for (const p of this.#params.values()) bytes += p.data.byteLength;
    return bytes;
  }

  /** Bytes of the block linears only (what quantization shrinks). */
  get blockLinearBytes(): number {
    return this.blockLinearNames.reduce((s, n) => {
      const l = this.linear(n);
      return s + l.weightBytes + (l.bias ? l.bias.byteLength : 0);
    }, 0);
  }

  /**
   * Fresh per-video state with room for `maxFrames` latent frames (default: the whole video), its KV
   * caches stored as `options.kvCache` says.
   *
   * @example
   * const state = model.createState(undefined, { kvCache: 'int8' }); // about 0.27x the cache bytes
   */
  createState(maxFrames = this.config.framesPerChunk * this.config.chunks, options: StateOptions = {}): DitState {
    expectInteger(maxFrames, 'maxFrames', { min: 1 });
    return new DitState(this.config, maxFrames, options);
  }

  /**
   * text_embedding (Linear, GELU tanh, Linear) over a context [tokens, textDim] of at most textLen
   * tokens (float32, or float16/bfloat16 text-encoder output, widened exactly). A shorter context is
   * zero-padded to textLen first, as Wan pads its T5 features: the padding rows pass through
   * text_embedding too and the cross-attention attends to them.
   */
  async embedContext(context: Tensor): Promise<Tensor<'float32'>> {
    const c = this.config;
    if (!(context instanceof Tensor) || !['float32', 'float16', 'bfloat16'].includes(context.dtype) || context.rank !== 2 || context.shape[1] !== c.textDim) {
      throw new RangeError(`Expected a float context of shape [tokens, ${c.textDim}] but received ${describe(context)}${context instanceof Tensor ? ` ${context.dtype} [${context.shape.join(', ')}]` : ''}`);
    }
    checkAttached(context, 'context');
    if (context.shape[0] > c.textLen) throw new RangeError(`Expected a context of at most textLen = ${c.textLen} tokens but received ${context.shape[0]}`);
    const padded = new Float32Array(c.textLen * c.textDim);
    padded.set(toFloat32(context).data);
    const h = await this.linear('text_embedding.0').forward(new Tensor('float32', [c.textLen, c.textDim], padded));
    await gelu(h, { out: h });
    return this.linear('text_embedding.2').forward(h);
  }

  /**
   * One pass over a chunk of latents x [frames, channels, h, w]: returns the predicted flow
   * (noise - x0) of the same shape. The chunk's keys/values are appended to the caches after the
   * committed tokens (replacing an earlier step's), and kept for good when `commit` is set.
   */
  async forward(x: Tensor, options: ForwardOptions): Promise<Tensor<'float32'>> {
    const c = this.config;
    const o = expectObject(options, 'options') as unknown as ForwardOptions;
    const timestep = expectFiniteNumber(o.timestep, 'options.timestep', { min: 0, max: 1000 });
    const precision = expectPrecision(o.attention, 'options.attention');
    if (!(o.state instanceof DitState) || o.state.caches.length !== c.layers) throw new TypeError(`Expected options.state from createState() but received ${describe(o.state)}`);
    if (!(o.context instanceof Tensor) || o.context.rank !== 2 || o.context.shape[1] !== c.dim) {
      throw new RangeError(`Expected options.context of shape [tokens, ${c.dim}] (from embedContext) but received ${describe(o.context)}`);
    }
    if (!(x instanceof Tensor) || x.dtype !== 'float32' || x.rank !== 4 || x.shape[1] !== c.inChannels || x.shape[2] !== c.latentHeight || x.shape[3] !== c.latentWidth) {
      throw new RangeError(`Expected x of shape [frames, ${c.inChannels}, ${c.latentHeight}, ${c.latentWidth}] (float32) but received ${describe(x)}${x instanceof Tensor ? ` [${x.shape.join(', ')}]` : ''}`);
    }
    checkAttached(o.context, 'options.context');
    checkAttached(x, 'x');
    const frames = x.shape[0];
    const state = o.state;
    const tokens = frames * tokensPerFrame(c);
    if (state.committedTokens + tokens > state.caches[0].maxTokens) {
      throw new RangeError(`The KV cache holds ${state.caches[0].maxTokens} tokens; ${state.committedTokens} are committed and this chunk needs ${tokens} more`);
    }
    if (state.crossVersion !== this.#crossVersion) {
      state.invalidateCrossAttention();
      state.crossVersion = this.#crossVersion;
    }
    const execution = expectOneOf(o.execution ?? 'auto', 'options.execution', ['auto', 'native', 'ops']);
    const native = execution !== 'ops' && canRunNative(this);
    if (execution === 'native' && !native) {
      throw new TypeError("Expected every linear of the model to be a LinearF32 or a fast QuantizedLinear/DualScaleLinear for options.execution 'native'; use 'ops' or 'auto' for other layers");
    }
    const sinusoid = sinusoidalEmbedding(c.freqDim, timestep);
    const flow = native ? await nativeForward(this, state, x as Tensor<'float32'>, sinusoid, o.context as Tensor<'float32'>, precision) : await this.#forwardOps(x, sinusoid, o.context, state, precision);
    if (o.commit) {
      state.committedTokens += tokens;
      state.committedFrames += frames;
    }
    return flow;
  }

  /** The pass one operation at a time (any Linear); the reference of the native pass. */
  async #forwardOps(x: Tensor, sinusoid: Tensor<'float32'>, context: Tensor, state: DitState, precision: AttentionPrecision): Promise<Tensor<'float32'>> {
    const c = this.config;
    const frames = x.shape[0];
    const tokens = frames * tokensPerFrame(c);
    const grid: [number, number, number] = [frames, c.latentHeight / 2, c.latentWidth / 2];
    const dim = c.dim;
    const profile = state.profile;
    const t0 = performance.now();
    let mark = t0;
    // Adds the time since the last mark to a category of the profile.
    const lap = (field: 'linears' | 'attention' | 'norms' | 'activations' | 'copies') => {
      if (!profile) return;
      const now = performance.now();
      profile[field] += (now - mark) / 1000;
      mark = now;
    };
    const lin = async (name: string, input: Tensor) => {
      lap('copies');
      const out = await this.linear(name).forward(input);
      lap('linears');
      return out;
    };

    // Time embedding e [1, dim] and the six modulation vectors e0 [1, 6 dim].
    let e = await lin('time_embedding.0', sinusoid);
    await silu(e, { out: e });
    lap('activations');
    e = await lin('time_embedding.2', e);
    const es = await silu(e);
    lap('activations');
    const e0 = await lin('time_projection.1', es);

    const h = await lin('patch_embedding', patchify(x));
    for (let b = 0; b < c.layers; b++) {
      const p = `blocks.${b}`;
      const mod = addVectors(this.param(`${p}.modulation`).data, e0.data, 6, dim);
      // Self-attention against the cache.
      let y = await layerNorm(h, { shift: mod[0], scale: mod[1], eps: c.eps });
      lap('norms');
      const ql = await lin(`${p}.self_attn.q`, y);
      const kl = await lin(`${p}.self_attn.k`, y);
      const v = await lin(`${p}.self_attn.v`, y);
      const q = await rmsNorm(ql, { weight: this.param(`${p}.self_attn.norm_q.weight`), eps: c.eps });
      const k = await rmsNorm(kl, { weight: this.param(`${p}.self_attn.norm_k.weight`), eps: c.eps });
      await rope3d(q, { grid, startFrame: state.committedFrames, heads: c.heads, out: q });
      await rope3d(k, { grid, startFrame: state.committedFrames, heads: c.heads, out: k });
      lap('norms');
      const cache = state.caches[b];
      cache.truncate(state.committedTokens);
      await cache.appendAsync(k, v);
      lap('copies');
      y = await cache.attention(q.reshape([tokens, c.heads, dim / c.heads]), { precision });
      lap('attention');
      y = await lin(`${p}.self_attn.o`, y.reshape([tokens, dim]));
      await gatedResidual(h, y, mod[2], { out: h });
      // Cross-attention to the text context (its keys and values are computed once per state).
      y = await layerNorm(h, { weight: this.param(`${p}.norm3.weight`), bias: this.param(`${p}.norm3.bias`), eps: c.eps });
      lap('norms');
      const cql = await lin(`${p}.cross_attn.q`, y);
      const cq = await rmsNorm(cql, { weight: this.param(`${p}.cross_attn.norm_q.weight`), eps: c.eps });
      lap('norms');
      let kv = state.crossKv[b];
      if (!kv) {
        const ckl = await lin(`${p}.cross_attn.k`, context);
        const cv = await lin(`${p}.cross_attn.v`, context);
        const ck = await rmsNorm(ckl, { weight: this.param(`${p}.cross_attn.norm_k.weight`), eps: c.eps });
        lap('norms');
        kv = { k: ck, v: cv };
        state.crossKv[b] = kv;
      }
      y = await attention(cq, kv.k, kv.v, { heads: c.heads, precision });
      lap('attention');
      y = await lin(`${p}.cross_attn.o`, y);
      await gatedResidual(h, y, this.#ones, { out: h });
      // Feed-forward.
      y = await layerNorm(h, { shift: mod[3], scale: mod[4], eps: c.eps });
      lap('norms');
      const u = await lin(`${p}.ffn.0`, y);
      await gelu(u, { out: u });
      lap('activations');
      y = await lin(`${p}.ffn.2`, u);
      await gatedResidual(h, y, mod[5], { out: h });
      lap('norms');
    }
    const headMod = addVectors(this.param('head.modulation').data, e.data, 2, dim, true);
    const yh = await layerNorm(h, { shift: headMod[0], scale: headMod[1], eps: c.eps });
    lap('norms');
    const out = await lin('head.head', yh);
    const flow = unpatchify(out, frames, c.outChannels, c.latentHeight, c.latentWidth);
    lap('copies');
    if (profile) {
      profile.total += (performance.now() - t0) / 1000;
      profile.passes++;
    }
    return flow;
  }
}

/** Shapes of every tensor of the model under Wan's names. */
export function expectedShapes(c: DitConfig): Record<string, number[]> {
  const s: Record<string, number[]> = {
    'patch_embedding.weight': [c.dim, c.inChannels, 1, 2, 2],
    'patch_embedding.bias': [c.dim],
    'text_embedding.0.weight': [c.dim, c.textDim],
    'text_embedding.0.bias': [c.dim],
    'text_embedding.2.weight': [c.dim, c.dim],
    'text_embedding.2.bias': [c.dim],
    'time_embedding.0.weight': [c.dim, c.freqDim],
    'time_embedding.0.bias': [c.dim],
    'time_embedding.2.weight': [c.dim, c.dim],
    'time_embedding.2.bias': [c.dim],
    'time_projection.1.weight': [6 * c.dim, c.dim],
    'time_projection.1.bias': [6 * c.dim],
    'head.modulation': [1, 2, c.dim],
    'head.head.weight': [c.outChannels * 4, c.dim],
    'head.head.bias': [c.outChannels * 4],
  };
  for (const l of blockLinears(c)) {
    s[`${l.name}.weight`] = [l.out, l.in];
    s[`${l.name}.bias`] = [l.out];
  }
  for (let b = 0; b < c.layers; b++) {
    s[`blocks.${b}.modulation`] = [1, 6, c.dim];
    for (const a of ['self_attn', 'cross_attn']) {
      s[`blocks.${b}.${a}.norm_q.weight`] = [c.dim];
      s[`blocks.${b}.${a}.norm_k.weight`] = [c.dim];
    }
    s[`blocks.${b}.norm3.weight`] = [c.dim];
    s[`blocks.${b}.norm3.bias`] = [c.dim];
  }
  return s;
}

/** Wan's sinusoidal_embedding_1d: [cos(t f_i), sin(t f_i)] with f_i = 10000^(-i / half), as [1, freqDim]. */
export function sinusoidalEmbedding(freqDim: number, t: number): Tensor<'float32'> {
  const half = freqDim / 2;
  const out = new Float32Array(freqDim);
  for (let i = 0; i < half; i++) {
    const a = t * Math.pow(10000, -i / half);
    out[i] = Math.cos(a);
    out[half + i] = Math.sin(a);
  }
  return new Tensor('float32', [1, freqDim], out);
}

/** count vectors table[i] + e[i] of length dim (or table[i] + e, the same e for each, when `broadcast`), as [1, dim] tensors. */
function addVectors(table: Float32Array, e: Float32Array, count: number, dim: number, broadcast = false): Tensor<'float32'>[] {
  return Array.from({ length: count }, (_, i) => {
    const v = new Float32Array(dim);
    for (let j = 0; j < dim; j++) v[j] = table[i * dim + j] + e[(broadcast ? 0 : i * dim) + j];
    return new Tensor('float32', [1, dim], v);
  });
}

/** Latents [F, C, H, W] to tokens [F (H/2) (W/2), C 4], each patch ordered (channel, row, column) as Conv3d's weight. */
export function patchify(x: Tensor<'float32'> | Tensor): Tensor<'float32'> {
  const xt = expectTensor(x, 'x', ['float32']);
  if (xt.rank !== 4 || xt.shape[2] % 2 || xt.shape[3] % 2) throw new RangeError(`Expected x of shape [frames, channels, height, width] with even height and width but received [${xt.shape.join(', ')}]`);
  const [F, C, H, W] = xt.shape;
  const hp = H / 2, wp = W / 2;
  const out = new Float32Array(F * hp * wp * C * 4);
  const src = xt.data;
  let n = 0;
  for (let f = 0; f < F; f++)
    for (let i = 0; i < hp; i++)
      for (let j = 0; j < wp; j++)
        for (let ch = 0; ch < C; ch++)
          for (let kh = 0; kh < 2; kh++)
            for (let kw = 0; kw < 2; kw++) out[n++] = src[((f * C + ch) * H + 2 * i + kh) * W + 2 * j + kw];
  return new Tensor('float32', [F * hp * wp, C * 4], out);
}

/** Head output [tokens, 4 C] (ordered row, column, channel as Wan's unpatchify) back to latents [F, C, H, W]. */
export function unpatchify(y: Tensor<'float32'>, F: number, C: number, H: number, W: number): Tensor<'float32'> {
  const yt = expectTensor(y, 'y', ['float32']);
  for (const [v, n] of [[F, 'F'], [C, 'C'], [H, 'H'], [W, 'W']] as const) expectInteger(v, n, { min: 1, max: 2 ** 31 });
  if (H % 2 || W % 2) throw new RangeError(`Expected even H and W (2 x 2 patches) but received ${H} x ${W}`);
  if (yt.size !== F * C * H * W) throw new RangeError(`Expected y to hold F * C * H * W = ${F * C * H * W} values but it holds ${yt.size}`);
  y = yt;
  const hp = H / 2, wp = W / 2;
  const out = new Float32Array(F * C * H * W);
  const src = y.data;
  for (let f = 0; f < F; f++)
    for (let i = 0; i < hp; i++)
      for (let j = 0; j < wp; j++) {
        const t = (f * hp + i) * wp + j;
        for (let kh = 0; kh < 2; kh++)
          for (let kw = 0; kw < 2; kw++)
            for (let ch = 0; ch < C; ch++) out[((f * C + ch) * H + 2 * i + kh) * W + 2 * j + kw] = src[t * 4 * C + (kh * 2 + kw) * C + ch];
      }
  return new Tensor('float32', [F, C, H, W], out);
}
