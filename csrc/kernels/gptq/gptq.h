// GPTQ (Frantar et al. 2022, Algorithm 1) for a linear layer W[rows, cols] with a Hessian proxy
// H[cols, cols] (here the chunk-weighted Gram sum_k w_k X_k^T X_k), generalised to several
// quantizer groups so that one routine serves per-channel, per-group and the dual-scale layers.
//
// Columns are visited in a given processing order. For column p (in that order) of every row,
//   q = quantize_value(float(w_p), scale, zeroPoint)       (the semantics of quant_math.h)
//   err = (w_p - dequantize_value(q)) / U[p][p]
//   w[p+1:] -= err * U[p][p+1:]
// with U = cholesky(inverse(H_d)) upper. It is computed in the equivalent left-looking form on R,
// H_d = R R^T, U = R^-1 (factor.h, gptq.cc): the contributions of the columns before a block of
// blockSize columns come in as one product per block (the paper's lazy batch updates), those within
// the block column by column. Every group whose qparams come from the updated weights lies within
// one block (blocks end early before such a group that would cross their end, and grow to hold one
// longer than blockSize), so its qparams see the updates of every column before it: the integers
// equal those of the unblocked algorithm, whatever blockSize (up to float64 rounding differences
// of the order of 1e-16 relative in the weights).
//
// Everything is float64. Rows are independent given R, so they are split between threads; results
// do not depend on the thread count.
#pragma once
#include <cstdint>

#include "../quant_math.h"

namespace qarvd::gptq {

// How a group's scale and zero point are obtained.
enum class GroupMode : int {
  kGiven = 0,    // read from the scale / zero_point arrays
  kDynamic = 1,  // min/max of its weights as updated by every column before it, when its first column
                 // is reached; its columns must be consecutive in the processing order
  kStatic = 2,   // min/max of the initial weights (dead columns zeroed), before anything is quantized
};

struct Group {
  QType dtype;
  bool symmetric;
  GroupMode mode;
};

struct Problem {
  const float* w;          // [rows, cols]
  int64_t rows, cols;
  const double* h;         // [cols, cols], symmetric
  const int32_t* order;    // [cols]: the column quantized at each position
  const int32_t* group_of; // [cols], by position: the group of the column there
  const Group* groups;
  int64_t num_groups;
  double damp;             // lambda = damp * mean(diag H)
  int64_t block_size;
  bool rtn_loss;           // also compute the loss of round-to-nearest with the same quantizers
  bool avx2;
};

struct Output {
  uint8_t* q;          // [rows, cols], original column order; the byte of the integer (two's complement)
  float* scale;        // [rows, num_groups]: read for given groups, written for the others
  int32_t* zero_point; // [rows, num_groups]
};

struct Stats {
  double loss_rtn;  // trace(D H D^T) of round-to-nearest (NaN unless rtn_loss)
  double loss;      // trace(D H D^T) of GPTQ
  double lambda;
  int64_t dead;
};

// Throws std::invalid_argument on inconsistent arguments and std::range_error naming the column when
// H + lambda I is not positive definite.
Stats run(const Problem& p, const Output& out);

// What check_hessian found: the first offending entry in row-major order (i >= j), or kind kOk.
struct HessianIssue {
  enum Kind : int { kOk = 0, kNotFinite = 1, kNegativeDiagonal = 2, kAsymmetric = 3 } kind;
  int64_t i, j;
};

// Checks H (k x k) for finite entries, a non-negative diagonal and symmetry:
// |H_ij - H_ji| <= tol * max(|H_ij|, |H_ji|, sqrt(H_ii H_jj)). Parallel; used for validation.
HessianIssue check_hessian(const double* h, int64_t k, double tol);

// R with H_d = R R^T (upper, so that U = cholesky(inverse(H_d)) = R^-1) for H with columns in
// `order`: r is [cols, cols] row-major with the strict lower part zero, positions in processing order.
Stats hessian_factor(const double* h, int64_t cols, const int32_t* order, double damp, double* r, bool avx2);

}  // namespace qarvd::gptq
