// MSE clip search: the (weighted) squared error of fake quantization, with the exact semantics of
// quant_math.h (q = clamp(roundHalfToEven(x / s) + z), x' = (q - z) s), for candidate ranges.
//
// Errors are float64 sums of ((double)x' - (double)x)^2; NaN elements are skipped.
#pragma once
#include <cstdint>

#include "../quant_math.h"

namespace qarvd::calib {

struct SseTotals {
  double weight_sum;  // total weight of the non-NaN elements (the divisor of the mean)
  int64_t nan;        // NaN elements skipped
};

// Per tensor: x viewed as [rows, cols]; element (r, c) weighs row_weights[r] (1 when null). For each
// candidate range [cand_lo[c], cand_hi[c]] the qparams are choose_qparams(lo, hi, dtype, symmetric)
// and sse[c] = sum_e w_e (x'_e - x_e)^2. A histogram is searched as rows = bins, cols = 1, x = bin
// centres, row_weights = counts.
SseTotals fake_quant_sse(const float* x, int64_t rows, int64_t cols, const double* row_weights,
                         const float* cand_lo, const float* cand_hi, int64_t candidates, QType dtype,
                         bool symmetric, double* sse);

// Per output channel of w[rows, cols]: candidate c of row r is [P_r(1 - p_c), P_r(p_c)], where P_r(q) is
// the q-quantile of the row's values with linear interpolation between order statistics
// (position q * (cols - 1)). The candidate with the smallest mean squared error wins (the first on
// ties); its qparams, range and index are written per row, and every candidate's MSE to
// mse[r * candidates + c]. Rows with NaN are rejected (std::out_of_range).
void channel_clip_search(const float* w, int64_t rows, int64_t cols, const double* percentiles,
                         int64_t candidates, QType dtype, bool symmetric, float* out_scale,
                         int32_t* out_zero_point, float* out_lo, float* out_hi, int32_t* out_choice,
                         double* mse);

// q-quantile of sorted[0, n) with linear interpolation at position q * (n - 1).
double quantile_sorted(const float* sorted, int64_t n, double q);

}  // namespace qarvd::calib
