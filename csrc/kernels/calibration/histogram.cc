#include "histogram.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "../../common/cpu_features.h"
#include "split.h"

namespace qarvd::calib {
namespace {

constexpr int64_t kBlock = 512;            // indices computed per block before scattering
constexpr int64_t kMaxPerPass = int64_t{1} << 30;  // keeps per-part uint32 counts from overflowing

void bins_scalar(const float* x, int64_t len, double lo, double inv, int64_t bins, int32_t* idx) {
  for (int64_t i = 0; i < len; ++i) idx[i] = static_cast<int32_t>(histogram_bin(x[i], lo, inv, bins));
}

// Same float64 arithmetic as histogram_bin, lane by lane: the rounded offset s = x - lo with its
// exact error (TwoSum), t = s * inv clamped to [0, bins - 1], floor, and the step down when t is an
// integer that the rounding of s reached from below.
__attribute__((target("avx2,fma,f16c"))) inline __m128i bins4(__m256d a, __m256d neg_lo, __m256d inv, __m256d top) {
  const __m256d zero = _mm256_setzero_pd();
  __m256d s = _mm256_add_pd(a, neg_lo);
  __m256d t = _mm256_mul_pd(s, inv);
  __m256d f = _mm256_floor_pd(_mm256_min_pd(_mm256_max_pd(t, zero), top));
  __m256d on_edge = _mm256_and_pd(_mm256_cmp_pd(t, f, _CMP_EQ_OQ), _mm256_cmp_pd(t, zero, _CMP_GT_OQ));
  // Values landing exactly on an edge are rare; only then is the rounding error needed.
  if (!_mm256_testz_pd(on_edge, on_edge)) {
    __m256d bb = _mm256_sub_pd(s, a);
    __m256d err = _mm256_add_pd(_mm256_sub_pd(a, _mm256_sub_pd(s, bb)), _mm256_sub_pd(neg_lo, bb));
    __m256d down = _mm256_and_pd(on_edge, _mm256_cmp_pd(err, zero, _CMP_LT_OQ));
    f = _mm256_sub_pd(f, _mm256_and_pd(down, _mm256_set1_pd(1.0)));
  }
  return _mm256_cvttpd_epi32(f);
}

// NaN lanes become -1.
__attribute__((target("avx2,fma,f16c"))) void bins_avx2(const float* x, int64_t len, double lo, double inv,
                                                         int64_t bins, int32_t* idx) {
  const __m256d neg_lo = _mm256_set1_pd(-lo), vinv = _mm256_set1_pd(inv);
  const __m256d top = _mm256_set1_pd(static_cast<double>(bins - 1));
  const __m256i none = _mm256_set1_epi32(-1);
  int64_t i = 0;
  for (; i + 8 <= len; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    __m128i a = bins4(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), neg_lo, vinv, top);
    __m128i b = bins4(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), neg_lo, vinv, top);
    __m256i q = _mm256_set_m128i(b, a);
    __m256i nan = _mm256_castps_si256(_mm256_cmp_ps(v, v, _CMP_UNORD_Q));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(idx + i), _mm256_blendv_epi8(q, none, nan));
  }
  bins_scalar(x + i, len - i, lo, inv, bins, idx + i);
}

using BinsFn = void (*)(const float*, int64_t, double, double, int64_t, int32_t*);

// Integer counts of x[0, len): cnt has bins + 1 slots, slot 0 counting NaN (bin -1), so the
// scatter needs no branch.
void count_span(BinsFn to_bins, const float* x, int64_t len, double lo, double inv, int64_t bins, uint32_t* cnt) {
  int32_t idx[kBlock];
  uint32_t* slot = cnt + 1;
  for (int64_t s = 0; s < len; s += kBlock) {
    int64_t m = std::min(kBlock, len - s);
    to_bins(x + s, m, lo, inv, bins, idx);
    for (int64_t i = 0; i < m; ++i) ++slot[idx[i]];
  }
}

// Fewer values than bins: sort their bin indices and add the runs, which gives the same
// weight * n_b as the partial-count path without touching all bins.
double add_sparse(BinsFn to_bins, const float* x, int64_t len, double weight, double lo, double inv, int64_t bins,
                  double* counts) {
  std::vector<int32_t> idx(static_cast<size_t>(len));
  to_bins(x, len, lo, inv, bins, idx.data());
  std::sort(idx.begin(), idx.end());
  int64_t nan = 0, i = 0;
  while (i < len && idx[i] < 0) ++i;
  nan = i;
  while (i < len) {
    int64_t j = i;
    while (j < len && idx[j] == idx[i]) ++j;
    counts[idx[i]] += weight * static_cast<double>(j - i);
    i = j;
  }
  return weight * static_cast<double>(nan);
}

double add_unweighted(BinsFn to_bins, const float* x, int64_t total, double weight, double lo, double inv,
                      int64_t bins, double* counts) {
  if (total < bins / 4) return add_sparse(to_bins, x, total, weight, lo, inv, bins, counts);
  int64_t nan_total = 0;
  std::vector<uint64_t> sum(static_cast<size_t>(bins), 0);
  for (int64_t pass = 0; pass < total; pass += kMaxPerPass) {
    const float* xp = x + pass;
    int64_t len = std::min(kMaxPerPass, total - pass);
    int parts = parts_for(len, std::max<int64_t>(1 << 16, 2 * bins));
    const size_t stride = static_cast<size_t>(bins) + 1;
    std::vector<uint32_t> partial(static_cast<size_t>(parts) * stride, 0);
    run_parts(len, parts, [&](int p, int64_t b, int64_t e) {
      count_span(to_bins, xp + b, e - b, lo, inv, bins, partial.data() + static_cast<size_t>(p) * stride);
    });
    for (int p = 0; p < parts; ++p) {
      const uint32_t* src = partial.data() + static_cast<size_t>(p) * stride;
      nan_total += src[0];
      for (int64_t k = 0; k < bins; ++k) sum[k] += src[k + 1];
    }
  }
  for (int64_t k = 0; k < bins; ++k)
    if (sum[k]) counts[k] += weight * static_cast<double>(sum[k]);
  return weight * static_cast<double>(nan_total);
}

double add_row_weighted(BinsFn to_bins, const float* x, int64_t rows, int64_t cols, const double* row_weights,
                        double weight, double lo, double inv, int64_t bins, double* counts) {
  int parts = parts_for(rows, (std::max<int64_t>(1 << 16, 2 * bins) + cols - 1) / cols);
  std::vector<double> partial(static_cast<size_t>(parts) * bins, 0.0);
  std::vector<double> nan(parts, 0.0);
  run_parts(rows, parts, [&](int p, int64_t r0, int64_t r1) {
    double* cnt = partial.data() + static_cast<size_t>(p) * bins;
    int32_t idx[kBlock];
    double nw = 0;
    for (int64_t r = r0; r < r1; ++r) {
      const double w = row_weights[r];
      const float* row = x + r * cols;
      for (int64_t s = 0; s < cols; s += kBlock) {
        int64_t m = std::min(kBlock, cols - s);
        to_bins(row + s, m, lo, inv, bins, idx);
        for (int64_t i = 0; i < m; ++i) {
          if (idx[i] < 0) {
            nw += w;
          } else {
            cnt[idx[i]] += w;
          }
        }
      }
    }
    nan[p] = nw;
  });
  double nan_total = 0;
  for (int p = 0; p < parts; ++p) nan_total += nan[p];
  for (int64_t k = 0; k < bins; ++k) {
    double s = 0;
    for (int p = 0; p < parts; ++p) s += partial[static_cast<size_t>(p) * bins + k];
    if (s != 0) counts[k] += weight * s;
  }
  return weight * nan_total;
}

}  // namespace

int64_t histogram_bin(float x, double lo, double inv_width, int64_t bins) {
  if (std::isnan(x)) return -1;
  const double a = x, c = -lo;
  const double s = a + c;
  // TwoSum: a + c == s + err exactly, so err < 0 means the rounding of x - lo went up.
  const double bb = s - a;
  const double err = (a - (s - bb)) + (c - bb);
  const double t = s * inv_width;
  const double top = static_cast<double>(bins - 1);
  double f = std::floor(std::min(std::max(t, 0.0), top));
  // t landed exactly on an edge only through that rounding: the value lies below the edge.
  if (t == f && err < 0 && t > 0) f -= 1;
  return static_cast<int64_t>(f);
}

double histogram_add(const float* x, int64_t rows, int64_t cols, const double* row_weights, double weight,
                     double lo, double hi, int64_t bins, double* counts) {
  if (bins < 1 || bins > INT32_MAX) throw std::out_of_range("histogram: bins out of range");
  if (!(hi > lo)) throw std::out_of_range("histogram: hi must exceed lo");
  const int64_t total = rows * cols;
  if (total == 0) return 0;
  const double inv = static_cast<double>(bins) / (hi - lo);
  BinsFn to_bins = active_isa() >= Isa::kAvx2 ? bins_avx2 : bins_scalar;
  if (row_weights) return add_row_weighted(to_bins, x, rows, cols, row_weights, weight, lo, inv, bins, counts);
  return add_unweighted(to_bins, x, total, weight, lo, inv, bins, counts);
}

}  // namespace qarvd::calib
