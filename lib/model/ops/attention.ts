// Multi-head attention of the causal DiT: chunk-causal self-attention (with a KV cache, or masked
// over a whole video) and cross-attention to the text context, in float32, bfloat16 or int8.
import { Tensor, expectTensor } from '../../tensor/tensor.js';
import { expectFiniteNumber, expectInteger, expectObject, expectOneOf } from '../../util/validate.js';
import { expectFloat32, finish, headsOf, ops, outputFor, shapeText, type KvData } from './common.js';

/**
 * Which keys each query sees.
 * - `none`: all of them (cross-attention; or the current chunk against a KV cache holding the past
 *   chunks and itself, which is exactly chunk-causal attention for that chunk).
 * - `chunkCausal`: the whole video at once. Key j is visible to query i iff
 *   floor(j / chunkSize) <= floor((i + queryOffset) / chunkSize): every chunk sees itself fully and
 *   all earlier chunks, never later ones. queryOffset (default 0) is the position of query 0 among the
 *   keys, for queries that are a later slice of the key sequence.
 */
export type AttentionMask = { type: 'none' } | { type: 'chunkCausal'; chunkSize: number; queryOffset?: number };

/**
 * What attention's two products run on; every sum is float32.
 * - `fp32`: float32 (the default, and the reference).
 * - `bf16`: `q * scale`, k, the probabilities p and v rounded to bfloat16 (to nearest even), products
 *   exact: vdpbf16ps on CPUs with AVX512-BF16 (AMX-BF16 tiles where present), the same arithmetic in
 *   float32 FMAs elsewhere.
 * - `int8`: Q.K^T in int8 with exact integer sums, as SageAttention: the keys are smoothed (the mean
 *   of each channel over the keys, per head, is subtracted; q.(k - m) = q.k - q.m changes all scores of
 *   a query alike, which softmax ignores), then `q * scale` and the smoothed keys are quantized
 *   symmetrically with one scale per token and head (`max|x| / 127`, round half to even); P.V as in
 *   `bf16`. Keys of an int8 {@link KvCache} (stored smoothed, with a scale per token and head) are
 *   used as they are.
 */
export type AttentionPrecision = 'fp32' | 'bf16' | 'int8';
export const ATTENTION_PRECISIONS: readonly AttentionPrecision[] = ['fp32', 'bf16', 'int8'];
const PRECISION_CODE: Readonly<Record<AttentionPrecision, number>> = { fp32: 0, bf16: 1, int8: 2 };

export interface AttentionOptions {
  /** Heads, when the tensors are [tokens, heads * headDim]; checked when they are [tokens, heads, headDim]. */
  heads?: number;
  /** Default { type: 'none' }. */
  mask?: AttentionMask;
  /** Factor on the scores; default 1 / sqrt(headDim). */
  scale?: number;
  /** Default 'fp32'. */
  precision?: AttentionPrecision;
  /** Output tensor of q's shape; may be q itself, must not overlap k or v. */
  out?: Tensor;
}

/** Keys or values as stored: float32, bfloat16 bits, or int8 with a scale per token and head (KvCache). */
export interface KvOperand {
  data: KvData;
  /** 0 float32, 1 bfloat16, 2 int8 (csrc/kernels/attention.h KvDtype). */
  dtype: 0 | 1 | 2;
  scale: Float32Array | null;
}

/** The precision option, validated (default 'fp32'). */
export function expectPrecision(value: unknown, name: string): AttentionPrecision {
  return value === undefined ? 'fp32' : expectOneOf(value, name, ATTENTION_PRECISIONS);
}

/**
 * Runs the kernel on q [qLen, heads, headDim] (float32, checked by the caller) against kvLen stored
 * keys and values; the entry point of attention() and KvCache.attention().
 */
export function runAttention(q: Tensor<'float32'>, k: KvOperand, v: KvOperand, out: Tensor<'float32'>, sizes: { kvLen: number; heads: number; headDim: number },
  options: { chunk: number; queryOffset: number; scale: number; precision: AttentionPrecision }, async: boolean): Promise<void> | undefined {
  const qLen = q.size / (sizes.heads * sizes.headDim);
  return ops().attention(q.data, k.data, k.dtype, k.scale, v.data, v.dtype, v.scale, out.data, qLen, sizes.kvLen, sizes.heads, sizes.headDim,
    options.chunk, options.queryOffset, options.scale, PRECISION_CODE[options.precision], async);
}

function operand(t: Tensor<'float32' | 'bfloat16'>): KvOperand {
  return t.dtype === 'float32' ? { data: t.data as Float32Array, dtype: 0, scale: null } : { data: t.data as Uint16Array, dtype: 1, scale: null };
}

function run(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions, async: boolean) {
  const qt = expectFloat32(q, 'q');
  const kt = expectTensor(k, 'k', ['float32', 'bfloat16']);
  const vt = expectTensor(v, 'v', ['float32', 'bfloat16']);
  const o = expectObject(options, 'options') as AttentionOptions;
  const ql = headsOf(qt, 'q', o.heads, 'options.heads');
  const kl = headsOf(kt, 'k', o.heads ?? (kt.rank === 2 ? ql.heads : undefined), 'options.heads');
  if (kl.heads !== ql.heads || kl.headDim !== ql.headDim) {
    throw new RangeError(`Expected k to have ${ql.heads} heads of ${ql.headDim} like q but received shape ${shapeText(kt.shape)}`);
  }
  if (shapeText(vt.shape) !== shapeText(kt.shape)) {
    throw new RangeError(`Expected v to have the shape of k ${shapeText(kt.shape)} but received ${shapeText(vt.shape)}`);
  }
  if (kl.tokens === 0) throw new RangeError(`Expected at least one key token in k but received shape ${shapeText(kt.shape)}`);
  let chunk = 0;
  let queryOffset = 0;
  if (o.mask !== undefined) {
    const mask = expectObject(o.mask, 'options.mask') as AttentionMask;
    if (expectOneOf(mask.type, 'options.mask.type', ['none', 'chunkCausal']) === 'chunkCausal') {
      const m = mask as { chunkSize: unknown; queryOffset?: unknown };
      chunk = expectInteger(m.chunkSize, 'options.mask.chunkSize', { min: 1 });
      queryOffset = expectInteger(m.queryOffset ?? 0, 'options.mask.queryOffset', { min: 0 });
      if (queryOffset + ql.tokens > kl.tokens) {
        throw new RangeError(`Expected options.mask.queryOffset + the ${ql.tokens} queries to fit in the ${kl.tokens} keys but received queryOffset ${queryOffset}`);
      }
    }
  }
  const scale = o.scale === undefined ? 1 / Math.sqrt(ql.headDim) : expectFiniteNumber(o.scale, 'options.scale', { positive: true });
  const precision = expectPrecision(o.precision, 'options.precision');
  const out = outputFor(o.out, 'options.out', qt, [qt], [kt, vt]);
  const done = runAttention(qt, operand(kt), operand(vt), out, { kvLen: kl.tokens, heads: ql.heads, headDim: ql.headDim }, { chunk, queryOffset, scale, precision }, async);
  return { done, out };
}

/**
 * Scaled dot-product attention per head, out = softmax(q k^T * scale) v, with q [queries, heads,
 * headDim] and k, v [keys, heads, headDim] (or [tokens, heads * headDim] with options.heads):
 *
 *   out[i, h] = sum_j p_ij v[j, h],  p_ij = exp(s_ij - max_j s_ij) / sum_j exp(s_ij - max_j s_ij),
 *   s_ij = scale * q[i, h] . k[j, h]  over the keys j visible to query i (options.mask).
 *
 * The kernel is flash-attention style: blocks of keys with a running max and sum per query, so the
 * queries x keys score matrix is never stored; float32 sums; parallel over heads x query blocks. k
 * and v may be float32 or bfloat16 (read as they are, never widened as a whole). `precision` picks
 * what the products run on (see {@link AttentionPrecision}). Self-attention of a chunk goes through a
 * {@link KvCache}; cross-attention passes the projected text context as k and v.
 *
 * @example
 * // cross-attention: video tokens [4680, 12, 128] to a 512-token context
 * const y = await attention(q, ctxK, ctxV);
 * // a whole 3-chunk video at once, chunk-causal (3 frames of 1560 tokens per chunk)
 * const z = await attention(q, k, v, { mask: { type: 'chunkCausal', chunkSize: 4680 } });
 * // int8 Q.K^T with smoothed keys, P.V in bfloat16
 * const w = await attention(q, k, v, { precision: 'int8' });
 */
export async function attention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Promise<Tensor<'float32'>> {
  const { done, out } = run(q, k, v, options, true);
  return finish(done, out, true);
}

/**
 * Synchronous {@link attention}, for small inputs (it blocks the event loop).
 *
 * @example
 * const y = attentionSync(q, ctxK, ctxV, { heads: 4 }); // [tokens, dim] layout
 */
export function attentionSync(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor<'float32'> {
  const { done, out } = run(q, k, v, options, false);
  return finish(done, out, false);
}
