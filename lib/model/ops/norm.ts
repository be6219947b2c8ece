// LayerNorm / RMSNorm with the shift-scale modulation of DiT blocks, and the gated residual add.
// Activations are token-major [..., dim]; every leading dimension counts as rows.
import { Tensor } from '../../tensor/tensor.js';
import { expectObject } from '../../util/validate.js';
import { expectEps, expectFloat32, finish, groupsOf, ops, outputFor, rowsOf, shapeText } from './common.js';

export interface LayerNormOptions {
  /** Added to the variance (default 1e-6, as in Wan). */
  eps?: number;
  /** Elementwise affine weight [dim] (Wan's norm3 before cross-attention); identity when absent. */
  weight?: Tensor;
  /** Elementwise affine bias [dim]; requires weight. */
  bias?: Tensor;
  /** Modulation shift [groups, dim] or [dim]; requires scale. */
  shift?: Tensor;
  /** Modulation scale [groups, dim] or [dim]; requires shift. */
  scale?: Tensor;
  /** Output tensor of x's shape; may be x itself (in place). */
  out?: Tensor;
}

export interface RmsNormOptions {
  /** Added to the mean square (default 1e-6, as in Wan). */
  eps?: number;
  /** Elementwise weight [dim]; identity when absent. */
  weight?: Tensor;
  /** Output tensor of x's shape; may be x itself. */
  out?: Tensor;
}

export interface GatedResidualOptions {
  /** Output tensor of x's shape; may be x (the usual in-place residual update) or y. */
  out?: Tensor;
}

function vector(value: unknown, name: string, dim: number): Float32Array | null {
  if (value === undefined) return null;
  const t = expectFloat32(value, name);
  if (t.rank !== 1 || t.shape[0] !== dim) throw new RangeError(`Expected ${name} to have shape [${dim}] but received ${shapeText(t.shape)}`);
  return t.data;
}

function layerNormRun(x: Tensor, options: LayerNormOptions, async: boolean) {
  const xt = expectFloat32(x, 'x');
  const o = expectObject(options, 'options') as LayerNormOptions;
  const { rows, dim } = rowsOf(xt, 'x');
  const eps = expectEps(o.eps, 'options.eps');
  const weight = vector(o.weight, 'options.weight', dim);
  const bias = vector(o.bias, 'options.bias', dim);
  if (bias && !weight) throw new TypeError('Expected options.weight with options.bias but received undefined');
  if ((o.shift === undefined) !== (o.scale === undefined)) {
    throw new TypeError(`Expected options.shift and options.scale together but received only ${o.shift === undefined ? 'options.scale' : 'options.shift'}`);
  }
  let groups = 1;
  let shift: Float32Array | null = null;
  let scale: Float32Array | null = null;
  if (o.shift !== undefined) {
    const sh = expectFloat32(o.shift, 'options.shift');
    const sc = expectFloat32(o.scale, 'options.scale');
    groups = groupsOf(sh, 'options.shift', rows, dim);
    if (groupsOf(sc, 'options.scale', rows, dim) !== groups) {
      throw new RangeError(`Expected options.scale to have the shape of options.shift ${shapeText(sh.shape)} but received ${shapeText(sc.shape)}`);
    }
    shift = sh.data;
    scale = sc.data;
  }
  const out = outputFor(o.out, 'options.out', xt, [xt], [o.weight, o.bias, o.shift, o.scale]);
  const done = ops().layerNorm(xt.data, out.data, rows, dim, eps, weight, bias, shift, scale, groups, async);
  return { done, out };
}

/**
 * LayerNorm over the last dimension, then optionally an elementwise affine and the DiT modulation:
 *
 *   y = (x - mean) / sqrt(var + eps)            (biased variance over the row, eps default 1e-6)
 *   y = y * weight + bias                       (if options.weight; bias defaults to 0)
 *   y = y * (1 + scale[g]) + shift[g]           (if options.shift/scale)
 *
 * where row r of the R rows belongs to group g = floor(r / (R / groups)): the causal DiT modulates the
 * tokens of each latent frame with that frame's vectors, so shift/scale are [frames, dim] and x is
 * [frames * tokensPerFrame, dim]. Wan uses the modulated form without affine before self-attention
 * and the FFN (norm1, norm2, and the head), and the affine form before cross-attention (norm3).
 * Statistics are accumulated in float32 (AVX2) or double (scalar path).
 *
 * @example
 * // x: [frames * tokensPerFrame, dim]; shift, scale: [frames, dim]
 * const y = await layerNorm(x, { shift, scale });
 * const z = await layerNorm(x, { weight: norm3Weight, bias: norm3Bias });
 */
export async function layerNorm(x: Tensor, options: LayerNormOptions = {}): Promise<Tensor<'float32'>> {
  const { done, out } = layerNormRun(x, options, true);
  return finish(done, out, true);
}

/**
 * Synchronous {@link layerNorm}, for small inputs (it blocks the event loop).
 *
 * @example
 * const y = layerNormSync(x, { shift, scale, eps: 1e-6 });
 */
export function layerNormSync(x: Tensor, options: LayerNormOptions = {}): Tensor<'float32'> {
  const { done, out } = layerNormRun(x, options, false);
  return finish(done, out, false);
}

function rmsNormRun(x: Tensor, options: RmsNormOptions, async: boolean) {
  const xt = expectFloat32(x, 'x');
  const o = expectObject(options, 'options') as RmsNormOptions;
  const { rows, dim } = rowsOf(xt, 'x');
  const eps = expectEps(o.eps, 'options.eps');
  const weight = vector(o.weight, 'options.weight', dim);
  const out = outputFor(o.out, 'options.out', xt, [xt], [o.weight]);
  return { done: ops().rmsNorm(xt.data, out.data, rows, dim, eps, weight, async), out };
}

/**
 * RMSNorm over the last dimension: y = x / sqrt(mean(x^2) + eps) * weight (eps default 1e-6).
 * Wan applies it to q and k over the full hidden dimension, before they are split into heads.
 *
 * @example
 * const qn = await rmsNorm(q, { weight: normQWeight }); // q: [tokens, dim]
 */
export async function rmsNorm(x: Tensor, options: RmsNormOptions = {}): Promise<Tensor<'float32'>> {
  const { done, out } = rmsNormRun(x, options, true);
  return finish(done, out, true);
}

/**
 * Synchronous {@link rmsNorm}, for small inputs (it blocks the event loop).
 *
 * @example
 * const qn = rmsNormSync(q, { weight: normQWeight });
 */
export function rmsNormSync(x: Tensor, options: RmsNormOptions = {}): Tensor<'float32'> {
  const { done, out } = rmsNormRun(x, options, false);
  return finish(done, out, false);
}

function gatedRun(x: Tensor, y: Tensor, gate: Tensor, options: GatedResidualOptions, async: boolean) {
  const xt = expectFloat32(x, 'x');
  const yt = expectFloat32(y, 'y');
  const gt = expectFloat32(gate, 'gate');
  const o = expectObject(options, 'options') as GatedResidualOptions;
  const { rows, dim } = rowsOf(xt, 'x');
  if (shapeText(yt.shape) !== shapeText(xt.shape)) {
    throw new RangeError(`Expected y to have the shape of x ${shapeText(xt.shape)} but received ${shapeText(yt.shape)}`);
  }
  const groups = groupsOf(gt, 'gate', rows, dim);
  const out = outputFor(o.out, 'options.out', xt, [xt, yt], [gt]);
  return { done: ops().gatedResidual(xt.data, yt.data, gt.data, out.data, rows, dim, groups, async), out };
}

/**
 * Gated residual of DiT blocks: out = x + y * gate[g], the gate [groups, dim] (or [dim]) applying to
 * consecutive equal groups of rows as in {@link layerNorm}. Pass `{ out: x }` for Wan's in-place
 * `x = x + y * e[2]`.
 *
 * @example
 * await gatedResidual(x, attnOut, gateMsa, { out: x }); // x += attnOut * gate, per frame
 */
export async function gatedResidual(x: Tensor, y: Tensor, gate: Tensor, options: GatedResidualOptions = {}): Promise<Tensor<'float32'>> {
  const { done, out } = gatedRun(x, y, gate, options, true);
  return finish(done, out, true);
}

/**
 * Synchronous {@link gatedResidual}, for small inputs (it blocks the event loop).
 *
 * @example
 * gatedResidualSync(x, ffnOut, gateFfn, { out: x });
 */
export function gatedResidualSync(x: Tensor, y: Tensor, gate: Tensor, options: GatedResidualOptions = {}): Tensor<'float32'> {
  const { done, out } = gatedRun(x, y, gate, options, false);
  return finish(done, out, false);
}
