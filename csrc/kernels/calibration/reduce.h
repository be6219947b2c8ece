// Streaming reductions for calibration: min/max (whole tensor or per axis) and per-column L2 norms.
//
// NaN policy: NaN values are skipped and counted (the count is returned), so a caller can report or
// reject them; +-Inf are ordinary values. A slice with no non-NaN value keeps the identity
// (min = +Inf, max = -Inf), which is also what makes partial results merge by min/max.
#pragma once
#include <cstdint>

namespace qarvd::calib {

// x is viewed as [outer, n, inner] (the kept axis has length n; outer and inner are the products of
// the dims before and after it; n = 1 reduces the whole tensor). out_min/out_max have n elements and
// are overwritten. Returns the number of NaN elements.
int64_t min_max(const float* x, int64_t outer, int64_t n, int64_t inner, float* out_min, float* out_max);

// c_j = sqrt(sum_i w[i, j]^2) for a row-major w[rows, cols]; squares are exact in float64 and the sum
// is accumulated in float64, so the relative error is about rows * 2^-53.
void column_norms(const float* w, int64_t rows, int64_t cols, double* out);

}  // namespace qarvd::calib
