#include "clip_search.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <vector>

#include "../../common/cpu_features.h"
#include "split.h"

namespace qarvd::calib {
namespace {

constexpr int64_t kBlock = 2048;  // elements kept in L1 while every candidate runs over them

struct Q {
  float scale, lo, hi;  // clamp bounds of the rounded value: qmin - z, qmax - z
  int32_t zero_point;
  QRange range;
};

Q make_q(float lo, float hi, QType dtype, bool symmetric) {
  QParams p = choose_qparams(lo, hi, dtype, symmetric);
  QRange r = qrange(dtype);
  return {p.scale, static_cast<float>(r.qmin - p.zero_point), static_cast<float>(r.qmax - p.zero_point), p.zero_point,
          r};
}

inline double err_scalar(float x, const Q& q) {
  float back = dequantize_value(quantize_value(x, q.scale, q.zero_point, q.range), q.scale, q.zero_point);
  double d = static_cast<double>(back) - static_cast<double>(x);
  return d * d;
}

// Sum of squared errors over x[0, len); w == nullptr weighs every element 1.
double sse_scalar(const float* x, const double* w, int64_t len, const Q& q) {
  double acc = 0;
  for (int64_t i = 0; i < len; ++i) {
    if (std::isnan(x[i])) continue;
    double e = err_scalar(x[i], q);
    acc += w ? w[i] * e : e;
  }
  return acc;
}

// The same integers as quantize_value: x / s (IEEE division), round to nearest even, clamp in float;
// then x' = r * s. Lanes with NaN x are zeroed through the ordered mask.
__attribute__((target("avx2,fma,f16c"))) double sse_avx2(const float* x, const double* w, int64_t len, const Q& q) {
  const __m256 s = _mm256_set1_ps(q.scale), lo = _mm256_set1_ps(q.lo), hi = _mm256_set1_ps(q.hi);
  __m256d acc0 = _mm256_setzero_pd(), acc1 = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 8 <= len; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    __m256 r = _mm256_round_ps(_mm256_div_ps(v, s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 back = _mm256_mul_ps(_mm256_min_ps(_mm256_max_ps(r, lo), hi), s);
    __m256d xa = _mm256_cvtps_pd(_mm256_castps256_ps128(v)), xb = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    __m256d da = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(back)), xa);
    __m256d db = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(back, 1)), xb);
    da = _mm256_and_pd(da, _mm256_cmp_pd(xa, xa, _CMP_ORD_Q));
    db = _mm256_and_pd(db, _mm256_cmp_pd(xb, xb, _CMP_ORD_Q));
    __m256d ea = _mm256_mul_pd(da, da), eb = _mm256_mul_pd(db, db);
    if (w) {
      ea = _mm256_mul_pd(ea, _mm256_loadu_pd(w + i));
      eb = _mm256_mul_pd(eb, _mm256_loadu_pd(w + i + 4));
    }
    acc0 = _mm256_add_pd(acc0, ea);
    acc1 = _mm256_add_pd(acc1, eb);
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(acc0, acc1));
  double acc = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
  return acc + sse_scalar(x + i, w ? w + i : nullptr, len - i, q);
}

using SseFn = double (*)(const float*, const double*, int64_t, const Q&);

SseFn pick_sse() { return active_isa() >= Isa::kAvx2 ? sse_avx2 : sse_scalar; }

int64_t count_nan(const float* x, int64_t len) {
  int64_t c = 0;
  for (int64_t i = 0; i < len; ++i) c += std::isnan(x[i]) ? 1 : 0;
  return c;
}

// Fills s (length n) so that s[0, head] and s[tail, n) hold those order statistics of row in
// ascending order. Short extreme tails (the usual percentile clips) are kept by a bounded heap in
// one pass; long ones by selection and sorting.
void select_ranks(const float* row, int64_t n, int64_t head, int64_t tail, float* s) {
  constexpr int64_t kHeap = 256;
  const int64_t low = head + 1, high = n - tail;
  if (low <= kHeap && high <= kHeap && low + high <= n) {
    std::partial_sort_copy(row, row + n, s, s + low);
    std::partial_sort_copy(row, row + n, s + tail, s + n, std::greater<float>());
    std::reverse(s + tail, s + n);
    return;
  }
  std::copy(row, row + n, s);
  if (head >= 0) {
    std::nth_element(s, s + head, s + n);
    std::sort(s, s + head);
  }
  if (tail < n) {
    std::nth_element(s + head + 1, s + tail, s + n);
    std::sort(s + tail + 1, s + n);
  }
}

}  // namespace

double quantile_sorted(const float* sorted, int64_t n, double q) {
  double pos = q * static_cast<double>(n - 1);
  double f = std::floor(pos);
  int64_t i = static_cast<int64_t>(f);
  double frac = pos - f;
  double v0 = sorted[i];
  if (frac == 0 || i + 1 >= n) return v0;
  return v0 + frac * (static_cast<double>(sorted[i + 1]) - v0);
}

SseTotals fake_quant_sse(const float* x, int64_t rows, int64_t cols, const double* row_weights,
                         const float* cand_lo, const float* cand_hi, int64_t candidates, QType dtype,
                         bool symmetric, double* sse) {
  std::vector<Q> qs;
  for (int64_t c = 0; c < candidates; ++c) qs.push_back(make_q(cand_lo[c], cand_hi[c], dtype, symmetric));
  std::fill(sse, sse + candidates, 0.0);
  const int64_t total = rows * cols;
  if (total == 0 || candidates == 0) return {0, 0};
  SseFn run = pick_sse();
  const int64_t C = candidates;

  // One weight per element (a histogram, or a column of samples) or none: split the flat range.
  // Otherwise split rows and scale each row's sums by its weight.
  const bool flat = row_weights == nullptr || cols == 1;
  const int64_t n = flat ? total : rows;
  const int64_t grain = flat ? (1 << 14) : std::max<int64_t>(1, (1 << 14) / cols);
  int parts = parts_for(n, grain);
  std::vector<double> partial(static_cast<size_t>(parts) * C, 0.0), wsum(parts, 0.0);
  std::vector<int64_t> nan(parts, 0);
  run_parts(n, parts, [&](int p, int64_t b, int64_t e) {
    // Local sums, written once: the per-part slots share cache lines.
    std::vector<double> acc(static_cast<size_t>(C), 0.0);
    double ws = 0;
    int64_t bad = 0;
    if (flat) {
      for (int64_t s = b; s < e; s += kBlock) {
        int64_t m = std::min(kBlock, e - s);
        const double* w = row_weights ? row_weights + s : nullptr;
        for (int64_t c = 0; c < C; ++c) acc[c] += run(x + s, w, m, qs[c]);
        int64_t nan_here = count_nan(x + s, m);
        bad += nan_here;
        if (w == nullptr) {
          ws += static_cast<double>(m - nan_here);
        } else {
          for (int64_t i = 0; i < m; ++i) ws += std::isnan(x[s + i]) ? 0.0 : w[i];
        }
      }
    } else {
      for (int64_t r = b; r < e; ++r) {
        const float* row = x + r * cols;
        for (int64_t s = 0; s < cols; s += kBlock) {
          int64_t m = std::min(kBlock, cols - s);
          for (int64_t c = 0; c < C; ++c) acc[c] += row_weights[r] * run(row + s, nullptr, m, qs[c]);
        }
        int64_t nan_here = count_nan(row, cols);
        bad += nan_here;
        ws += row_weights[r] * static_cast<double>(cols - nan_here);
      }
    }
    std::copy(acc.begin(), acc.end(), partial.begin() + static_cast<ptrdiff_t>(p) * C);
    wsum[p] = ws;
    nan[p] = bad;
  });
  SseTotals t{0, 0};
  for (int p = 0; p < parts; ++p) {
    t.weight_sum += wsum[p];
    t.nan += nan[p];
    for (int64_t c = 0; c < C; ++c) sse[c] += partial[static_cast<size_t>(p) * C + c];
  }
  return t;
}

void channel_clip_search(const float* w, int64_t rows, int64_t cols, const double* percentiles,
                         int64_t candidates, QType dtype, bool symmetric, float* out_scale,
                         int32_t* out_zero_point, float* out_lo, float* out_hi, int32_t* out_choice,
                         double* mse) {
  if (rows == 0) return;
  if (cols == 0 || candidates == 0) throw std::out_of_range("channel clip search: needs columns and candidates");
  SseFn run = pick_sse();
  const int64_t C = candidates;

  // Order statistics needed by every candidate: floor(q (n - 1)) and the next one, q = 1 - p and p.
  std::vector<int64_t> ranks;
  for (int64_t c = 0; c < C; ++c) {
    for (double q : {1.0 - percentiles[c], percentiles[c]}) {
      int64_t i = static_cast<int64_t>(std::floor(q * static_cast<double>(cols - 1)));
      ranks.push_back(i);
      if (i + 1 < cols) ranks.push_back(i + 1);
    }
  }
  std::sort(ranks.begin(), ranks.end());
  ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
  // Ranks in the lower half are placed by one selection and a sort of the head, the upper half by a
  // selection and a sort of the tail: O(cols) per row for the extreme percentiles used in practice.
  int64_t head = -1, tail = cols;
  for (int64_t r : ranks) {
    if (r < cols / 2) {
      head = std::max(head, r);
    } else {
      tail = std::min(tail, r);
    }
  }

  int parts = parts_for(rows, std::max<int64_t>(1, (1 << 14) / cols));
  run_parts(rows, parts, [&](int, int64_t r0, int64_t r1) {
    std::vector<float> sorted(static_cast<size_t>(cols));
    std::vector<double> err(static_cast<size_t>(C));
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = w + r * cols;
      if (count_nan(row, cols) != 0) throw std::out_of_range("channel clip search: w contains NaN");
      float* s = sorted.data();
      select_ranks(row, cols, head, tail, s);
      int64_t best = 0;
      Q best_q{};
      float best_lo = 0, best_hi = 0;
      for (int64_t c = 0; c < C; ++c) {
        float lo = static_cast<float>(quantile_sorted(s, cols, 1.0 - percentiles[c]));
        float hi = static_cast<float>(quantile_sorted(s, cols, percentiles[c]));
        Q q = make_q(lo, hi, dtype, symmetric);
        double e = 0;
        for (int64_t b = 0; b < cols; b += kBlock) e += run(row + b, nullptr, std::min(kBlock, cols - b), q);
        e /= static_cast<double>(cols);
        mse[r * C + c] = e;
        if (c == 0 || e < err[best]) {
          best = c;
          best_q = q;
          best_lo = lo;
          best_hi = hi;
        }
        err[c] = e;
      }
      out_scale[r] = best_q.scale;
      out_zero_point[r] = best_q.zero_point;
      out_lo[r] = best_lo;
      out_hi[r] = best_hi;
      out_choice[r] = static_cast<int32_t>(best);
    }
  });
}

}  // namespace qarvd::calib
