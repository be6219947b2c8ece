// A step fused into a GEMM's output: applied to each finished block of output rows while it is
// still in the cache, instead of as a separate pass over the whole output. Steps are defined by the
// op families (activation.h: an activation; norm.h: a gated residual), with exactly the float
// operations of the separate op, so that fusing never changes a result.
#pragma once
#include <cstdint>

namespace qarvd {

struct Epilogue {
  // Called for y[row0 .. row0 + rows)[col0 .. col0 + cols) (row stride ldy) once those outputs are final.
  void (*apply)(const Epilogue& e, float* y, int64_t ldy, int64_t row0, int64_t col0, int64_t rows,
                int64_t cols) = nullptr;
  int kind = 0;                 // the op's own selector (e.g. which activation)
  const float* gate = nullptr;  // gated residual: gate [n]
  float* residual = nullptr;    // gated residual: r [m][ld_residual], r += y * gate
  int64_t ld_residual = 0;
};

inline void apply_epilogue(const Epilogue* e, float* y, int64_t ldy, int64_t row0, int64_t col0, int64_t rows,
                           int64_t cols) {
  if (e && e->apply && rows > 0 && cols > 0) e->apply(*e, y, ldy, row0, col0, rows, cols);
}

}  // namespace qarvd
