// Per-column L2 norms of a weight matrix, the statistic of outlier detection.
import type { Tensor } from '../tensor/tensor.js';
import { expectFloatTensor } from './checks.js';
import { calib } from './native.js';

function check(w: unknown): { t: Tensor<'float32'>; rows: number; cols: number } {
  const t = expectFloatTensor(w, 'w', 2);
  if (t.rank !== 2) throw new RangeError(`Expected w to have shape [outFeatures, inFeatures] but received shape [${t.shape.join(', ')}]`);
  return { t, rows: t.shape[0], cols: t.shape[1] };
}

/**
 * `c_j = ||W[:, j]||_2` for a weight `W[N_out, K]` (float32): the L2 norm of every input column,
 * accumulated in float64 (relative error about N_out * 2^-53). Runs off the event loop.
 *
 * @example
 * const w = Tensor.fromArray([3, 0, 4, 1], [2, 2]);
 * await columnNorms(w); // Float64Array [5, 1]
 */
export async function columnNorms(w: Tensor<'float32'>): Promise<Float64Array> {
  const { t, rows, cols } = check(w);
  const out = new Float64Array(cols);
  await calib().calibColumnNorms(t.data, rows, cols, out, true);
  return out;
}

/** Synchronous columnNorms. */
export function columnNormsSync(w: Tensor<'float32'>): Float64Array {
  const { t, rows, cols } = check(w);
  const out = new Float64Array(cols);
  calib().calibColumnNorms(t.data, rows, cols, out, false);
  return out;
}
