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

// The modulation group of consecutive rows, without a division per row.
struct GroupCursor {
  int64_t group, left, per_group;
  GroupCursor(int64_t row, int64_t per) : group(row / per), left(per - row % per), per_group(per) {}
  void next() {
    if (--left == 0) {
      ++group;
      left = per_group;
    }
  }
};

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
  // Four independent chains each, so the loop runs at load rate rather than at FMA latency.
  __m256 s[4], q[4];
  for (int k = 0; k < 4; ++k) s[k] = q[k] = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 32 <= n; j += 32) {
    for (int k = 0; k < 4; ++k) {
      const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + j + 8 * k), vc);
      s[k] = _mm256_add_ps(s[k], d);
      q[k] = _mm256_fmadd_ps(d, d, q[k]);
    }
  }
  for (; j + 8 <= n; j += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + j), vc);
    s[0] = _mm256_add_ps(s[0], d);
    q[0] = _mm256_fmadd_ps(d, d, q[0]);
  }
  if (j < n) {
    const __m256i m = simd::tail_mask_avx2(static_cast<int>(n - j));
    // Masked-off lanes load 0; zero their deviation too so they add nothing.
    const __m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(x + j, m), vc), _mm256_castsi256_ps(m));
    s[1] = _mm256_add_ps(s[1], d);
    q[1] = _mm256_fmadd_ps(d, d, q[1]);
  }
  const __m256 st = _mm256_add_ps(_mm256_add_ps(s[0], s[1]), _mm256_add_ps(s[2], s[3]));
  const __m256 qt = _mm256_add_ps(_mm256_add_ps(q[0], q[1]), _mm256_add_ps(q[2], q[3]));
  return {simd::hsum_avx2(st), simd::hsum_avx2(qt)};
}

template <bool kTail>
QARVD_AVX2 inline __m256 load8(const float* p, __m256i m) {
  return kTail ? _mm256_maskload_ps(p, m) : _mm256_loadu_ps(p);
}
template <bool kTail>
QARVD_AVX2 inline void store8(float* p, __m256i m, __m256 v) {
  if (kTail) {
    _mm256_maskstore_ps(p, m, v);
  } else {
    _mm256_storeu_ps(p, v);
  }
}

// What a LayerNorm row applies after centring: the row's statistics and its optional vectors.
struct LnRow {
  __m256 m0, delta, rstd;
  const float *weight, *bias, *shift, *scale;
};

// Eight elements (or the masked tail) of a LayerNorm row; the optional steps are template flags so
// that the row loop carries no per-element branches.
template <bool kTail, bool kWeight, bool kBias, bool kMod>
QARVD_AVX2 inline void ln_step(const float* x, float* y, int64_t j, __m256i m, const LnRow& r) {
  __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_sub_ps(load8<kTail>(x + j, m), r.m0), r.delta), r.rstd);
  if (kWeight) {
    const __m256 w = load8<kTail>(r.weight + j, m);
    v = kBias ? _mm256_fmadd_ps(v, w, load8<kTail>(r.bias + j, m)) : _mm256_mul_ps(v, w);
  }
  if (kMod) {
    const __m256 sc = _mm256_add_ps(_mm256_set1_ps(1.0f), load8<kTail>(r.scale + j, m));
    v = _mm256_fmadd_ps(v, sc, load8<kTail>(r.shift + j, m));
  }
  store8<kTail>(y + j, m, v);
}

template <bool kWeight, bool kBias, bool kMod>
QARVD_AVX2 void layer_norm_row_avx2(const float* x, float* y, int64_t dim, float eps, LnRow r) {
  const float inv_n = 1.0f / static_cast<float>(dim);
  const float m0 = sum_avx2(x, dim) * inv_n;
  const DevSums ds = dev_sums_avx2(x, dim, m0);
  const float delta = ds.d * inv_n;
  const float var = std::max(0.0f, ds.d2 * inv_n - delta * delta);
  // (x - m0) is exact for x near m0 (Sterbenz), so centring in two steps keeps rows with a large
  // common offset accurate to the precision of their deviations, not of the offset.
  r.m0 = _mm256_set1_ps(m0);
  r.delta = _mm256_set1_ps(delta);
  r.rstd = _mm256_set1_ps(1.0f / std::sqrt(var + eps));
  const __m256i all = _mm256_set1_epi32(-1);
  int64_t j = 0;
  for (; j + 8 <= dim; j += 8) ln_step<false, kWeight, kBias, kMod>(x, y, j, all, r);
  if (j < dim) ln_step<true, kWeight, kBias, kMod>(x, y, j, simd::tail_mask_avx2(static_cast<int>(dim - j)), r);
}

using LnRowFn = void (*)(const float*, float*, int64_t, float, LnRow);

LnRowFn pick_layer_norm_row(bool weight, bool bias, bool mod) {
  if (!weight) return mod ? layer_norm_row_avx2<false, false, true> : layer_norm_row_avx2<false, false, false>;
  if (!bias) return mod ? layer_norm_row_avx2<true, false, true> : layer_norm_row_avx2<true, false, false>;
  return mod ? layer_norm_row_avx2<true, true, true> : layer_norm_row_avx2<true, true, false>;
}

template <bool kTail, bool kWeight>
QARVD_AVX2 inline void rms_step(const float* x, float* y, const float* w, int64_t j, __m256i m, __m256 r) {
  __m256 v = _mm256_mul_ps(load8<kTail>(x + j, m), r);
  if (kWeight) v = _mm256_mul_ps(v, load8<kTail>(w + j, m));
  store8<kTail>(y + j, m, v);
}

template <bool kWeight>
QARVD_AVX2 void rms_norm_row_avx2(const float* x, float* y, int64_t dim, float eps, const float* weight) {
  const float ms = dev_sums_avx2(x, dim, 0.0f).d2 / static_cast<float>(dim);
  const __m256 r = _mm256_set1_ps(1.0f / std::sqrt(ms + eps));
  const __m256i all = _mm256_set1_epi32(-1);
  int64_t j = 0;
  for (; j + 8 <= dim; j += 8) rms_step<false, kWeight>(x, y, weight, j, all, r);
  if (j < dim) rms_step<true, kWeight>(x, y, weight, j, simd::tail_mask_avx2(static_cast<int>(dim - j)), r);
}

QARVD_AVX2 void gated_row_avx2(const float* x, const float* r, const float* g, float* y, int64_t dim) {
  int64_t j = 0;
  for (; j + 8 <= dim; j += 8) {
    _mm256_storeu_ps(y + j, _mm256_fmadd_ps(_mm256_loadu_ps(r + j), _mm256_loadu_ps(g + j), _mm256_loadu_ps(x + j)));
  }
  if (j < dim) {
    const __m256i m = simd::tail_mask_avx2(static_cast<int>(dim - j));
    store8<true>(y + j, m, _mm256_fmadd_ps(load8<true>(r + j, m), load8<true>(g + j, m), load8<true>(x + j, m)));
  }
}

}  // namespace

void layer_norm(const float* x, float* out, NormShape s, float eps, const float* weight, const float* bias,
                const float* shift, const float* scale, int64_t groups) {
  check_groups(s, groups);
  if ((shift == nullptr) != (scale == nullptr)) throw std::invalid_argument("layer_norm: shift and scale go together");
  if (bias && !weight) throw std::invalid_argument("layer_norm: bias needs weight");
  const int64_t per_group = s.rows / groups;
  const bool avx2 = active_isa() >= Isa::kAvx2;
  const Affine a{weight, bias};
  const LnRowFn row_avx2 = pick_layer_norm_row(weight != nullptr, bias != nullptr, scale != nullptr);
  parallel_for(s.rows, row_grain(s.dim), [&](int64_t b, int64_t e, int) {
    GroupCursor gc(b, per_group);
    for (int64_t i = b; i < e; ++i, gc.next()) {
      const int64_t g = gc.group;
      const float* sh = shift ? shift + g * s.dim : nullptr;
      const float* sc = scale ? scale + g * s.dim : nullptr;
      if (avx2) {
        row_avx2(x + i * s.dim, out + i * s.dim, s.dim, eps, LnRow{{}, {}, {}, weight, bias, sh, sc});
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
        (weight ? rms_norm_row_avx2<true> : rms_norm_row_avx2<false>)(x + i * s.dim, out + i * s.dim, s.dim, eps, weight);
      } else {
        rms_norm_row_scalar(x + i * s.dim, out + i * s.dim, s.dim, eps, weight);
      }
    }
  });
}

void rms_norm_row(const float* x, float* out, int64_t dim, float eps, const float* weight) {
  if (active_isa() >= Isa::kAvx2) {
    (weight ? rms_norm_row_avx2<true> : rms_norm_row_avx2<false>)(x, out, dim, eps, weight);
  } else {
    rms_norm_row_scalar(x, out, dim, eps, weight);
  }
}

void gated_residual(const float* x, const float* y, const float* gate, float* out, NormShape s, int64_t groups) {
  check_groups(s, groups);
  const int64_t per_group = s.rows / groups;
  const bool avx2 = active_isa() >= Isa::kAvx2;
  parallel_for(s.rows, row_grain(s.dim), [&](int64_t b, int64_t e, int) {
    GroupCursor gc(b, per_group);
    for (int64_t i = b; i < e; ++i, gc.next()) {
      const float* g = gate + gc.group * s.dim;
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

Epilogue gated_residual_epilogue(const float* gate, float* residual, int64_t ld_residual) {
  Epilogue e;
  e.gate = gate;
  e.residual = residual;
  e.ld_residual = ld_residual;
  e.apply = [](const Epilogue& e, float* y, int64_t ldy, int64_t row0, int64_t col0, int64_t rows, int64_t cols) {
    const bool avx2 = active_isa() >= Isa::kAvx2;
    const float* g = e.gate + col0;
    for (int64_t i = 0; i < rows; ++i) {
      float* r = e.residual + (row0 + i) * e.ld_residual + col0;
      const float* yi = y + i * ldy;
      if (avx2) {
        gated_row_avx2(r, yi, g, r, cols);
      } else {
        for (int64_t j = 0; j < cols; ++j) r[j] = r[j] + yi[j] * g[j];
      }
    }
  };
  return e;
}

}  // namespace qarvd
