// Weighted Gram matrix accumulation H += sum_r w_r x_r x_r^T for X[rows, cols] (the Hessian proxy of
// GPTQ-style rounding), mergeable by adding.
//
// Precision: the AVX2 path multiplies and sums in float32 within blocks of kGramBlockRows rows and
// adds each block's sums into the float64 H; the error of an entry is about
// kGramBlockRows * 2^-24 * sum_r |w_r x_ri x_rj| at worst (typically far less). The scalar path is
// float64 throughout.
#pragma once
#include <cstdint>

namespace qarvd::calib {

constexpr int64_t kGramBlockRows = 256;

// h is a full row-major cols x cols float64 matrix; the upper triangle is accumulated and then copied
// to the lower one, so h stays symmetric. w_r = weight * row_weights[r] (row_weights may be null).
void gram_accumulate(const float* x, int64_t rows, int64_t cols, const double* row_weights, double weight,
                     double* h);

}  // namespace qarvd::calib
