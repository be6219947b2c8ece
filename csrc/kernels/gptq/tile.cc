#include "tile.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "../../common/parallel.h"

namespace qarvd::gptq {
namespace {

// Columns of B per chunk: kk x kNc doubles stay in L2 (256 KB for kk = 128) while every row tile
// of the caller passes over them.
int64_t chunk_cols(int64_t kk) {
  int64_t n = (32768 / std::max<int64_t>(kk, 1)) / kNr * kNr;
  return std::max<int64_t>(n, 4 * kNr);
}

template <int MR>
void tile_scalar(ConstMat a, ConstMat b, int64_t kk, Mat c, int nr, Store op) {
  double acc[MR][kNr] = {};
  for (int64_t t = 0; t < kk; ++t) {
    const double* bt = b.p + t * b.ld;
    for (int i = 0; i < MR; ++i) {
      double ai = a.p[i * a.ld + t];
      for (int j = 0; j < nr; ++j) acc[i][j] += ai * bt[j];
    }
  }
  for (int i = 0; i < MR; ++i) {
    double* ci = c.p + i * c.ld;
    for (int j = 0; j < nr; ++j) {
      switch (op) {
        case Store::kAdd: ci[j] += acc[i][j]; break;
        case Store::kSub: ci[j] -= acc[i][j]; break;
        case Store::kSet: ci[j] = acc[i][j]; break;
        case Store::kSetNeg: ci[j] = -acc[i][j]; break;
      }
    }
  }
}

__attribute__((target("avx2,fma"))) inline __m256i lane_mask(int n) {
  // Lanes [0, n) enabled, n in [0, 4].
  __m256i idx = _mm256_setr_epi64x(0, 1, 2, 3);
  return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), idx);
}

__attribute__((target("avx2,fma"))) inline __m256d store_op(__m256d old, __m256d acc, Store op) {
  switch (op) {
    case Store::kAdd: return _mm256_add_pd(old, acc);
    case Store::kSub: return _mm256_sub_pd(old, acc);
    case Store::kSet: return acc;
    case Store::kSetNeg: return _mm256_sub_pd(_mm256_setzero_pd(), acc);
  }
  return acc;
}

// Accumulators are named variables (GCC spills arrays of vectors to the stack on every step).
#define QARVD_GPTQ_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

template <int MR>
__attribute__((target("avx2,fma"))) void tile_avx2(ConstMat a, ConstMat b, int64_t kk, Mat c, int nr, Store op) {
#define DECL(i) __m256d c##i##0 = _mm256_setzero_pd(), c##i##1 = _mm256_setzero_pd(); \
  const double* a##i = a.p + (i < MR ? i : 0) * a.ld;
  QARVD_GPTQ_ROWS(DECL)
#undef DECL
#define STEP(i)                                          \
  if constexpr (i < MR) {                                \
    __m256d av = _mm256_broadcast_sd(a##i + t);          \
    c##i##0 = _mm256_fmadd_pd(av, b0, c##i##0);          \
    c##i##1 = _mm256_fmadd_pd(av, b1, c##i##1);          \
  }
  const double* bt = b.p;
  if (nr == kNr) {
    for (int64_t t = 0; t < kk; ++t, bt += b.ld) {
      __m256d b0 = _mm256_loadu_pd(bt), b1 = _mm256_loadu_pd(bt + 4);
      QARVD_GPTQ_ROWS(STEP)
    }
  } else {
    // Masked loads never touch memory past the last column (B may end there).
    __m256i m0 = lane_mask(std::min(nr, 4)), m1 = lane_mask(std::max(nr - 4, 0));
    for (int64_t t = 0; t < kk; ++t, bt += b.ld) {
      __m256d b0 = _mm256_maskload_pd(bt, m0), b1 = _mm256_maskload_pd(bt + 4, m1);
      QARVD_GPTQ_ROWS(STEP)
    }
  }
#undef STEP
  const bool load = op == Store::kAdd || op == Store::kSub;
  if (nr == kNr) {
#define STORE(i)                                                                 \
  if constexpr (i < MR) {                                                        \
    double* ci = c.p + i * c.ld;                                                 \
    __m256d o0 = load ? _mm256_loadu_pd(ci) : _mm256_setzero_pd();               \
    __m256d o1 = load ? _mm256_loadu_pd(ci + 4) : _mm256_setzero_pd();           \
    _mm256_storeu_pd(ci, store_op(o0, c##i##0, op));                             \
    _mm256_storeu_pd(ci + 4, store_op(o1, c##i##1, op));                         \
  }
    QARVD_GPTQ_ROWS(STORE)
#undef STORE
  } else {
    __m256i m0 = lane_mask(std::min(nr, 4)), m1 = lane_mask(std::max(nr - 4, 0));
#define STORE(i)                                                                 \
  if constexpr (i < MR) {                                                        \
    double* ci = c.p + i * c.ld;                                                 \
    __m256d o0 = _mm256_maskload_pd(ci, m0), o1 = _mm256_maskload_pd(ci + 4, m1); \
    _mm256_maskstore_pd(ci, m0, store_op(o0, c##i##0, op));                      \
    _mm256_maskstore_pd(ci + 4, m1, store_op(o1, c##i##1, op));                  \
  }
    QARVD_GPTQ_ROWS(STORE)
#undef STORE
  }
}
#undef QARVD_GPTQ_ROWS

}  // namespace

void tile(ConstMat a, ConstMat b, int64_t kk, Mat c, int mr, int nr, Store op, bool avx2) {
  if (avx2) {
    switch (mr) {
      case 6: return tile_avx2<6>(a, b, kk, c, nr, op);
      case 5: return tile_avx2<5>(a, b, kk, c, nr, op);
      case 4: return tile_avx2<4>(a, b, kk, c, nr, op);
      case 3: return tile_avx2<3>(a, b, kk, c, nr, op);
      case 2: return tile_avx2<2>(a, b, kk, c, nr, op);
      case 1: return tile_avx2<1>(a, b, kk, c, nr, op);
      default: return;
    }
  }
  switch (mr) {
    case 6: return tile_scalar<6>(a, b, kk, c, nr, op);
    case 5: return tile_scalar<5>(a, b, kk, c, nr, op);
    case 4: return tile_scalar<4>(a, b, kk, c, nr, op);
    case 3: return tile_scalar<3>(a, b, kk, c, nr, op);
    case 2: return tile_scalar<2>(a, b, kk, c, nr, op);
    case 1: return tile_scalar<1>(a, b, kk, c, nr, op);
    default: return;
  }
}

void multiply_tiles(ConstMat a, ConstMat b, int64_t kk, Mat c, const std::vector<int64_t>& tile_rows, int64_t rows,
                    int64_t cols, bool lower, Store op, bool avx2) {
  if (cols <= 0 || tile_rows.empty() || kk <= 0) {
    if (kk <= 0 && (op == Store::kSet || op == Store::kSetNeg)) {
      for (int64_t r0 : tile_rows) {
        for (int64_t i = r0; i < std::min(rows, r0 + kMr); ++i) std::fill(c.p + i * c.ld, c.p + i * c.ld + cols, 0.0);
      }
    }
    return;
  }
  int64_t reach = cols;  // last column any tile needs
  if (lower) {
    reach = 0;
    for (int64_t r0 : tile_rows) reach = std::max(reach, std::min(cols, r0 + kMr));
  }
  // B is copied into panels of kNr columns, each kk x kNr contiguous (zero padded): the tiles then
  // read it sequentially instead of one row per page.
  const int64_t nc = chunk_cols(kk);
  // Reused across calls on a thread (no zero fill: every panel is written before it is read).
  thread_local std::vector<double> panels;
  if (panels.size() < static_cast<size_t>(kk * nc)) panels.resize(static_cast<size_t>(kk * nc));
  for (int64_t c0 = 0; c0 < reach; c0 += nc) {
    const int64_t c1 = std::min(c0 + nc, reach);
    const int64_t np = (c1 - c0 + kNr - 1) / kNr;
    for (int64_t t = 0; t < kk; ++t) {
      const double* src = b.p + t * b.ld + c0;
      for (int64_t q = 0; q < np; ++q) {
        double* dst = panels.data() + (q * kk + t) * kNr;
        const int64_t w = std::min<int64_t>(kNr, c1 - c0 - q * kNr);
        for (int64_t j = 0; j < w; ++j) dst[j] = src[q * kNr + j];
        for (int64_t j = w; j < kNr; ++j) dst[j] = 0.0;
      }
    }
    for (int64_t r0 : tile_rows) {
      const int mr = static_cast<int>(std::min<int64_t>(kMr, rows - r0));
      const int64_t end = lower ? std::min(c1, r0 + mr) : c1;
      for (int64_t j = c0; j < end; j += kNr) {
        const int nr = static_cast<int>(std::min<int64_t>(kNr, cols - j));
        const double* panel = panels.data() + ((j - c0) / kNr) * kk * kNr;
        tile({a.p + r0 * a.ld, a.ld}, {panel, kNr}, kk, {c.p + r0 * c.ld + j, c.ld}, mr, nr, op, avx2);
      }
    }
  }
}

void for_row_tiles(int64_t rows, bool balanced, const std::function<void(const std::vector<int64_t>&)>& fn) {
  if (rows <= 0) return;
  const int64_t tiles = (rows + kMr - 1) / kMr;
  const int64_t items = balanced ? (tiles + 1) / 2 : tiles;
  parallel_for(items, 1, [&](int64_t b, int64_t e, int) {
    std::vector<int64_t> starts;
    for (int64_t t = b; t < e; ++t) {
      starts.push_back(t * kMr);
      if (balanced && tiles - 1 - t != t) starts.push_back((tiles - 1 - t) * kMr);
    }
    fn(starts);
  });
}

namespace {
__attribute__((target("avx2,fma"))) void axpy_neg_avx2(double* y, const double* x, double e, int64_t n) {
  __m256d ev = _mm256_set1_pd(e);
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) _mm256_storeu_pd(y + i, _mm256_fnmadd_pd(ev, _mm256_loadu_pd(x + i), _mm256_loadu_pd(y + i)));
  for (; i < n; ++i) y[i] = std::fma(-e, x[i], y[i]);
}

__attribute__((target("avx2,fma"))) double dot_avx2(const double* x, const double* y, int64_t n) {
  __m256d s = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) s = _mm256_fmadd_pd(_mm256_loadu_pd(x + i), _mm256_loadu_pd(y + i), s);
  alignas(32) double t[4];
  _mm256_store_pd(t, s);
  double r = (t[0] + t[1]) + (t[2] + t[3]);
  for (; i < n; ++i) r = std::fma(x[i], y[i], r);
  return r;
}
}  // namespace

void axpy_neg(double* y, const double* x, double e, int64_t n, bool avx2) {
  if (avx2) return axpy_neg_avx2(y, x, e, n);
  for (int64_t i = 0; i < n; ++i) y[i] -= e * x[i];
}

double dot(const double* x, const double* y, int64_t n, bool avx2) {
  if (avx2) return dot_avx2(x, y, n);
  double r = 0;
  for (int64_t i = 0; i < n; ++i) r += x[i] * y[i];
  return r;
}

}  // namespace qarvd::gptq
