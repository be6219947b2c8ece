// Exact quantiles of raw values (linear interpolation between order statistics) and the
// percentile() entry point that also reads histograms.
import { Tensor, expectTensor } from '../tensor/tensor.js';
import { describe } from '../util/validate.js';
import { expectProbability } from './checks.js';
import { Histogram } from './histogram.js';

/**
 * q-quantile of ascending `sorted` values with linear interpolation: position q (n - 1),
 * v[f] + (pos - f) (v[f + 1] - v[f]) with f = floor(pos) (NumPy's and torch.quantile's default
 * 'linear' rule). The same arithmetic as the native per-channel clip search.
 */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) throw new RangeError('Cannot take a quantile of no values');
  const pos = q * (n - 1);
  const f = Math.floor(pos);
  const frac = pos - f;
  const v0 = sorted[f];
  if (frac === 0 || f + 1 >= n) return v0;
  return v0 + frac * (sorted[f + 1] - v0);
}

/** How the median of an even number of values is taken. */
export type MedianConvention = 'average' | 'lower';

/**
 * Median of ascending values. 'average' (default): the mean of the two middle values for an even
 * count (= quantileSorted(sorted, 0.5), NumPy's median). 'lower': the lower middle value
 * (torch.median).
 */
export function medianSorted(sorted: ArrayLike<number>, convention: MedianConvention = 'average'): number {
  const n = sorted.length;
  if (n === 0) throw new RangeError('Cannot take the median of no values');
  if (convention === 'lower') return sorted[(n - 1) >> 1];
  return quantileSorted(sorted, 0.5);
}

/**
 * The p-percentile (p in [0, 1]) of a Histogram (read with linear interpolation inside the bin,
 * see Histogram.percentile), of a float32 Tensor or of an array of numbers (exact: the values are
 * sorted and interpolated linearly at position p (n - 1); NaN values are left out).
 *
 * @example
 * percentile([1, 2, 3, 4], 0.5);       // 2.5
 * percentile(histogram, 0.9999);       // from the bins
 */
export function percentile(source: Histogram | Tensor<'float32'> | ArrayLike<number>, p: number): number {
  expectProbability(p, 'p');
  if (source instanceof Histogram) return source.percentile(p);
  let values: ArrayLike<number>;
  if (source instanceof Tensor) {
    values = expectTensor(source, 'source', ['float32']).data;
  } else if (Array.isArray(source) || (ArrayBuffer.isView(source) && !(source instanceof DataView))) {
    values = source as ArrayLike<number>;
  } else {
    throw new TypeError(`Expected a Histogram, a Tensor or an array of numbers for source but received ${describe(source)}`);
  }
  const sorted = Float64Array.from(values as ArrayLike<number>);
  for (let i = 0; i < sorted.length; i++) {
    if (typeof (values as ArrayLike<unknown>)[i] !== 'number') throw new TypeError(`Expected numbers in source but element ${i} is ${describe((values as ArrayLike<unknown>)[i])}`);
  }
  sorted.sort();
  let n = sorted.length;
  while (n > 0 && Number.isNaN(sorted[n - 1])) n--;
  if (n === 0) throw new RangeError('Expected source to contain at least one value that is not NaN');
  return quantileSorted(sorted.subarray(0, n), p);
}
