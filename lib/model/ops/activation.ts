// Pointwise activations of the DiT: GELU (tanh form, the feed-forward) and SiLU (the time embedding).
import { Tensor } from '../../tensor/tensor.js';
import { expectObject } from '../../util/validate.js';
import { expectFloat32, finish, ops, outputFor } from './common.js';

export interface ActivationOptions {
  /** Output tensor of x's shape; may be x itself (in place). */
  out?: Tensor;
}

function run(kind: 'gelu_tanh' | 'silu', x: Tensor, options: ActivationOptions, async: boolean) {
  const xt = expectFloat32(x, 'x');
  const o = expectObject(options, 'options') as ActivationOptions;
  const out = outputFor(o.out, 'options.out', xt, [xt]);
  return { done: ops().activation(kind, xt.data, out.data, async), out };
}

/**
 * GELU, tanh approximation (PyTorch `gelu(approximate='tanh')`, Wan's FFN), elementwise:
 *
 *   gelu(x) = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
 *
 * evaluated as the identical x / (1 + exp(-2u)), which keeps full relative precision for negative x
 * (no 1 + tanh cancellation). The AVX2 path uses a polynomial exp with max relative error about 1.2e-7;
 * results agree with the formula in double to 1e-6 relative (tested). NaN stays NaN; gelu(+inf) =
 * +inf and gelu(-inf) = NaN, as in PyTorch (-inf * 0).
 *
 * @example
 * const h = await gelu(ffnHidden);            // new tensor
 * await gelu(ffnHidden, { out: ffnHidden });  // in place
 */
export async function gelu(x: Tensor, options: ActivationOptions = {}): Promise<Tensor<'float32'>> {
  const { done, out } = run('gelu_tanh', x, options, true);
  return finish(done, out, true);
}

/**
 * Synchronous {@link gelu}, for small inputs (it blocks the event loop).
 *
 * @example
 * const h = geluSync(hidden);
 */
export function geluSync(x: Tensor, options: ActivationOptions = {}): Tensor<'float32'> {
  const { done, out } = run('gelu_tanh', x, options, false);
  return finish(done, out, false);
}

/**
 * SiLU (swish), elementwise: silu(x) = x * sigmoid(x) = x / (1 + exp(-x)). Same exp and accuracy as
 * {@link gelu}.
 *
 * @example
 * const e = await silu(timeEmbedding);
 */
export async function silu(x: Tensor, options: ActivationOptions = {}): Promise<Tensor<'float32'>> {
  const { done, out } = run('silu', x, options, true);
  return finish(done, out, true);
}

/**
 * Synchronous {@link silu}, for small inputs (it blocks the event loop).
 *
 * @example
 * const e = siluSync(timeEmbedding);
 */
export function siluSync(x: Tensor, options: ActivationOptions = {}): Tensor<'float32'> {
  const { done, out } = run('silu', x, options, false);
  return finish(done, out, false);
}

/**
 * exp(x) elementwise through the kernels' own vectorised exp (the one softmax, GELU and SiLU use on
 * the active code path), so that its accuracy can be measured: max relative error about 1.2e-7 on
 * [-87.3, 88]. The AVX2 exp saturates outside that range (about 1.2e-38 below, 1.65e38 above); NaN
 * stays NaN. Internal: not exported from the package.
 */
export function kernelExpSync(x: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  ops().expVector(x, out);
  return out;
}
