// The KV cache of one self-attention layer of a causal video DiT: keys and values of the chunks
// generated so far, preallocated once, so that a chunk's queries attend to every earlier chunk and to
// themselves without recomputing anything.
import { Tensor } from '../../tensor/tensor.js';
import { expectInteger, expectObject } from '../../util/validate.js';
import { attention, attentionSync, type AttentionOptions } from './attention.js';
import { expectFloat32, headsOf, shapeText } from './common.js';

export interface KvCacheOptions {
  /** Capacity in tokens (Self-Forcing: 21 frames x 1560 = 32760). */
  maxTokens: number;
  heads: number;
  headDim: number;
}

export type KvCacheAttentionOptions = Pick<AttentionOptions, 'scale' | 'out'>;

/**
 * Keys and values [maxTokens, heads, headDim] (float32), of which the first `length` tokens are in use.
 *
 * Self-Forcing's use: for each denoising step of chunk c, `truncate(committed)` drops the previous
 * step's keys of chunk c, `append(k, v)` adds this step's, and `attention(q)` gives chunk c's
 * self-attention (full attention over the cache = chunk-causal over the video); after the last step
 * the cache pass at timestep 0 appends the clean chunk's keys for good.
 *
 * @example
 * const cache = new KvCache({ maxTokens: 7 * 192, heads: 4, headDim: 64 });
 * cache.append(k, v);                 // k, v: [192, 4, 64] (or [192, 256])
 * const y = await cache.attention(q); // q: [192, 4, 64]
 * cache.memory;                       // { allocatedBytes: 1376256, usedBytes: 196608 }
 */
export class KvCache {
  readonly maxTokens: number;
  readonly heads: number;
  readonly headDim: number;
  readonly #k: Float32Array;
  readonly #v: Float32Array;
  #length = 0;
  #pending = 0;

  constructor(options: KvCacheOptions) {
    const o = expectObject(options, 'options') as unknown as KvCacheOptions;
    this.maxTokens = expectInteger(o.maxTokens, 'options.maxTokens', { min: 1 });
    this.heads = expectInteger(o.heads, 'options.heads', { min: 1 });
    this.headDim = expectInteger(o.headDim, 'options.headDim', { min: 1 });
    const size = this.maxTokens * this.heads * this.headDim;
    if (size * 4 > 2 ** 32) throw new RangeError(`Expected a cache of at most 4 GiB per tensor but options.maxTokens ${this.maxTokens} needs ${size * 4} bytes`);
    this.#k = new Float32Array(size);
    this.#v = new Float32Array(size);
  }

  /** Tokens in use. */
  get length(): number {
    return this.#length;
  }

  /** The keys in use, [length, heads, headDim]: a view of the cache, valid until the next append or truncate. */
  get keys(): Tensor<'float32'> {
    return this.#view(this.#k);
  }

  /** The values in use, [length, heads, headDim]: a view like {@link keys}. */
  get values(): Tensor<'float32'> {
    return this.#view(this.#v);
  }

  /** Bytes allocated (keys and values at capacity) and in use. */
  get memory(): { allocatedBytes: number; usedBytes: number } {
    const row = this.heads * this.headDim * 4;
    return { allocatedBytes: 2 * this.maxTokens * row, usedBytes: 2 * this.#length * row };
  }

  /** Copies a chunk's keys and values ([tokens, heads, headDim] or [tokens, heads * headDim]) after the tokens in use. */
  append(k: Tensor, v: Tensor): void {
    this.#checkIdle('append');
    const kt = expectFloat32(k, 'k');
    const vt = expectFloat32(v, 'v');
    const kl = headsOf(kt, 'k', kt.rank === 2 ? this.heads : undefined, 'heads');
    if (kl.heads !== this.heads || kl.headDim !== this.headDim) {
      throw new RangeError(`Expected k to have ${this.heads} heads of ${this.headDim} but received shape ${shapeText(kt.shape)}`);
    }
    if (shapeText(vt.shape) !== shapeText(kt.shape)) {
      throw new RangeError(`Expected v to have the shape of k ${shapeText(kt.shape)} but received ${shapeText(vt.shape)}`);
    }
    if (this.#length + kl.tokens > this.maxTokens) {
      throw new RangeError(`Expected k to fit in the cache (${this.#length} of ${this.maxTokens} tokens in use) but it has ${kl.tokens} tokens`);
    }
    const at = this.#length * this.heads * this.headDim;
    this.#k.set(kt.data, at);
    this.#v.set(vt.data, at);
    this.#length += kl.tokens;
  }

  /** Keeps the first `length` tokens (drops a chunk's provisional keys between denoising steps). */
  truncate(length: number): void {
    this.#checkIdle('truncate');
    expectInteger(length, 'length', { min: 0, max: this.#length });
    this.#length = length;
  }

  /** Empties the cache (a new video). */
  reset(): void {
    this.truncate(0);
  }

  /**
   * Attention of q ([queries, heads, headDim] or [queries, heads * headDim]) over every token in the
   * cache, as {@link attention} with no mask. The cache must not be changed until the Promise settles.
   */
  async attention(q: Tensor, options: KvCacheAttentionOptions = {}): Promise<Tensor<'float32'>> {
    const args = this.#attentionArgs(q, options);
    this.#pending++;
    try {
      return await attention(q, this.keys, this.values, args);
    } finally {
      this.#pending--;
    }
  }

  /** Synchronous {@link KvCache.attention}. */
  attentionSync(q: Tensor, options: KvCacheAttentionOptions = {}): Tensor<'float32'> {
    return attentionSync(q, this.keys, this.values, this.#attentionArgs(q, options));
  }

  #attentionArgs(q: Tensor, options: KvCacheAttentionOptions): AttentionOptions {
    const o = expectObject(options, 'options') as KvCacheAttentionOptions;
    if (this.#length === 0) throw new RangeError('Expected a non-empty cache for attention but its length is 0');
    const qt = expectFloat32(q, 'q');
    const ql = headsOf(qt, 'q', qt.rank === 2 ? this.heads : undefined, 'heads');
    if (ql.heads !== this.heads || ql.headDim !== this.headDim) {
      throw new RangeError(`Expected q to have the cache's ${this.heads} heads of ${this.headDim} but received shape ${shapeText(qt.shape)}`);
    }
    return { scale: o.scale, out: o.out, heads: qt.rank === 2 ? this.heads : undefined };
  }

  #view(data: Float32Array): Tensor<'float32'> {
    const n = this.#length * this.heads * this.headDim;
    return new Tensor('float32', [this.#length, this.heads, this.headDim], data.subarray(0, n));
  }

  /** @internal The whole key and value buffers, for the native model pass (lib/model/native_pass.ts). */
  nativeBuffers(): { k: Float32Array; v: Float32Array } {
    return { k: this.#k, v: this.#v };
  }

  /**
   * @internal The native pass writes after the first `keep` tokens: the cache keeps those and is
   * busy (no append, truncate or attention) until {@link endNativeWrite}.
   */
  beginNativeWrite(keep: number): void {
    this.#checkIdle('start a native pass');
    expectInteger(keep, 'keep', { min: 0, max: this.maxTokens });
    this.#length = Math.min(this.#length, keep);
    this.#pending++;
  }

  /** @internal The native pass is done; the first `length` tokens are now in use. */
  endNativeWrite(length: number): void {
    this.#pending--;
    this.#length = expectInteger(length, 'length', { min: 0, max: this.maxTokens });
  }

  #checkIdle(what: string): void {
    if (this.#pending > 0) throw new Error(`KvCache: cannot ${what} while an attention call on the cache is in flight`);
  }
}
