// Weighted histograms on a fixed range, mergeable by adding their float64 counts.
//
// Bin of a value x (float32, read as float64): with s = x - lo rounded to float64, e its rounding
// error (s + e == x - lo exactly, by TwoSum) and t = s * (bins / (hi - lo)):
//   b = floor(clamp(t, 0, bins - 1)), minus 1 when t is an integer > 0 and e < 0
// (the subtraction rounded up onto a bin edge). Values below lo (and -Inf) land in bin 0, values at
// or above hi (and +Inf) in bin bins - 1. When the bin width is a power of two every bin edge is
// exact and b is exactly the bin whose interval [lo + b w, lo + (b + 1) w) contains x; the
// observers' growing ranges rely on this. NaN is never binned; its weight is reported separately.
#pragma once
#include <cstdint>

namespace qarvd::calib {

// Adds x, viewed as [rows, cols], to counts[bins]. Element (r, c) has weight
// weight * row_weights[r] (row_weights may be null: weight alone). Without row weights a call adds
// weight * n_b to bin b, where n_b is the exact integer count of this call, whatever the thread
// count. Returns the weight of the NaN elements (not added to any bin).
double histogram_add(const float* x, int64_t rows, int64_t cols, const double* row_weights, double weight,
                     double lo, double hi, int64_t bins, double* counts);

// Bin of a single value under the rule above, or -1 for NaN (the reference for tests and callers).
int64_t histogram_bin(float x, double lo, double inv_width, int64_t bins);

}  // namespace qarvd::calib
