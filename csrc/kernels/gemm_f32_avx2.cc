// The AVX2+FMA micro-kernel of the FP32 GEMM: a 6x16 tile in 12 ymm accumulators, two B vectors and
// two alternating broadcast registers for A (all 16 registers), 12 FMAs per 8 loads. The inner loop
// is inline assembly because compilers spill accumulators of a tile this size.
#include <immintrin.h>

#include "gemm_f32.h"

namespace qarvd::gemm {

#define QARVD_AVX2 __attribute__((target("avx2,fma,f16c")))

// One k step: B row at byte offset `bo` of %[b], A column at byte offset `ao` of %[a].
#define F32_STEP(ao, bo)                                   \
  "vmovaps " #bo "(%[b]), %%ymm12\n\t"                     \
  "vmovaps " #bo "+32(%[b]), %%ymm13\n\t"                  \
  "vbroadcastss " #ao "(%[a]), %%ymm14\n\t"                \
  "vfmadd231ps %%ymm12, %%ymm14, %%ymm0\n\t"               \
  "vfmadd231ps %%ymm13, %%ymm14, %%ymm1\n\t"               \
  "vbroadcastss " #ao "+4(%[a]), %%ymm15\n\t"              \
  "vfmadd231ps %%ymm12, %%ymm15, %%ymm2\n\t"               \
  "vfmadd231ps %%ymm13, %%ymm15, %%ymm3\n\t"               \
  "vbroadcastss " #ao "+8(%[a]), %%ymm14\n\t"              \
  "vfmadd231ps %%ymm12, %%ymm14, %%ymm4\n\t"               \
  "vfmadd231ps %%ymm13, %%ymm14, %%ymm5\n\t"               \
  "vbroadcastss " #ao "+12(%[a]), %%ymm15\n\t"             \
  "vfmadd231ps %%ymm12, %%ymm15, %%ymm6\n\t"               \
  "vfmadd231ps %%ymm13, %%ymm15, %%ymm7\n\t"               \
  "vbroadcastss " #ao "+16(%[a]), %%ymm14\n\t"             \
  "vfmadd231ps %%ymm12, %%ymm14, %%ymm8\n\t"               \
  "vfmadd231ps %%ymm13, %%ymm14, %%ymm9\n\t"               \
  "vbroadcastss " #ao "+20(%[a]), %%ymm15\n\t"             \
  "vfmadd231ps %%ymm12, %%ymm15, %%ymm10\n\t"              \
  "vfmadd231ps %%ymm13, %%ymm15, %%ymm11\n\t"

namespace {

QARVD_AVX2 void f32_kernel_avx2(int64_t kc, const float* a, const float* b, int, float* c, int64_t ldc, int rows,
                                int cols, bool accumulate, const float* bias) {
  alignas(32) float tile[6][16];
  int64_t quads = kc / 4, rest = kc % 4;
  __asm__ volatile(
      "vxorps %%ymm0, %%ymm0, %%ymm0\n\t"
      "vxorps %%ymm1, %%ymm1, %%ymm1\n\t"
      "vxorps %%ymm2, %%ymm2, %%ymm2\n\t"
      "vxorps %%ymm3, %%ymm3, %%ymm3\n\t"
      "vxorps %%ymm4, %%ymm4, %%ymm4\n\t"
      "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
      "vxorps %%ymm6, %%ymm6, %%ymm6\n\t"
      "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
      "vxorps %%ymm8, %%ymm8, %%ymm8\n\t"
      "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"
      "vxorps %%ymm10, %%ymm10, %%ymm10\n\t"
      "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"
      "test %[quads], %[quads]\n\t"
      "jz 2f\n\t"
      "1:\n\t"
      "prefetcht0 512(%[b])\n\t"
      F32_STEP(0, 0)
      F32_STEP(24, 64)
      "prefetcht0 576(%[b])\n\t"
      F32_STEP(48, 128)
      F32_STEP(72, 192)
      "add $96, %[a]\n\t"
      "add $256, %[b]\n\t"
      "dec %[quads]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "test %[rest], %[rest]\n\t"
      "jz 4f\n\t"
      "3:\n\t"
      F32_STEP(0, 0)
      "add $24, %[a]\n\t"
      "add $64, %[b]\n\t"
      "dec %[rest]\n\t"
      "jnz 3b\n\t"
      "4:\n\t"
      "vmovaps %%ymm0, 0(%[t])\n\t"
      "vmovaps %%ymm1, 32(%[t])\n\t"
      "vmovaps %%ymm2, 64(%[t])\n\t"
      "vmovaps %%ymm3, 96(%[t])\n\t"
      "vmovaps %%ymm4, 128(%[t])\n\t"
      "vmovaps %%ymm5, 160(%[t])\n\t"
      "vmovaps %%ymm6, 192(%[t])\n\t"
      "vmovaps %%ymm7, 224(%[t])\n\t"
      "vmovaps %%ymm8, 256(%[t])\n\t"
      "vmovaps %%ymm9, 288(%[t])\n\t"
      "vmovaps %%ymm10, 320(%[t])\n\t"
      "vmovaps %%ymm11, 352(%[t])\n\t"
      : [a] "+r"(a), [b] "+r"(b), [quads] "+r"(quads), [rest] "+r"(rest)
      : [t] "r"(&tile[0][0])
      : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");

  if (rows == 6 && cols == 16) {
    if (accumulate) {
      for (int i = 0; i < 6; ++i) {
        _mm256_storeu_ps(c + i * ldc, _mm256_add_ps(_mm256_loadu_ps(c + i * ldc), _mm256_load_ps(tile[i])));
        _mm256_storeu_ps(c + i * ldc + 8, _mm256_add_ps(_mm256_loadu_ps(c + i * ldc + 8), _mm256_load_ps(tile[i] + 8)));
      }
    } else {
      const __m256 b0 = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps();
      const __m256 b1 = bias ? _mm256_loadu_ps(bias + 8) : _mm256_setzero_ps();
      for (int i = 0; i < 6; ++i) {
        _mm256_storeu_ps(c + i * ldc, _mm256_add_ps(_mm256_load_ps(tile[i]), b0));
        _mm256_storeu_ps(c + i * ldc + 8, _mm256_add_ps(_mm256_load_ps(tile[i] + 8), b1));
      }
    }
    return;
  }
  for (int i = 0; i < rows; ++i) {
    float* ci = c + i * ldc;
    for (int j = 0; j < cols; ++j) {
      if (accumulate) ci[j] += tile[i][j];
      else ci[j] = bias ? tile[i][j] + bias[j] : tile[i][j];
    }
  }
}

#undef F32_STEP

}  // namespace

const F32Path kF32Avx2 = {6, 1, f32_kernel_avx2};

}  // namespace qarvd::gemm
