#include "norm.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "../common/cpu_features.h"
#include "../common/parallel.h"
#include "simd_math.h"

namespace qarvd {
namespace {

struct Affine {
  const float* weight;
  const float* bias;
};

// Rows are independent; a part of at least ~16K elements amortises the pool wake-up.
int64_t row_grain(int64_t dim) { return std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(dim, 1)); }

void check_groups(NormShape s, int64_t groups) {
  if (groups < 1 || s.rows % groups != 0) throw std::range_error("norm: groups must divide rows");
}

// ---- scalar ----

// Statistics in double, so the scalar path doubles as a precise reference for the vector one.
void layer_norm_row_scalar(const float* x, float* y, int64_t dim, float eps, Affine a, const float* shift,
                           const float* scale) {
  double sum = 0;
  for (int64_t j = 0; j < dim; ++j) sum += x[j];
  const double mean = sum / dim;
  double sq = 0;
  for (int64_t j = 0; j < dim; ++j) sq += (x[j] - mean) * (x[j] - mean);
  const double rstd = 1.0 / std::sqrt(sq / dim + eps);
  for (int64_t j = 0; j < dim; ++j) {
    float v = static_cast<float>((x[j] - mean) * rstd);
    if (a.weight) v = v * a.weight[j] + (a.bias ? a.bias[j] : 0.0f);
    if (scale) v = v * (1.0f + scale[j]) + shift[j];
    y[j] = v;
  }
}

void rms_norm_row_scalar(const float* x, float* y, int64_t dim, float eps, const float* weight) {
  double sq = 0;
  for (int64_t j = 0; j < dim; ++j) sq += static_cast<double>(x[j]) * x[j];
  const float r = static_cast<float>(1.0 / std::sqrt(sq / dim + eps));
  for (int64_t j = 0; j < dim; ++j) y[j] = weight ? x[j] * r * weight[j] : x[j] * r;
}

// ---- AVX2 ----

// Sum over a row with four accumulators (32 lanes) and a masked tail.
QARVD_AVX2 float sum_avx2(const float* x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t j = 0;
  for (; j + 32 <= n; j += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + j));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + j + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(x + j + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(x + j + 24));
  }
  for (; j + 8 <= n; j += 8) a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + j));
  if (j < n) a1 = _mm256_add_ps(a1, _mm256_maskload_ps(x + j, simd::tail_mask_avx2(static_cast<int>(n - j))));
  return simd::hsum_avx2(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

// Sums of d = x - c and of d^2 over a row. With c the (float) mean, the first is the rounding error of
// that mean, which layer_norm_row_avx2 folds back in.
struct DevSums {
  float d, d2;
};
QARVD_AVX2 DevSums dev_sums_avx2(const float* x, int64_t n, float c) {
  const __m256 vc = _mm256_set1_ps(c);
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, q0 = s0, q1 = s0;
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) {
    __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + j), vc), d1 = _mm256_sub_ps(_mm256_loadu_ps(x + j + 8), vc);
    s0 = _mm256_add_ps(s0, d0);
    s1 = _mm256_add_ps(s1, d1);
    q0 = _mm256_fmadd_ps(d0, d0, q0);
    q1 = _mm256_fmadd_ps(d1, d1, q1);
  }
  for (; j + 8 <= n; j += 8) {
    __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + j), vc);
    s0 = _mm256_add_ps(s0, d);
    q0 = _mm256_fmadd_ps(d, d, q0);
  }
  if (j < n) {
    __m256i m = simd::tail_mask_avx2(static_cast<int>(n - j));
    // Masked-off lanes load 0; zero their deviation too so they add nothing.
    __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + j, m), vc), _mm256_castsi256_ps(m));
    s1 = _mm256_add_ps(s1, d);
    q1 = _mm256_fmadd_ps(d, d, q1);
  }
  return {simd::hsum_avx2(_mm256_add_ps(s0, s1)), simd::hsum_avx2(_mm256_add_ps(q0, q1))};
}

// Loads 8 lanes (or the masked tail) of an optional vector; `fallback` where the vector is null.
QARVD_AVX2 inline __m256 load_or(const float* p, int64_t j, bool tail, __m256i m, __m256 fallback) {
  if (!p) return fallback;
  return tail ? _mm256_maskload_ps(p + j, m) : _mm256_loadu_ps(p + j);
}

QARVD_AVX2 void layer_norm_row_avx2(const float* x, float* y, int64_t dim, float eps, Affine a,
                                    const float* shift, const float* scale) {
  const float n = static_cast<float>(dim);
  const float m0 = sum_avx2(x, dim) / n;
  const DevSums ds = dev_sums_avx2(x, dim, m0);
  const float delta = ds.d / n;
  const float var = std::max(0.0f, ds.d2 / n - delta * delta);
  // (x - m0) is exact for x near m0 (Sterbenz), so centring in two steps keeps rows with a large
  // common offset accurate to the precision of their deviations, not of the offset.
  const __m256 vm = _mm256_set1_ps(m0), vd = _mm256_set1_ps(delta), vr = _mm256_set1_ps(1.0f / std::sqrt(var + eps));
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  for (int64_t j = 0; j < dim; j += 8) {
    const bool tail = j + 8 > dim;
    const __m256i m = simd::tail_mask_avx2(static_cast<int>(std::min<int64_t>(8, dim - j)));
    __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_sub_ps(load_or(x, j, tail, m, zero), vm), vd), vr);
    if (a.weight) v = _mm256_fmadd_ps(v, load_or(a.weight, j, tail, m, one), load_or(a.bias, j, tail, m, zero));
    if (scale) v = _mm256_fmadd_ps(v, _mm256_add_ps(one, load_or(scale, j, tail, m, zero)), load_or(shift, j, tail, m, zero));
    if (tail) {
      _mm256_maskstore_ps(y + j, m, v);
    } else {
      _mm256_storeu_ps(y + j, v);
    }
  }
}

QARVD_AVX2 void rms_norm_row_avx2(const float* x, float* y, int64_t dim, float eps, const float* weight) {
  const float ms = dev_sums_avx2(x, dim, 0.0f).d2 / static_cast<float>(dim);
  const __m256 vr = _mm256_set1_ps(1.0f / std::sqrt(ms + eps));
  const __m256 one = _mm256_set1_ps(1.0f), zero = _mm256_setzero_ps();
  for (int64_t j = 0; j < dim; j += 8) {
    const bool tail = j + 8 > dim;
    const __m256i m = simd::tail_mask_avx2(static_cast<int>(std::min<int64_t>(8, dim - j)));
    __m256 v = _mm256_mul_ps(_mm256_mul_ps(load_or(x, j, tail, m, zero), vr), load_or(weight, j, tail, m, one));
    if (tail) {
      _mm256_maskstore_ps(y + j, m, v);
    } else {
      _mm256_storeu_ps(y + j, v);
    }
  }
}

QARVD_AVX2 void gated_row_avx2(const float* x, const float* r, const float* g, float* y, int64_t dim) {
  int64_t j = 0;
  for (; j + 8 <= dim; j += 8) {
    _mm256_storeu_ps(y + j, _mm256_fmadd_ps(_mm256_loadu_ps(r + j), _mm256_loadu_ps(g + j), _mm256_loadu_ps(x + j)));
  }
  for (; j < dim; ++j) y[j] = x[j] + r[j] * g[j];
}

}  // namespace

void layer_norm(const float* x, float* out, NormShape s, float eps, const float* weight, const float* bias,
                const float* shift, const float* scale, int64_t groups) {
  check_groups(s, groups);
  if ((shift == nullptr) != (scale == nullptr)) throw std::invalid_argument("layer_norm: shift and scale go together");
  const int64_t per_group = s.rows / groups;
  const bool avx2 = active_isa() >= Isa::kAvx2;
  const Affine a{weight, bias};
  parallel_for(s.rows, row_grain(s.dim), [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t g = i / per_group;
      const float* sh = shift ? shift + g * s.dim : nullptr;
      const float* sc = scale ? scale + g * s.dim : nullptr;
      if (avx2) {
        layer_norm_row_avx2(x + i * s.dim, out + i * s.dim, s.dim, eps, a, sh, sc);
      } else {
        layer_norm_row_scalar(x + i * s.dim, out + i * s.dim, s.dim, eps, a, sh, sc);
      }
    }
  });
}

void rms_norm(const float* x, float* out, NormShape s, float eps, const float* weight) {
  const bool avx2 = active_isa() >= Isa::kAvx2;
  parallel_for(s.rows, row_grain(s.dim), [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      if (avx2) {
        rms_norm_row_avx2(x + i * s.dim, out + i * s.dim, s.dim, eps, weight);
      } else {
        rms_norm_row_scalar(x + i * s.dim, out + i * s.dim, s.dim, eps, weight);
      }
    }
  });
}

void gated_residual(const float* x, const float* y, const float* gate, float* out, NormShape s, int64_t groups) {
  check_groups(s, groups);
  const int64_t per_group = s.rows / groups;
  const bool avx2 = active_isa() >= Isa::kAvx2;
  parallel_for(s.rows, row_grain(s.dim), [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      const float* g = gate + (i / per_group) * s.dim;
      const float* xi = x + i * s.dim;
      const float* yi = y + i * s.dim;
      float* oi = out + i * s.dim;
      if (avx2) {
        gated_row_avx2(xi, yi, g, oi, s.dim);
      } else {
        for (int64_t j = 0; j < s.dim; ++j) oi[j] = xi[j] + yi[j] * g[j];
      }
    }
  });
}

}  // namespace qarvd
