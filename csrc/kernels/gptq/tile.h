// Double-precision matrix products for GPTQ: a 6 x 8 register tile (AVX2 FMA, or portable scalar
// code) and a driver over a set of row tiles that streams B in column chunks sized for L2.
//
// Every product in GPTQ (the Cholesky and triangular-inverse updates, the lazy column updates and
// the round-to-nearest loss) has the form C (op)= A B with row-major operands; each element of C
// is summed over the shared index in ascending order within one tile call, so a result does not
// depend on how rows are split between threads.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace qarvd::gptq {

constexpr int kMr = 6;  // rows of C per register tile
constexpr int kNr = 8;  // columns of C per register tile (two AVX2 vectors of doubles)

enum class Store { kAdd, kSub, kSet, kSetNeg };  // C += AB, C -= AB, C = AB, C = -AB

struct ConstMat {
  const double* p;
  int64_t ld;
};
struct Mat {
  double* p;
  int64_t ld;
};

// C[mr x nr] (op)= A[mr x kk] B[kk x nr] for mr <= kMr, nr <= kNr; avx2 picks the vector path.
void tile(ConstMat a, ConstMat b, int64_t kk, Mat c, int mr, int nr, Store op, bool avx2);

// For every row tile starting at tile_rows[t] (relative to row 0 of a and c; its height is
// min(kMr, rows - start)): C[rows of the tile, 0:cols) (op)= A[rows, 0:kk] B[0:kk, 0:cols].
// lower: only the column panels that reach the tile's diagonal (col < start + height) are
// computed, for updates of a lower triangle; elements above the diagonal within those panels are
// written too (callers keep the strict upper triangle as scratch). B is read in column chunks that
// fit in L2 while all the tiles pass over them.
void multiply_tiles(ConstMat a, ConstMat b, int64_t kk, Mat c, const std::vector<int64_t>& tile_rows, int64_t rows,
                    int64_t cols, bool lower, Store op, bool avx2);

// Splits [0, rows) into row tiles of kMr and calls fn(tile starts) once per part, the parts in
// parallel. balanced: tile t goes with tile T-1-t, for triangular work that grows with the row.
void for_row_tiles(int64_t rows, bool balanced, const std::function<void(const std::vector<int64_t>&)>& fn);

// y[0:n] -= e * x[0:n]
void axpy_neg(double* y, const double* x, double e, int64_t n, bool avx2);

// sum_i x[i] y[i] (ascending order within each of four interleaved partial sums on AVX2)
double dot(const double* x, const double* y, int64_t n, bool avx2);

}  // namespace qarvd::gptq
