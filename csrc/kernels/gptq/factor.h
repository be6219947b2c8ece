// The Hessian factor of GPTQ: the upper triangular R with H_d = R R^T, where H_d is H with its
// columns in processing order, dead columns fixed (H[j][j] == 0 -> 1) and lambda I added,
// lambda = damp * mean(diag).
//
// GPTQ's U = cholesky(inverse(H_d)) (upper) is R^-1: with J the reversal of the column order,
// J H_d J = L L^T (lower Cholesky), so H_d = R R^T with R = J L J upper, inverse(H_d) = R^-T R^-1
// and, by uniqueness of the Cholesky factor, U = R^-1. gptq.cc runs the algorithm on R directly
// (see there), so neither the inverse of H nor U is ever formed: K^3/6 multiply-adds instead of the
// K^3/2 of cholesky / cholesky_inverse / cholesky in the reference, and none of the rounding of
// an explicit inverse. Everything is float64. The blocked steps are rank-128 products done by the
// tile kernels of tile.h, parallel over rows; every element is summed in the same order whatever
// the thread count, so the factor is deterministic.
//
// Accuracy: Cholesky is backward stable (the computed R R^T equals H_d to about K * 2^-53 relative
// to its diagonal); the tests check R^-1 against an independent TypeScript factorization to 1e-10.
#pragma once
#include <cstdint>
#include <memory>
#include <stdexcept>

namespace qarvd::gptq {

// Pivot `index` (a row of the reversed matrix being factored) was not positive.
class NotPositiveDefinite : public std::range_error {
 public:
  NotPositiveDefinite(int64_t index, double pivot);
  int64_t index;
  double pivot;
};

// A K x K float64 matrix, row-major with a padded row stride (an odd number of cache lines, so
// walking down a column does not keep hitting the same cache sets).
class Workspace {
 public:
  explicit Workspace(int64_t k);
  double* row(int64_t i) { return data_.get() + i * ld; }
  const double* row(int64_t i) const { return data_.get() + i * ld; }
  double* data() { return data_.get(); }
  const double* data() const { return data_.get(); }
  const int64_t k;
  const int64_t ld;

 private:
  std::unique_ptr<double[]> data_;
};

// Row stride for rows of k doubles (at least k, an odd number of 64-byte lines).
int64_t padded_stride(int64_t k);

struct HessianInfo {
  double lambda;  // damp * mean of the fixed diagonal
  int64_t dead;   // columns with H[j][j] == 0
};

// Lower triangle of ws = J P^T H P J + lambda I (P: column p of the processing order is order[p];
// the entry of H taken for two columns is the one in the row of the column processed first), dead
// columns fixed; dead_pos[p] = 1 for a dead column at position p. The strict upper triangle is
// zeroed.
HessianInfo load_hessian(const double* h, int64_t k, const int32_t* order, double damp, Workspace& ws,
                         uint8_t* dead_pos);

// In place: the lower triangle of ws becomes L with ws = L L^T. Throws NotPositiveDefinite.
// The strict upper triangle is zero afterwards.
void cholesky_lower(Workspace& ws, bool avx2);

// In place: element (i, j) moves to (k-1-i, k-1-j), turning the lower L into the upper R = J L J.
void rotate_half_turn(Workspace& ws);

}  // namespace qarvd::gptq
