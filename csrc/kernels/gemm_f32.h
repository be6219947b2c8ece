// FP32 linear layer Y[M,N] = X[M,K] W[N,K]^T + b: the baseline every quantized speed-up is measured
// against. W is packed once into column panels; each call packs blocks of X, runs a register-tiled
// micro-kernel (AVX2+FMA 6x16, or portable C++) over cache blocks, on all cores.
#pragma once
#include <cstdint>

#include "gemm_common.h"

namespace qarvd::gemm {

constexpr int kF32Mr = 6;   // rows of the register tile
constexpr int kF32Nr = 16;  // columns of the register tile (two AVX2 vectors)

// W[N,K] (row-major, as torch.nn.Linear stores it) cut into K blocks of kc rows and, within a block,
// panels of kF32Nr output channels: block b, panel p is [kc_b][kF32Nr] floats (channels past N are
// zero), and a whole K block is contiguous, so a GEMM block walks memory linearly.
struct PackedF32 {
  int64_t n = 0, k = 0, kc = 0;
  AlignedBuffer<float> panels;

  int64_t npanels() const { return ceil_div(n, kF32Nr); }
  // Start of K block `block` (k0 = block * kc), panel p.
  const float* panel(int64_t block, int64_t p) const {
    const int64_t kcb = k - block * kc < kc ? k - block * kc : kc;
    return panels.data() + (block * kc * npanels() + p * kcb) * kF32Nr;
  }
};

PackedF32 pack_f32(const float* w, int64_t n, int64_t k);

// y[M,N] = x[M,K] w^T (+ bias[N] when bias is not null). x and y are row-major and dense.
void linear_f32(const float* x, int64_t m, const PackedF32& w, const float* bias, float* y);

// The micro-kernel contract, shared by the scalar and SIMD versions: multiplies a packed A panel
// ([kc][kF32Mr]) by a packed B panel ([kc][kF32Nr]) and writes the rows x cols corner of the tile to
// c (row stride ldc): c = acc (+ bias) when accumulate is false, c += acc otherwise.
using F32Kernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int rows,
                           int cols, bool accumulate, const float* bias);
void f32_kernel_scalar(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int rows, int cols,
                       bool accumulate, const float* bias);
void f32_kernel_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int rows, int cols,
                     bool accumulate, const float* bias);

}  // namespace qarvd::gemm
