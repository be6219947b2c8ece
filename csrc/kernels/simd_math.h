// Vectorised transcendental functions shared by the model-op kernels (softmax in attention, SiLU and
// GELU in activation). Header-only so the AVX2 kernels can inline them; callers must themselves be
// compiled for avx2+fma (function target attribute).
#pragma once
#include <immintrin.h>


namespace qarvd::simd {

#ifndef QARVD_AVX2
#define QARVD_AVX2 __attribute__((target("avx2,fma,f16c")))
#endif

// exp(x) for 8 floats, Cephes expf scheme: x = n ln2 + r with ln2 split in two (Cody-Waite) so
// that r is exact, |r| <= ln2/2, e^r by a degree-7 polynomial, times 2^n built in the exponent bits.
// Max relative error 1.2e-7 on [-87.3, 88] (test/model/ops/activation.test.ts measures it against
// Math.exp). Saturating, so that the hot loops need no special cases: x is clamped to [-87.33, 88]
// (e^x between 1.2e-38 and 1.65e38; softmax masks and activations make the clamp invisible), and
// NaN stays NaN (the clamps take x as the operand MAXPS/MINPS return when one side is NaN).
QARVD_AVX2 inline __m256 exp_avx2(__m256 x) {
  __m256 xc = _mm256_min_ps(_mm256_set1_ps(88.0f), _mm256_max_ps(_mm256_set1_ps(-87.33654022216797f), x));
  __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // n is in [-126, 127] after the clamp, so 2^n is a normal float.
  const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
}

QARVD_AVX2 inline float hsum_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

QARVD_AVX2 inline float hmin_avx2(__m256 v) {
  __m128 s = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_min_ps(s, _mm_movehl_ps(s, s));
  s = _mm_min_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

QARVD_AVX2 inline float hmax_avx2(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// Mask selecting the first n (0..8) lanes, for loads and stores of row tails.
QARVD_AVX2 inline __m256i tail_mask_avx2(int n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

}  // namespace qarvd::simd
