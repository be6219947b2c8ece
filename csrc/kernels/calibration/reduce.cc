#include "reduce.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../../common/cpu_features.h"
#include "split.h"

namespace qarvd::calib {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
// Elements per part below which threading costs more than it saves.
constexpr int64_t kGrain = 1 << 15;
// Widest matrix whose column norms use per-part partial sums (512 KiB of float64 per part).
constexpr int64_t kMaxPartialCols = 1 << 16;

int64_t count_nan(const float* x, int64_t len) {
  int64_t c = 0;
  for (int64_t i = 0; i < len; ++i) c += std::isnan(x[i]) ? 1 : 0;
  return c;
}

// Folds x[0, len) into (mn, mx); comparisons with NaN are false, so NaN never enters.
int64_t run_scalar(const float* x, int64_t len, float& mn, float& mx) {
  int64_t nan = 0;
  float a = mn, b = mx;
  for (int64_t i = 0; i < len; ++i) {
    float v = x[i];
    if (v != v) {
      ++nan;
      continue;
    }
    if (v < a) a = v;
    if (v > b) b = v;
  }
  mn = a;
  mx = b;
  return nan;
}

// Elementwise mn[j] = min(mn[j], x[j]) (and max), for the kept axis being the last one.
int64_t combine_scalar(const float* x, int64_t len, float* mn, float* mx) {
  int64_t nan = 0;
  for (int64_t j = 0; j < len; ++j) {
    float v = x[j];
    if (v != v) {
      ++nan;
      continue;
    }
    if (v < mn[j]) mn[j] = v;
    if (v > mx[j]) mx[j] = v;
  }
  return nan;
}

// vminps/vmaxps return their second operand when either is NaN, so min(x, acc) keeps acc for a NaN
// x. NaNs are only noted (an OR of the unordered masks) and counted afterwards when present.
__attribute__((target("avx2,fma,f16c"))) int64_t run_avx2(const float* x, int64_t len, float& mn, float& mx) {
  __m256 mn0 = _mm256_set1_ps(mn), mn1 = mn0, mx0 = _mm256_set1_ps(mx), mx1 = mx0;
  __m256 bad = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= len; i += 16) {
    __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
    mn0 = _mm256_min_ps(a, mn0);
    mx0 = _mm256_max_ps(a, mx0);
    mn1 = _mm256_min_ps(b, mn1);
    mx1 = _mm256_max_ps(b, mx1);
    bad = _mm256_or_ps(bad, _mm256_or_ps(_mm256_cmp_ps(a, a, _CMP_UNORD_Q), _mm256_cmp_ps(b, b, _CMP_UNORD_Q)));
  }
  for (; i + 8 <= len; i += 8) {
    __m256 a = _mm256_loadu_ps(x + i);
    mn0 = _mm256_min_ps(a, mn0);
    mx0 = _mm256_max_ps(a, mx0);
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
  }
  mn0 = _mm256_min_ps(mn0, mn1);
  mx0 = _mm256_max_ps(mx0, mx1);
  alignas(32) float lmn[8], lmx[8];
  _mm256_store_ps(lmn, mn0);
  _mm256_store_ps(lmx, mx0);
  float a = lmn[0], b = lmx[0];
  for (int l = 1; l < 8; ++l) {
    a = std::min(a, lmn[l]);
    b = std::max(b, lmx[l]);
  }
  int64_t nan = _mm256_testz_ps(bad, bad) ? 0 : count_nan(x, i);
  nan += run_scalar(x + i, len - i, a, b);
  mn = a;
  mx = b;
  return nan;
}

__attribute__((target("avx2,fma,f16c"))) int64_t combine_avx2(const float* x, int64_t len, float* mn, float* mx) {
  __m256 bad = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= len; j += 8) {
    __m256 a = _mm256_loadu_ps(x + j);
    _mm256_storeu_ps(mn + j, _mm256_min_ps(a, _mm256_loadu_ps(mn + j)));
    _mm256_storeu_ps(mx + j, _mm256_max_ps(a, _mm256_loadu_ps(mx + j)));
    bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, a, _CMP_UNORD_Q));
  }
  int64_t nan = _mm256_testz_ps(bad, bad) ? 0 : count_nan(x, j);
  return nan + combine_scalar(x + j, len - j, mn + j, mx + j);
}

void norms_scalar(const float* w, int64_t cols, int64_t r0, int64_t r1, int64_t j0, int64_t j1, double* acc) {
  for (int64_t r = r0; r < r1; ++r) {
    const float* row = w + r * cols;
    for (int64_t j = j0; j < j1; ++j) {
      double v = row[j];
      acc[j - j0] += v * v;
    }
  }
}

// Squares of floats are exact in double, so FMA and multiply-add give the same sums.
__attribute__((target("avx2,fma,f16c"))) void norms_avx2(const float* w, int64_t cols, int64_t r0, int64_t r1,
                                                          int64_t j0, int64_t j1, double* acc) {
  int64_t len = j1 - j0;
  for (int64_t r = r0; r < r1; ++r) {
    const float* row = w + r * cols + j0;
    int64_t j = 0;
    for (; j + 8 <= len; j += 8) {
      __m256 v = _mm256_loadu_ps(row + j);
      __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
      __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
      _mm256_storeu_pd(acc + j, _mm256_fmadd_pd(lo, lo, _mm256_loadu_pd(acc + j)));
      _mm256_storeu_pd(acc + j + 4, _mm256_fmadd_pd(hi, hi, _mm256_loadu_pd(acc + j + 4)));
    }
    for (; j < len; ++j) {
      double v = row[j];
      acc[j] += v * v;
    }
  }
}

}  // namespace

int64_t min_max(const float* x, int64_t outer, int64_t n, int64_t inner, float* out_min, float* out_max) {
  std::fill(out_min, out_min + n, kInf);
  std::fill(out_max, out_max + n, -kInf);
  const int64_t total = outer * n * inner;
  if (total == 0) return 0;
  const bool avx2 = active_isa() >= Isa::kAvx2;
  auto run = avx2 ? run_avx2 : run_scalar;
  auto combine = avx2 ? combine_avx2 : combine_scalar;

  // Last axis kept (inner == 1): each part folds a contiguous block of rows elementwise into its own
  // partial min/max rows, so every thread streams whole rows.
  if (inner == 1 && n > 1 && n <= kMaxPartialCols) {
    int parts = parts_for(outer, (kGrain + n - 1) / n);
    std::vector<float> pmin(static_cast<size_t>(parts) * n, kInf), pmax(static_cast<size_t>(parts) * n, -kInf);
    std::vector<int64_t> nan(parts, 0);
    run_parts(outer, parts, [&](int p, int64_t o0, int64_t o1) {
      float* mn = pmin.data() + static_cast<size_t>(p) * n;
      float* mx = pmax.data() + static_cast<size_t>(p) * n;
      int64_t c = 0;
      for (int64_t o = o0; o < o1; ++o) c += combine(x + o * n, n, mn, mx);
      nan[p] = c;
    });
    int64_t sum = 0;
    for (int p = 0; p < parts; ++p) {
      sum += nan[p];
      const float* mn = pmin.data() + static_cast<size_t>(p) * n;
      const float* mx = pmax.data() + static_cast<size_t>(p) * n;
      for (int64_t a = 0; a < n; ++a) {
        out_min[a] = std::min(out_min[a], mn[a]);
        out_max[a] = std::max(out_max[a], mx[a]);
      }
    }
    return sum;
  }

  // Many channels: each part owns a range of channels and writes them directly.
  if (n >= 8 * int64_t{num_threads()} && n > 1) {
    int64_t per_channel = outer * inner;
    int parts = parts_for(n, (kGrain + per_channel - 1) / per_channel);
    std::vector<int64_t> nan(parts, 0);
    run_parts(n, parts, [&](int p, int64_t a0, int64_t a1) {
      int64_t c = 0;
      for (int64_t o = 0; o < outer; ++o) {
        const float* base = x + o * n * inner;
        if (inner == 1) {
          c += combine(base + a0, a1 - a0, out_min + a0, out_max + a0);
        } else {
          for (int64_t a = a0; a < a1; ++a) c += run(base + a * inner, inner, out_min[a], out_max[a]);
        }
      }
      nan[p] = c;
    });
    int64_t sum = 0;
    for (int64_t c : nan) sum += c;
    return sum;
  }

  // Few channels (or the whole tensor): split the flat range; each part folds its runs of `inner`
  // contiguous elements into its own partial min/max per channel.
  int parts = parts_for(total, kGrain);
  std::vector<float> pmin(static_cast<size_t>(parts) * n, kInf), pmax(static_cast<size_t>(parts) * n, -kInf);
  std::vector<int64_t> nan(parts, 0);
  run_parts(total, parts, [&](int p, int64_t b, int64_t e) {
    float* mn = pmin.data() + static_cast<size_t>(p) * n;
    float* mx = pmax.data() + static_cast<size_t>(p) * n;
    int64_t c = 0;
    for (int64_t pos = b; pos < e;) {
      int64_t run_index = pos / inner;
      int64_t a = run_index % n;
      int64_t end = std::min(e, (run_index + 1) * inner);
      c += run(x + pos, end - pos, mn[a], mx[a]);
      pos = end;
    }
    nan[p] = c;
  });
  int64_t sum = 0;
  for (int p = 0; p < parts; ++p) {
    sum += nan[p];
    for (int64_t a = 0; a < n; ++a) {
      out_min[a] = std::min(out_min[a], pmin[static_cast<size_t>(p) * n + a]);
      out_max[a] = std::max(out_max[a], pmax[static_cast<size_t>(p) * n + a]);
    }
  }
  return sum;
}

void column_norms(const float* w, int64_t rows, int64_t cols, double* out) {
  std::fill(out, out + cols, 0.0);
  if (rows == 0 || cols == 0) return;
  auto accumulate = active_isa() >= Isa::kAvx2 ? norms_avx2 : norms_scalar;
  if (cols <= kMaxPartialCols) {
    // Each part streams a contiguous block of rows into its own float64 partial sums.
    int parts = parts_for(rows, (kGrain + cols - 1) / cols);
    std::vector<double> partial(static_cast<size_t>(parts) * cols, 0.0);
    run_parts(rows, parts, [&](int p, int64_t r0, int64_t r1) {
      accumulate(w, cols, r0, r1, 0, cols, partial.data() + static_cast<size_t>(p) * cols);
    });
    for (int p = 0; p < parts; ++p)
      for (int64_t j = 0; j < cols; ++j) out[j] += partial[static_cast<size_t>(p) * cols + j];
  } else {
    // Very wide: each part owns a column range, which bounds the scratch memory.
    int parts = parts_for(cols, std::max<int64_t>(64, (kGrain + rows - 1) / rows));
    run_parts(cols, parts, [&](int, int64_t j0, int64_t j1) { accumulate(w, cols, 0, rows, j0, j1, out + j0); });
  }
  for (int64_t j = 0; j < cols; ++j) out[j] = std::sqrt(out[j]);
}

}  // namespace qarvd::calib
