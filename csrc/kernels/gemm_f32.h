// FP32 linear layer Y[M,N] = X[M,K] W[N,K]^T + b: the baseline every quantized speed-up is measured
// against. W is packed once into column panels; each call packs blocks of X, runs a register-tiled
// micro-kernel (AVX-512 12x32, AVX2+FMA 6x16, or portable C++) over cache blocks, on all cores.
#pragma once
#include <cstdint>

#include "../common/cpu_features.h"
#include "epilogue.h"
#include "gemm_common.h"

namespace qarvd::gemm {

constexpr int kF32Nr = 16;  // output channels of a packed weight panel

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

// y[M,N] = x[M,K] w^T (+ bias[N] when bias is not null), then the epilogue (if any) on each
// finished block. x and y are row-major and dense.
void linear_f32(const float* x, int64_t m, const PackedF32& w, const float* bias, float* y,
                const Epilogue* post = nullptr);

// Several layers over the same input (q, k and v of one x): one parallel job, and for a few rows x
// is packed once for all of them. Each layer's result is what linear_f32 would give.
struct F32Job {
  const PackedF32* w;
  const float* bias;
  float* y;
  const Epilogue* post;
};
void linear_f32_multi(const float* x, int64_t m, const F32Job* jobs, int count);

// The micro-kernel contract, shared by the scalar and SIMD versions: multiplies a packed A panel
// ([kc][mr]) by `panels` consecutive packed B panels (each [kc][kF32Nr], the next one kc * kF32Nr
// floats further) and writes the rows x cols corner of the tile to c (row stride ldc): c = acc
// (+ bias) when accumulate is false, c += acc otherwise.
using F32Kernel = void (*)(int64_t kc, const float* a, const float* b, int panels, float* c, int64_t ldc, int rows,
                           int cols, bool accumulate, const float* bias);

// A code path of the FP32 GEMM: its register tile (mr rows, up to max_panels weight panels) and
// micro-kernel.
struct F32Path {
  int mr;
  int max_panels;
  F32Kernel kernel;
};
extern const F32Path kF32Scalar;  // 6 x 16
extern const F32Path kF32Avx2;    // 6 x 16
namespace native { extern const F32Path kF32Avx512; }    // 12 x 32
namespace emulated { extern const F32Path kF32Avx512; }

// The path linear_f32 takes now (for backends()).
KernelPath f32_path();

}  // namespace qarvd::gemm
