// The AVX-512 micro-kernel of the FP32 GEMM: a 12 x 32 tile (two weight panels) in 24 zmm
// accumulators, two B vectors and a broadcast per row: 24 FMAs per 14 loads, compute bound on cores
// with two 512-bit FMA pipes. Written with intrinsics (the compiler keeps the tile in registers: 32
// zmm), so that the same source also builds against SIMDe (emulated/gemm_f32_avx512.cc).
#include "simd_build.h"

#include "gemm_f32.h"

namespace qarvd::gemm::QARVD_SIMD_NS {
namespace {

constexpr int kMr = 12;

// acc[i][v] += a[k][i] * b_v[k] over k < kc, for NV panels of 16 channels.
template <int NV>
QARVD_TARGET_AVX512 inline void multiply(int64_t kc, const float* a, const float* b, int64_t panel_stride,
                                         __m512 (&acc)[kMr][2]) {
#pragma GCC unroll 12
  for (int i = 0; i < kMr; ++i)
    for (int v = 0; v < NV; ++v) acc[i][v] = _mm512_setzero_ps();
  const float* b1 = b + panel_stride;
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 w0 = _mm512_load_ps(b + k * kF32Nr);
    const __m512 w1 = NV > 1 ? _mm512_load_ps(b1 + k * kF32Nr) : w0;
    const float* ak = a + k * kMr;
#pragma GCC unroll 12
    for (int i = 0; i < kMr; ++i) {
      const __m512 x = _mm512_set1_ps(ak[i]);
      acc[i][0] = _mm512_fmadd_ps(x, w0, acc[i][0]);
      if (NV > 1) acc[i][1] = _mm512_fmadd_ps(x, w1, acc[i][1]);
    }
  }
}

QARVD_TARGET_AVX512 void f32_kernel_avx512(int64_t kc, const float* a, const float* b, int panels, float* c,
                                           int64_t ldc, int rows, int cols, bool accumulate, const float* bias) {
  __m512 acc[kMr][2];
  if (panels > 1) {
    multiply<2>(kc, a, b, kc * kF32Nr, acc);
  } else {
    multiply<1>(kc, a, b, kc * kF32Nr, acc);
  }
  // Whole vectors go straight to c; a partial last vector (N not a multiple of 16) through a buffer.
  for (int v = 0; v * kF32Nr < cols; ++v) {
    const int width = cols - v * kF32Nr < kF32Nr ? cols - v * kF32Nr : kF32Nr;
    const float* bv = !accumulate && bias ? bias + v * kF32Nr : nullptr;
    for (int i = 0; i < rows; ++i) {
      float* ci = c + i * ldc + v * kF32Nr;
      if (width == kF32Nr) {
        const __m512 prev = accumulate ? _mm512_loadu_ps(ci) : bv ? _mm512_loadu_ps(bv) : _mm512_setzero_ps();
        _mm512_storeu_ps(ci, _mm512_add_ps(prev, acc[i][v]));
      } else {
        alignas(64) float t[kF32Nr];
        _mm512_store_ps(t, acc[i][v]);
        for (int j = 0; j < width; ++j) ci[j] = accumulate ? ci[j] + t[j] : bv ? bv[j] + t[j] : t[j];
      }
    }
  }
}

}  // namespace

const F32Path kF32Avx512 = {kMr, 2, f32_kernel_avx512};

}  // namespace qarvd::gemm::QARVD_SIMD_NS
