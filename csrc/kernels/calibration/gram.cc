#include "gram.h"

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "../../common/cpu_features.h"
#include "split.h"

namespace qarvd::calib {
namespace {

constexpr int64_t kMr = 6, kNr = 16;  // register tile: 6 rows of H x 16 columns (12 ymm accumulators)
constexpr int64_t kNc = 384;          // columns of H per pass, so their packed panels stay in L2

inline double row_weight(const double* row_weights, double weight, int64_t r) {
  return row_weights ? weight * row_weights[r] : weight;
}

// A tile of H += A^T B over kb rows: a holds kb groups of 6 weighted x values (rows i0..i0+5 of H),
// b holds kb groups of 16 x values (columns j0..j0+15). Sums stay in float32 for the block.
__attribute__((target("avx2,fma,f16c"))) void tile_6x16(const float* a, const float* b, int64_t kb, double* h,
                                                         int64_t ldh, int64_t mr, int64_t nr) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int64_t k = 0; k < kb; ++k) {
    __m256 b0 = _mm256_loadu_ps(b + k * kNr), b1 = _mm256_loadu_ps(b + k * kNr + 8);
    const float* ak = a + k * kMr;
    __m256 v = _mm256_broadcast_ss(ak + 0);
    c00 = _mm256_fmadd_ps(v, b0, c00);
    c01 = _mm256_fmadd_ps(v, b1, c01);
    v = _mm256_broadcast_ss(ak + 1);
    c10 = _mm256_fmadd_ps(v, b0, c10);
    c11 = _mm256_fmadd_ps(v, b1, c11);
    v = _mm256_broadcast_ss(ak + 2);
    c20 = _mm256_fmadd_ps(v, b0, c20);
    c21 = _mm256_fmadd_ps(v, b1, c21);
    v = _mm256_broadcast_ss(ak + 3);
    c30 = _mm256_fmadd_ps(v, b0, c30);
    c31 = _mm256_fmadd_ps(v, b1, c31);
    v = _mm256_broadcast_ss(ak + 4);
    c40 = _mm256_fmadd_ps(v, b0, c40);
    c41 = _mm256_fmadd_ps(v, b1, c41);
    v = _mm256_broadcast_ss(ak + 5);
    c50 = _mm256_fmadd_ps(v, b0, c50);
    c51 = _mm256_fmadd_ps(v, b1, c51);
  }
  alignas(32) float t[kMr][kNr];
  _mm256_store_ps(t[0], c00);
  _mm256_store_ps(t[0] + 8, c01);
  _mm256_store_ps(t[1], c10);
  _mm256_store_ps(t[1] + 8, c11);
  _mm256_store_ps(t[2], c20);
  _mm256_store_ps(t[2] + 8, c21);
  _mm256_store_ps(t[3], c30);
  _mm256_store_ps(t[3] + 8, c31);
  _mm256_store_ps(t[4], c40);
  _mm256_store_ps(t[4] + 8, c41);
  _mm256_store_ps(t[5], c50);
  _mm256_store_ps(t[5] + 8, c51);
  for (int64_t i = 0; i < mr; ++i) {
    double* row = h + i * ldh;
    if (nr == kNr) {
      for (int64_t j = 0; j < kNr; j += 4) {
        __m256d s = _mm256_cvtps_pd(_mm_load_ps(t[i] + j));
        _mm256_storeu_pd(row + j, _mm256_add_pd(_mm256_loadu_pd(row + j), s));
      }
    } else {
      for (int64_t j = 0; j < nr; ++j) row[j] += static_cast<double>(t[i][j]);
    }
  }
}

// Packs rows [r0, r0 + kb) of x: A panels (6 columns each, weighted, zero padded) and B panels
// (16 columns each, zero padded), panel-major so that the tile kernel reads both contiguously.
void pack(const float* x, int64_t cols, int64_t r0, int64_t kb, const double* row_weights, double weight,
          float* ap, int64_t a_panels, float* bp, int64_t b_panels) {
  int parts = parts_for(a_panels + b_panels, 8);
  run_parts(a_panels + b_panels, parts, [&](int, int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      if (p < a_panels) {
        int64_t i0 = p * kMr, m = std::min(kMr, cols - i0);
        float* dst = ap + p * kb * kMr;
        for (int64_t k = 0; k < kb; ++k) {
          const float* src = x + (r0 + k) * cols + i0;
          double w = row_weight(row_weights, weight, r0 + k);
          int64_t i = 0;
          for (; i < m; ++i) dst[k * kMr + i] = static_cast<float>(w * static_cast<double>(src[i]));
          for (; i < kMr; ++i) dst[k * kMr + i] = 0.0f;
        }
      } else {
        int64_t q = p - a_panels, j0 = q * kNr, m = std::min(kNr, cols - j0);
        float* dst = bp + q * kb * kNr;
        for (int64_t k = 0; k < kb; ++k) {
          const float* src = x + (r0 + k) * cols + j0;
          std::memcpy(dst + k * kNr, src, static_cast<size_t>(m) * sizeof(float));
          std::fill(dst + k * kNr + m, dst + (k + 1) * kNr, 0.0f);
        }
      }
    }
  });
}

void accumulate_avx2(const float* x, int64_t rows, int64_t cols, const double* row_weights, double weight,
                     double* h) {
  const int64_t a_panels = (cols + kMr - 1) / kMr, b_panels = (cols + kNr - 1) / kNr;
  const int64_t kc = std::min(kGramBlockRows, rows);
  std::vector<float> ap(static_cast<size_t>(a_panels * kc * kMr)), bp(static_cast<size_t>(b_panels * kc * kNr));
  for (int64_t r0 = 0; r0 < rows; r0 += kc) {
    const int64_t kb = std::min(kc, rows - r0);
    pack(x, cols, r0, kb, row_weights, weight, ap.data(), a_panels, bp.data(), b_panels);
    for (int64_t jc = 0; jc < cols; jc += kNc) {
      const int64_t jend = std::min(cols, jc + kNc);
      // Row panels that meet the upper triangle of this column block: i0 < jend.
      const int64_t panels = std::min(a_panels, (jend + kMr - 1) / kMr);
      // Each part takes every parts-th panel, which balances the triangular work.
      int parts = parts_for(panels, 1);
      parallel_for(parts, 1, [&](int64_t pb, int64_t pe, int) {
        for (int64_t part = pb; part < pe; ++part) {
          for (int64_t ip = part; ip < panels; ip += parts) {
            const int64_t i0 = ip * kMr, mr = std::min(kMr, cols - i0);
            const float* a = ap.data() + ip * kb * kMr;
            // Tiles with at least one element on or above the diagonal: j0 + 15 >= i0.
            int64_t j0 = std::max(jc, (i0 / kNr) * kNr);
            for (; j0 < jend; j0 += kNr) {
              const float* b = bp.data() + (j0 / kNr) * kb * kNr;
              tile_6x16(a, b, kb, h + i0 * cols + j0, cols, mr, std::min(kNr, cols - j0));
            }
          }
        }
      });
    }
  }
}

void accumulate_scalar(const float* x, int64_t rows, int64_t cols, const double* row_weights, double weight,
                       double* h) {
  constexpr int64_t kRowBlock = 64;
  int parts = parts_for(cols, 16);
  parallel_for(parts, 1, [&](int64_t pb, int64_t pe, int) {
    for (int64_t part = pb; part < pe; ++part) {
      for (int64_t r0 = 0; r0 < rows; r0 += kRowBlock) {
        const int64_t r1 = std::min(rows, r0 + kRowBlock);
        for (int64_t i = part; i < cols; i += parts) {
          double* hi = h + i * cols;
          for (int64_t r = r0; r < r1; ++r) {
            const float* xr = x + r * cols;
            const double a = row_weight(row_weights, weight, r) * static_cast<double>(xr[i]);
            for (int64_t j = i; j < cols; ++j) hi[j] += a * static_cast<double>(xr[j]);
          }
        }
      }
    }
  });
}

void mirror_upper(double* h, int64_t n) {
  constexpr int64_t kT = 32;
  for (int64_t ib = 0; ib < n; ib += kT)
    for (int64_t jb = ib; jb < n; jb += kT)
      for (int64_t i = ib; i < std::min(n, ib + kT); ++i)
        for (int64_t j = std::max(jb, i + 1); j < std::min(n, jb + kT); ++j) h[j * n + i] = h[i * n + j];
}

}  // namespace

void gram_accumulate(const float* x, int64_t rows, int64_t cols, const double* row_weights, double weight,
                     double* h) {
  if (rows == 0 || cols == 0) return;
  if (active_isa() >= Isa::kAvx2) {
    accumulate_avx2(x, rows, cols, row_weights, weight, h);
  } else {
    accumulate_scalar(x, rows, cols, row_weights, weight, h);
  }
  mirror_upper(h, cols);
}

}  // namespace qarvd::calib
