// 3-D rotary position embedding of Wan2.1 for the causal DiT's self-attention.
import { Tensor } from '../../tensor/tensor.js';
import { describe, expectFiniteNumber, expectInteger, expectObject } from '../../util/validate.js';
import { expectFloat32, finish, headsOf, ops, outputFor } from './common.js';

export interface Rope3dOptions {
  /** Latent grid of the tokens after patching: [frames, height, width]; tokens = frames * height * width, frame-major. */
  grid: readonly [number, number, number];
  /** Absolute index of the first frame (the chunk's start frame in the causal model); default 0. */
  startFrame?: number;
  /** Base of the frequencies; default 10000 (Wan). */
  theta?: number;
  /** Heads, when x is [tokens, heads * headDim]; unused (or checked) when x is [tokens, heads, headDim]. */
  heads?: number;
  /** Output tensor of x's shape; may be x itself (in place). */
  out?: Tensor;
}

/**
 * Sizes of the frame, height and width parts of a head of `headDim` elements, as Wan splits it:
 * [headDim - 4 floor(headDim / 6), 2 floor(headDim / 6), 2 floor(headDim / 6)] (128 -> [44, 42, 42]).
 *
 * @example
 * ropeSplit(128); // [44, 42, 42]
 */
export function ropeSplit(headDim: number): [number, number, number] {
  expectInteger(headDim, 'headDim', { min: 6 });
  if (headDim % 2 !== 0) throw new RangeError(`Expected an even headDim but received ${headDim}`);
  const sixth = Math.floor(headDim / 6);
  return [headDim - 4 * sixth, 2 * sixth, 2 * sixth];
}

function run(x: Tensor, options: Rope3dOptions, async: boolean) {
  const xt = expectFloat32(x, 'x');
  const o = expectObject(options, 'options') as unknown as Rope3dOptions;
  const { tokens, heads, headDim } = headsOf(xt, 'x', o.heads, 'options.heads');
  if (headDim < 6 || headDim % 2 !== 0) {
    throw new RangeError(`Expected an even head dimension >= 6 for x but received ${headDim}`);
  }
  if (!Array.isArray(o.grid) || o.grid.length !== 3) {
    throw new TypeError(`Expected options.grid to be [frames, height, width] but received ${describe(o.grid)}`);
  }
  const [frames, height, width] = o.grid.map((g, i) => expectInteger(g, `options.grid[${i}]`, { min: 0 }));
  if (frames * height * width !== tokens) {
    throw new RangeError(`Expected options.grid [${frames}, ${height}, ${width}] to cover the ${tokens} tokens of x but it covers ${frames * height * width}`);
  }
  const startFrame = expectInteger(o.startFrame ?? 0, 'options.startFrame', { min: 0 });
  const theta = expectFiniteNumber(o.theta ?? 10000, 'options.theta', { positive: true });
  const out = outputFor(o.out, 'options.out', xt, [xt]);
  return { done: ops().rope3d(xt.data, out.data, tokens, heads, headDim, frames, height, width, startFrame, theta, async), out };
}

/**
 * Wan's 3-D rotary embedding on q or k ([tokens, heads, headDim], or [tokens, dim] with options.heads).
 * The head dimension splits into frame, height and width parts ({@link ropeSplit}); within a part of
 * p elements, pair i = (x[2i], x[2i+1]) is rotated as a complex number:
 *
 *   (a + ib) * e^(i pos w_i),  w_i = theta^(-2i / p)
 *   out[2i] = a cos - b sin,  out[2i+1] = a sin + b cos
 *
 * with pos = startFrame + f for the frame part, the row for the height part and the column for the
 * width part of the token at (f, row, col) of the grid (tokens ordered frame, row, column). The
 * angles are computed in double (Wan uses complex128 tables), the rotation in float32.
 *
 * @example
 * // chunk 2 of a video made of 3-frame chunks, 30 x 52 patched latents, 12 heads of 128
 * const qr = await rope3d(q, { grid: [3, 30, 52], startFrame: 6 });
 */
export async function rope3d(x: Tensor, options: Rope3dOptions): Promise<Tensor<'float32'>> {
  const { done, out } = run(x, options, true);
  return finish(done, out, true);
}

/**
 * Synchronous {@link rope3d}, for small inputs (it blocks the event loop).
 *
 * @example
 * rope3dSync(k, { grid: [3, 8, 8], startFrame: 3, out: k }); // in place
 */
export function rope3dSync(x: Tensor, options: Rope3dOptions): Tensor<'float32'> {
  const { done, out } = run(x, options, false);
  return finish(done, out, false);
}
