// Multi-head attention of the causal DiT: chunk-causal self-attention (with a KV cache, or masked
// over a whole video) and cross-attention to the text context.
import { Tensor } from '../../tensor/tensor.js';
import { expectFiniteNumber, expectInteger, expectObject, expectOneOf } from '../../util/validate.js';
import { expectFloat32, finish, headsOf, ops, outputFor, shapeText } from './common.js';

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

export interface AttentionOptions {
  /** Heads, when the tensors are [tokens, heads * headDim]; checked when they are [tokens, heads, headDim]. */
  heads?: number;
  /** Default { type: 'none' }. */
  mask?: AttentionMask;
  /** Factor on the scores; default 1 / sqrt(headDim). */
  scale?: number;
  /** Output tensor of q's shape; may be q itself, must not overlap k or v. */
  out?: Tensor;
}

function run(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions, async: boolean) {
  const qt = expectFloat32(q, 'q');
  const kt = expectFloat32(k, 'k');
  const vt = expectFloat32(v, 'v');
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
  const out = outputFor(o.out, 'options.out', qt, [qt], [kt, vt]);
  const done = ops().attention(qt.data, kt.data, vt.data, out.data, ql.tokens, kl.tokens, ql.heads, ql.headDim, chunk, queryOffset, scale, async);
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
 * queries x keys score matrix is never stored; fp32 accumulation; parallel over heads x query blocks.
 * Self-attention of a chunk goes through a {@link KvCache}; cross-attention passes the projected text
 * context as k and v.
 *
 * @example
 * // cross-attention: video tokens [4680, 12, 128] to a 512-token context
 * const y = await attention(q, ctxK, ctxV);
 * // a whole 3-chunk video at once, chunk-causal (3 frames of 1560 tokens per chunk)
 * const z = await attention(q, k, v, { mask: { type: 'chunkCausal', chunkSize: 4680 } });
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
