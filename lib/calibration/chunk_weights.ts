// Chunk weights of the final-quality guided frame weighting (SPEC section 1).
import { expectWeights } from './checks.js';

/**
 * `w_k = s_k / mean(s)` for chunk sensitivities s (finite, >= 0, not all 0): the weights have mean
 * 1, so a weighted objective keeps the scale of the unweighted one.
 *
 * @example
 * chunkWeightsFromSensitivity([0.546, 0.167, 0.119, 0.079, 0.053, 0.026, 0.010]);
 * // Float64Array [3.822, 1.169, 0.833, 0.553, 0.371, 0.182, 0.07]
 */
export function chunkWeightsFromSensitivity(s: ArrayLike<number>): Float64Array {
  const v = expectWeights(s, 's');
  if (v.length === 0) throw new RangeError('Expected at least one sensitivity in s but received an empty array');
  let sum = 0;
  for (const x of v) sum += x;
  if (!(sum > 0)) throw new RangeError('Expected s to have a positive sum but all sensitivities are 0');
  const mean = sum / v.length;
  return v.map((x) => x / mean);
}
