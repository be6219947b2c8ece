// The growing range of histogram observers: [-2^e, 2^e) with a power-of-two bin count. When data
// leaves the range, e grows and every pair of bins merges into one; because all bin edges are
// exact binary fractions, a value lands in the same coarse bin whether it was binned at the old
// range and merged or binned at the new range directly, so observers that grew differently still
// merge exactly.

/** Smallest exponent (ranges are never narrower than [-2^-126, 2^-126)). */
export const MIN_EXPONENT = -126;

export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/** Smallest e >= MIN_EXPONENT with -2^e <= min and max < 2^e, for finite min <= max. */
export function exponentFor(min: number, max: number): number {
  let e = MIN_EXPONENT;
  if (max > 0) {
    let k = Math.floor(Math.log2(max)) + 1;
    while (2 ** (k - 1) > max) k--;
    while (2 ** k <= max) k++;
    e = Math.max(e, k);
  }
  if (min < 0) {
    const a = -min;
    let k = Math.ceil(Math.log2(a));
    while (2 ** (k - 1) >= a) k--;
    while (2 ** k < a) k++;
    e = Math.max(e, k);
  }
  return e;
}

/** Range of exponent e. */
export function gridRange(e: number): { lo: number; hi: number } {
  return { lo: -(2 ** e), hi: 2 ** e };
}

/**
 * Counts of a histogram over [-R, R) re-binned onto [-2^d R, 2^d R) with the same bin count
 * (a power of two >= 4): old bin i goes to new bin floor((i + B/2 (2^d - 1)) / 2^d). After log2(B)
 * doublings every value sits in one of the two middle bins and further doublings change nothing.
 */
export function coarsen(counts: Float64Array, doublings: number): Float64Array {
  const bins = counts.length;
  const steps = Math.min(doublings, Math.log2(bins));
  let cur = counts.slice();
  const half = bins / 2;
  for (let s = 0; s < steps; s++) {
    const next = new Float64Array(bins);
    for (let j = bins / 4; j < (3 * bins) / 4; j++) next[j] = cur[2 * j - half] + cur[2 * j - half + 1];
    cur = next;
  }
  return cur;
}
