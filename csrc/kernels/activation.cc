#include "activation.h"

#include <cmath>

#include "../common/cpu_features.h"
#include "../common/parallel.h"
#include "simd_math.h"

namespace qarvd {
namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kGeluCubic = 0.044715f;
// Pointwise work is memory bound: ranges of 16K floats keep each thread's slice in its L2.
constexpr int64_t kGrain = 1 << 14;

inline float gelu_scalar(float x) {
  float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
  return x / (1.0f + std::exp(-2.0f * u));
}
inline float silu_scalar(float x) { return x / (1.0f + std::exp(-x)); }

void run_scalar(Activation kind, const float* x, float* out, int64_t n) {
  if (kind == Activation::kGeluTanh) {
    for (int64_t i = 0; i < n; ++i) out[i] = gelu_scalar(x[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = silu_scalar(x[i]);
  }
}

// x / (1 + exp(z)). Where z > 88 the saturating exp would leave x / e^88, so the result is x * 0
// there instead: (-)0 for finite x (the true value is below |x| 6e-39), and NaN for x = -inf, as
// -inf * sigmoid(-inf) = -inf * 0 in PyTorch and in the scalar path.
QARVD_AVX2 inline __m256 x_over_1_plus_exp(__m256 x, __m256 z) {
  __m256 y = _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), simd::exp_avx2(z)));
  return _mm256_blendv_ps(y, _mm256_mul_ps(x, _mm256_setzero_ps()), _mm256_cmp_ps(z, _mm256_set1_ps(88.0f), _CMP_GT_OQ));
}

QARVD_AVX2 inline __m256 gelu8(__m256 x) {
  __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
  __m256 minus_2u = _mm256_mul_ps(_mm256_set1_ps(-2.0f * kSqrt2OverPi), _mm256_fmadd_ps(_mm256_set1_ps(kGeluCubic), x3, x));
  return x_over_1_plus_exp(x, minus_2u);
}

QARVD_AVX2 inline __m256 silu8(__m256 x) { return x_over_1_plus_exp(x, _mm256_sub_ps(_mm256_setzero_ps(), x)); }

template <__m256 (*F)(__m256)>
QARVD_AVX2 void map_avx2(const float* x, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, F(_mm256_loadu_ps(x + i)));
  if (i < n) {
    __m256i m = simd::tail_mask_avx2(static_cast<int>(n - i));
    _mm256_maskstore_ps(out + i, m, F(_mm256_maskload_ps(x + i, m)));
  }
}

QARVD_AVX2 __m256 exp8(__m256 x) { return simd::exp_avx2(x); }

}  // namespace

void activation(Activation kind, const float* x, float* out, int64_t n) {
  const bool avx2 = active_isa() >= Isa::kAvx2;
  parallel_for(n, kGrain, [&](int64_t b, int64_t e, int) {
    if (!avx2) return run_scalar(kind, x + b, out + b, e - b);
    if (kind == Activation::kGeluTanh) return map_avx2<gelu8>(x + b, out + b, e - b);
    map_avx2<silu8>(x + b, out + b, e - b);
  });
}

Epilogue activation_epilogue(Activation kind) {
  Epilogue e;
  e.kind = static_cast<int>(kind);
  e.apply = [](const Epilogue& e, float* y, int64_t ldy, int64_t, int64_t, int64_t rows, int64_t cols) {
    // Per element the same function as activation(): the vector one (tails masked) or the scalar one.
    const Activation k = static_cast<Activation>(e.kind);
    const bool avx2 = active_isa() >= Isa::kAvx2;
    for (int64_t i = 0; i < rows; ++i) {
      float* r = y + i * ldy;
      if (!avx2) run_scalar(k, r, r, cols);
      else if (k == Activation::kGeluTanh) map_avx2<gelu8>(r, r, cols);
      else map_avx2<silu8>(r, r, cols);
    }
  };
  return e;
}

void exp_vector(const float* x, float* out, int64_t n) {
  if (active_isa() >= Isa::kAvx2) return map_avx2<exp8>(x, out, n);
  for (int64_t i = 0; i < n; ++i) out[i] = std::exp(x[i]);
}

}  // namespace qarvd
