// The KV cache of one self-attention layer of a causal video DiT: keys and values of the chunks
// generated so far, preallocated once, so that a chunk's queries attend to every earlier chunk and to
// themselves without recomputing anything; stored in float32, bfloat16 or int8, and attended to as
// stored.
import { markAsUntransferable } from 'node:worker_threads';
import { Tensor } from '../../tensor/tensor.js';
import { expectFiniteNumber, expectInteger, expectObject, expectOneOf } from '../../util/validate.js';
import { expectPrecision, runAttention, type AttentionOptions, type AttentionPrecision, type KvOperand } from './attention.js';
import { expectFloat32, finish, headsOf, ops, outputFor, shapeText, type KvData } from './common.js';

/**
 * How a cache stores keys and values.
 * - `fp32`: as given.
 * - `bf16`: rounded to bfloat16 (to nearest even): half the bytes.
 * - `int8`: symmetric int8 with one float32 scale per token and head (`max|x| / 127`, round half to
 *   even): a quarter of the bytes plus 4 per token and head. Keys are stored smoothed, `k - m` with
 *   `m` the mean of each channel over the first chunk appended to the empty cache (`keySmoothing`):
 *   every score of a query moves by the same `q.m`, which softmax ignores, and the channels' common
 *   offsets no longer widen each token's range.
 */
export type KvCacheDtype = 'fp32' | 'bf16' | 'int8';
export const KV_CACHE_DTYPES: readonly KvCacheDtype[] = ['fp32', 'bf16', 'int8'];
const STORAGE_CODE: Readonly<Record<KvCacheDtype, 0 | 1 | 2>> = { fp32: 0, bf16: 1, int8: 2 };

export interface KvCacheOptions {
  /** Capacity in tokens (Self-Forcing: 21 frames x 1560 = 32760). */
  maxTokens: number;
  heads: number;
  headDim: number;
  /** Default 'fp32'. */
  storage?: KvCacheDtype;
}

export type KvCacheAttentionOptions = Pick<AttentionOptions, 'scale' | 'out' | 'precision'>;

type Stored<D extends KvCacheDtype> = D extends 'fp32' ? Tensor<'float32'> : D extends 'bf16' ? Tensor<'bfloat16'> : Tensor<'int8'>;

/**
 * Keys and values [maxTokens, heads, headDim] (float32, bfloat16 or int8: `storage`), of which the
 * first `length` tokens are in use.
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
 * const small = new KvCache({ maxTokens: 7 * 192, heads: 4, headDim: 64, storage: 'int8' }); // 0.27x the bytes
 */
export class KvCache {
  readonly maxTokens: number;
  readonly heads: number;
  readonly headDim: number;
  readonly storage: KvCacheDtype;
  readonly #k: KvData;
  readonly #v: KvData;
  readonly #kScale: Float32Array | null;
  readonly #vScale: Float32Array | null;
  readonly #smoothing: Float32Array | null;
  #length = 0;
  #pending = 0;

  constructor(options: KvCacheOptions) {
    const o = expectObject(options, 'options') as unknown as KvCacheOptions;
    this.maxTokens = expectInteger(o.maxTokens, 'options.maxTokens', { min: 1 });
    this.heads = expectInteger(o.heads, 'options.heads', { min: 1 });
    this.headDim = expectInteger(o.headDim, 'options.headDim', { min: 1 });
    this.storage = o.storage === undefined ? 'fp32' : expectOneOf(o.storage, 'options.storage', KV_CACHE_DTYPES);
    const size = this.maxTokens * this.heads * this.headDim;
    const bytes = { fp32: 4, bf16: 2, int8: 1 }[this.storage];
    if (size * bytes > 2 ** 32) throw new RangeError(`Expected a cache of at most 4 GiB per tensor but options.maxTokens ${this.maxTokens} needs ${size * bytes} bytes`);
    const make = () => (this.storage === 'fp32' ? new Float32Array(size) : this.storage === 'bf16' ? new Uint16Array(size) : new Int8Array(size));
    this.#k = make();
    this.#v = make();
    const int8 = this.storage === 'int8';
    this.#kScale = int8 ? new Float32Array(this.maxTokens * this.heads) : null;
    this.#vScale = int8 ? new Float32Array(this.maxTokens * this.heads) : null;
    this.#smoothing = int8 ? new Float32Array(this.heads * this.headDim) : null;
    // The native model pass uses these buffers in place while it runs off the event loop: they must
    // never be transferred (detached) from under it, even through the views that keys/values hand out.
    for (const a of [this.#k, this.#v, this.#kScale, this.#vScale, this.#smoothing]) if (a) markAsUntransferable(a.buffer);
  }

  /** Tokens in use. */
  get length(): number {
    return this.#length;
  }

  /**
   * The keys in use, [length, heads, headDim], as stored (float32, bfloat16 bits, or int8 integers of
   * `k - keySmoothing` with `keyScales`): a view of the cache, valid until the next append or truncate.
   */
  get keys(): Stored<KvCacheDtype> {
    return this.#view(this.#k);
  }

  /** The values in use, [length, heads, headDim], as stored (int8: with `valueScales`): a view like {@link keys}. */
  get values(): Stored<KvCacheDtype> {
    return this.#view(this.#v);
  }

  /** int8 storage: the scale of each token and head of the keys in use, [length, heads] (null otherwise). */
  get keyScales(): Tensor<'float32'> | null {
    return this.#kScale ? new Tensor('float32', [this.#length, this.heads], this.#kScale.subarray(0, this.#length * this.heads)) : null;
  }

  /** int8 storage: the scale of each token and head of the values in use, [length, heads] (null otherwise). */
  get valueScales(): Tensor<'float32'> | null {
    return this.#vScale ? new Tensor('float32', [this.#length, this.heads], this.#vScale.subarray(0, this.#length * this.heads)) : null;
  }

  /** int8 storage: the channel means m [heads * headDim] subtracted from the keys (null otherwise). */
  get keySmoothing(): Tensor<'float32'> | null {
    return this.#smoothing ? new Tensor('float32', [this.heads * this.headDim], this.#smoothing) : null;
  }

  /** Bytes allocated (keys and values at capacity, with int8 scales and smoothing) and in use. */
  get memory(): { allocatedBytes: number; usedBytes: number } {
    const perValue = { fp32: 4, bf16: 2, int8: 1 }[this.storage];
    const row = this.heads * this.headDim * perValue + (this.storage === 'int8' ? 4 * this.heads : 0);
    const fixed = this.#smoothing ? this.#smoothing.byteLength : 0;
    return { allocatedBytes: 2 * this.maxTokens * row + fixed, usedBytes: 2 * this.#length * row + fixed };
  }

  /**
   * Stores a chunk's keys and values ([tokens, heads, headDim] or [tokens, heads * headDim], float32)
   * after the tokens in use. Synchronous: a float32 cache copies; the others round or quantize on the
   * kernel threads (see {@link appendAsync} to keep the event loop free for large chunks).
   */
  append(k: Tensor, v: Tensor): void {
    const { kt, vt, tokens } = this.#appendArgs(k, v);
    if (this.storage === 'fp32') {
      const at = this.#length * this.heads * this.headDim;
      (this.#k as Float32Array).set(kt.data, at);
      (this.#v as Float32Array).set(vt.data, at);
    } else {
      this.#store(kt, vt, tokens, false);
    }
    this.#length += tokens;
  }

  /** {@link append} off the event loop; the cache must not be used until the Promise settles. */
  async appendAsync(k: Tensor, v: Tensor): Promise<void> {
    const { kt, vt, tokens } = this.#appendArgs(k, v);
    if (this.storage === 'fp32') return this.append(kt, vt);
    this.#pending++;
    try {
      await Promise.all(this.#store(kt, vt, tokens, true));
      this.#length += tokens;
    } finally {
      this.#pending--;
    }
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
   * cache, as {@link attention} with no mask, reading the keys and values as stored. The cache must not
   * be changed until the Promise settles.
   */
  async attention(q: Tensor, options: KvCacheAttentionOptions = {}): Promise<Tensor<'float32'>> {
    const { out, run } = this.#attentionArgs(q, options);
    this.#pending++;
    try {
      return await finish(run(true), out, true);
    } finally {
      this.#pending--;
    }
  }

  /** Synchronous {@link KvCache.attention}. */
  attentionSync(q: Tensor, options: KvCacheAttentionOptions = {}): Tensor<'float32'> {
    const { out, run } = this.#attentionArgs(q, options);
    return finish(run(false), out, false);
  }

  #attentionArgs(q: Tensor, options: KvCacheAttentionOptions) {
    const o = expectObject(options, 'options') as KvCacheAttentionOptions;
    if (this.#length === 0) throw new RangeError('Expected a non-empty cache for attention but its length is 0');
    const qt = expectFloat32(q, 'q');
    const ql = headsOf(qt, 'q', qt.rank === 2 ? this.heads : undefined, 'heads');
    if (ql.heads !== this.heads || ql.headDim !== this.headDim) {
      throw new RangeError(`Expected q to have the cache's ${this.heads} heads of ${this.headDim} but received shape ${shapeText(qt.shape)}`);
    }
    const scale = o.scale === undefined ? 1 / Math.sqrt(this.headDim) : expectFiniteNumber(o.scale, 'options.scale', { positive: true });
    const precision: AttentionPrecision = expectPrecision(o.precision, 'options.precision');
    const used = this.#length * this.heads * this.headDim;
    const kv = (data: KvData, scales: Float32Array | null): KvOperand => ({
      data: data.subarray(0, used) as KvData,
      dtype: STORAGE_CODE[this.storage],
      scale: scales ? scales.subarray(0, this.#length * this.heads) : null,
    });
    const k = kv(this.#k, this.#kScale), v = kv(this.#v, this.#vScale);
    const out = outputFor(o.out, 'options.out', qt, [qt], [this.keys, this.values]);
    const sizes = { kvLen: this.#length, heads: this.heads, headDim: this.headDim };
    return { out, run: (async: boolean) => runAttention(qt, k, v, out, sizes, { chunk: 0, queryOffset: 0, scale, precision }, async) };
  }

  #appendArgs(k: Tensor, v: Tensor) {
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
    return { kt, vt, tokens: kl.tokens };
  }

  /** Rounds or quantizes k and v into the cache at the tokens in use (the caller advances the length). */
  #store(kt: Tensor<'float32'>, vt: Tensor<'float32'>, tokens: number, async: boolean): (Promise<void> | undefined)[] {
    if (tokens === 0) return [];
    const code = STORAGE_CODE[this.storage];
    // The first chunk of an empty int8 cache fixes the keys' smoothing vector.
    if (this.#smoothing && this.#length === 0) ops().kvChannelMean(kt.data, tokens, this.heads * this.headDim, this.#smoothing);
    const store = (x: Tensor<'float32'>, data: KvData, scales: Float32Array | null, smooth: Float32Array | null) =>
      ops().kvStore(x.data, tokens, this.heads, this.headDim, code, data, scales, this.#length, smooth, async);
    return [store(kt, this.#k, this.#kScale, this.#smoothing), store(vt, this.#v, this.#vScale, null)];
  }

  #view(data: KvData): Stored<KvCacheDtype> {
    const n = this.#length * this.heads * this.headDim;
    const shape = [this.#length, this.heads, this.headDim];
    if (data instanceof Float32Array) return new Tensor('float32', shape, data.subarray(0, n));
    if (data instanceof Uint16Array) return new Tensor('bfloat16', shape, data.subarray(0, n));
    return new Tensor('int8', shape, data.subarray(0, n));
  }

  /** @internal The whole key and value buffers (int8: with their scales and the keys' smoothing), for the native model pass (lib/model/native_pass.ts). */
  nativeBuffers(): { k: KvData; v: KvData; kScale: Float32Array | null; vScale: Float32Array | null; smoothing: Float32Array | null } {
    return { k: this.#k, v: this.#v, kScale: this.#kScale, vScale: this.#vScale, smoothing: this.#smoothing };
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
