#include "attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "../common/cpu_features.h"
#include "../common/parallel.h"
#include "simd_math.h"

namespace qarvd {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Number of keys query i may see (a prefix of the keys under either mask).
inline int64_t visible(const AttentionParams& p, int64_t i) {
  if (p.chunk == 0) return p.kv_len;
  return std::min(p.kv_len, ((i + p.query_offset) / p.chunk + 1) * p.chunk);
}

// Runs fn(task, scratch) for every task, handing tasks out one at a time from a shared counter so
// that unequal tasks (causal query blocks) still balance across threads; each thread makes one
// Scratch and reuses it.
template <typename Scratch, typename Make, typename Fn>
void dynamic_for(int64_t tasks, Make make, Fn fn) {
  std::atomic<int64_t> next{0};
  const int64_t parts = std::min<int64_t>(num_threads(), tasks);
  parallel_for(parts, 1, [&](int64_t, int64_t, int) {
    Scratch scratch = make();
    for (int64_t t = next.fetch_add(1); t < tasks; t = next.fetch_add(1)) fn(t, scratch);
  });
}

// ---- scalar: one query row at a time, exact two-pass softmax over its visible keys ----

constexpr int64_t kScalarRows = 16;

struct ScalarScratch {
  std::vector<float> s, acc;
};

void attention_scalar(const float* q, const float* k, const float* v, float* out, const AttentionParams& p) {
  const int64_t d = p.head_dim, blocks = (p.q_len + kScalarRows - 1) / kScalarRows;
  dynamic_for<ScalarScratch>(
      blocks * p.heads, [&] { return ScalarScratch{std::vector<float>(p.kv_len), std::vector<float>(d)}; },
      [&](int64_t task, ScalarScratch& sc) {
        const int64_t h = task % p.heads, i0 = (blocks - 1 - task / p.heads) * kScalarRows;
        for (int64_t i = i0; i < std::min(p.q_len, i0 + kScalarRows); ++i) {
          const float* qi = q + i * p.q_stride + h * d;
          const int64_t n = visible(p, i);
          float mx = kNegInf;
          for (int64_t j = 0; j < n; ++j) {
            const float* kj = k + j * p.k_stride + h * d;
            float dot = 0;
            for (int64_t c = 0; c < d; ++c) dot += qi[c] * kj[c];
            sc.s[j] = dot * p.scale;
            mx = std::max(mx, sc.s[j]);
          }
          float sum = 0;
          for (int64_t j = 0; j < n; ++j) sum += (sc.s[j] = std::exp(sc.s[j] - mx));
          std::fill(sc.acc.begin(), sc.acc.end(), 0.0f);
          for (int64_t j = 0; j < n; ++j) {
            const float* vj = v + j * p.v_stride + h * d;
            for (int64_t c = 0; c < d; ++c) sc.acc[c] += sc.s[j] * vj[c];
          }
          float* oi = out + i * p.out_stride + h * d;
          for (int64_t c = 0; c < d; ++c) oi[c] = sc.acc[c] / sum;
        }
      });
}

// ---- AVX2: blocked, online softmax ----

// Query block (a multiple of the 6-row micro-tile) and key block (a multiple of the 16-key tile).
// With head_dim 128 a task's working set (packed Q, K^T, V, scores and output accumulators) is about
// 190 KB, inside a Zen 3 L2.
constexpr int64_t kBq = 96;
constexpr int64_t kBk = 64;
constexpr int64_t kTileRows = 6;

inline int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// c[6][16] = a[6][depth] . b[depth][16] (b rows ldb apart): one broadcast of a per row and step, two
// loads of b, twelve FMAs into twelve accumulators.
QARVD_AVX2 void qk_tile(const float* a, int64_t lda, const float* b, int64_t ldb, int64_t depth, float* c,
                        int64_t ldc) {
  __m256 acc[kTileRows][2];
  for (int r = 0; r < kTileRows; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t t = 0; t < depth; ++t) {
    const __m256 b0 = _mm256_loadu_ps(b + t * ldb), b1 = _mm256_loadu_ps(b + t * ldb + 8);
    for (int r = 0; r < kTileRows; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r * lda + t);
      acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
    }
  }
  for (int r = 0; r < kTileRows; ++r) {
    _mm256_storeu_ps(c + r * ldc, acc[r][0]);
    _mm256_storeu_ps(c + r * ldc + 8, acc[r][1]);
  }
}

// o[6][8 W] += p[6][n] . v[n][8 W] (W = 1 or 2 vectors of head_dim columns).
template <int W>
QARVD_AVX2 void pv_tile(const float* p, int64_t ldp, const float* v, int64_t ldv, int64_t n, float* o,
                        int64_t ldo) {
  __m256 acc[kTileRows][W];
  for (int r = 0; r < kTileRows; ++r)
    for (int w = 0; w < W; ++w) acc[r][w] = _mm256_loadu_ps(o + r * ldo + 8 * w);
  for (int64_t j = 0; j < n; ++j) {
    __m256 vv[W];
    for (int w = 0; w < W; ++w) vv[w] = _mm256_loadu_ps(v + j * ldv + 8 * w);
    for (int r = 0; r < kTileRows; ++r) {
      const __m256 pv = _mm256_broadcast_ss(p + r * ldp + j);
      for (int w = 0; w < W; ++w) acc[r][w] = _mm256_fmadd_ps(pv, vv[w], acc[r][w]);
    }
  }
  for (int r = 0; r < kTileRows; ++r)
    for (int w = 0; w < W; ++w) _mm256_storeu_ps(o + r * ldo + 8 * w, acc[r][w]);
}

struct BlockScratch {
  int64_t dp;                  // head_dim rounded up to 8 (zero-padded columns of V and O)
  std::vector<float> qs;       // [kBq][d] scaled queries
  std::vector<float> kt;       // [d][kBk] keys, transposed
  std::vector<float> vp;       // [kBk][dp] values
  std::vector<float> s;        // [kBq][kBk] scores, then probabilities
  std::vector<float> o;        // [kBq][dp] unnormalised outputs
  std::vector<float> m, l;     // running max and sum per query
  std::vector<int64_t> lim;    // visible keys per query
};

// Online-softmax step for one query row over the block's first `valid` keys (of nk): turns scores
// into exp(s - m_new), zeroes the rest, and rescales the row's running sum and output.
QARVD_AVX2 void softmax_row(float* row, int64_t valid, int64_t nk, float& m, float& l, float* o, int64_t dp) {
  if (valid == 0) {
    std::fill(row, row + nk, 0.0f);
    return;
  }
  __m256 vmax = _mm256_set1_ps(kNegInf);
  int64_t j = 0;
  for (; j + 8 <= valid; j += 8) vmax = _mm256_max_ps(vmax, _mm256_loadu_ps(row + j));
  float mx = simd::hmax_avx2(vmax);
  for (; j < valid; ++j) mx = std::max(mx, row[j]);
  const float m_new = std::max(m, mx);
  const float alpha = std::exp(m - m_new);  // 0 for the first block (m = -inf)
  const __m256 vm = _mm256_set1_ps(m_new);
  __m256 vsum = _mm256_setzero_ps();
  for (j = 0; j + 8 <= valid; j += 8) {
    const __m256 e = simd::exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(row + j), vm));
    _mm256_storeu_ps(row + j, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  if (j < valid) {
    const __m256i mask = simd::tail_mask_avx2(static_cast<int>(valid - j));
    const __m256 e = _mm256_and_ps(simd::exp_avx2(_mm256_sub_ps(_mm256_maskload_ps(row + j, mask), vm)),
                                   _mm256_castsi256_ps(mask));
    _mm256_maskstore_ps(row + j, mask, e);
    vsum = _mm256_add_ps(vsum, e);
  }
  std::fill(row + valid, row + nk, 0.0f);
  l = l * alpha + simd::hsum_avx2(vsum);
  m = m_new;
  if (alpha != 1.0f) {
    const __m256 va = _mm256_set1_ps(alpha);
    for (int64_t c = 0; c < dp; c += 8) _mm256_storeu_ps(o + c, _mm256_mul_ps(_mm256_loadu_ps(o + c), va));
  }
}

QARVD_AVX2 void attention_block(const float* q, const float* k, const float* v, float* out, const AttentionParams& p,
                                int64_t h, int64_t q0, BlockScratch& sc) {
  const int64_t d = p.head_dim, dp = sc.dp;
  const int64_t rows = std::min(kBq, p.q_len - q0), rows_p = round_up(rows, kTileRows);
  for (int64_t r = 0; r < rows_p; ++r) {
    float* dst = &sc.qs[r * d];
    if (r < rows) {
      const float* src = q + (q0 + r) * p.q_stride + h * d;
      for (int64_t c = 0; c < d; ++c) dst[c] = src[c] * p.scale;
    } else {
      std::fill(dst, dst + d, 0.0f);
    }
    sc.lim[r] = visible(p, q0 + std::min(r, rows - 1));
  }
  std::fill(sc.m.begin(), sc.m.end(), kNegInf);
  std::fill(sc.l.begin(), sc.l.end(), 0.0f);
  std::fill(sc.o.begin(), sc.o.begin() + rows_p * dp, 0.0f);
  const int64_t kv_end = sc.lim[rows_p - 1];
  for (int64_t kb = 0; kb < kv_end; kb += kBk) {
    const int64_t nk = std::min(kBk, kv_end - kb), nk_p = round_up(nk, 16);
    for (int64_t j = 0; j < nk_p; ++j) {
      if (j < nk) {
        const float* kj = k + (kb + j) * p.k_stride + h * d;
        for (int64_t c = 0; c < d; ++c) sc.kt[c * kBk + j] = kj[c];
        const float* vj = v + (kb + j) * p.v_stride + h * d;
        std::copy_n(vj, d, &sc.vp[j * dp]);
        std::fill(&sc.vp[j * dp + d], &sc.vp[j * dp + dp], 0.0f);
      } else {
        for (int64_t c = 0; c < d; ++c) sc.kt[c * kBk + j] = 0.0f;
      }
    }
    for (int64_t j0 = 0; j0 < nk_p; j0 += 16)
      for (int64_t i0 = 0; i0 < rows_p; i0 += kTileRows)
        qk_tile(&sc.qs[i0 * d], d, &sc.kt[j0], kBk, d, &sc.s[i0 * kBk + j0], kBk);
    for (int64_t r = 0; r < rows_p; ++r) {
      const int64_t valid = std::clamp<int64_t>(sc.lim[r] - kb, 0, nk);
      softmax_row(&sc.s[r * kBk], valid, nk, sc.m[r], sc.l[r], &sc.o[r * dp], dp);
    }
    int64_t c0 = 0;
    for (; c0 + 16 <= dp; c0 += 16)
      for (int64_t i0 = 0; i0 < rows_p; i0 += kTileRows)
        pv_tile<2>(&sc.s[i0 * kBk], kBk, &sc.vp[c0], dp, nk, &sc.o[i0 * dp + c0], dp);
    if (c0 < dp)
      for (int64_t i0 = 0; i0 < rows_p; i0 += kTileRows)
        pv_tile<1>(&sc.s[i0 * kBk], kBk, &sc.vp[c0], dp, nk, &sc.o[i0 * dp + c0], dp);
  }
  for (int64_t r = 0; r < rows; ++r) {
    const float inv = 1.0f / sc.l[r];
    float* dst = out + (q0 + r) * p.out_stride + h * d;
    for (int64_t c = 0; c < d; ++c) dst[c] = sc.o[r * dp + c] * inv;
  }
}

void attention_avx2(const float* q, const float* k, const float* v, float* out, const AttentionParams& p) {
  const int64_t d = p.head_dim, dp = round_up(d, 8), blocks = (p.q_len + kBq - 1) / kBq;
  auto make = [&] {
    BlockScratch sc;
    sc.dp = dp;
    sc.qs.resize(kBq * d);
    sc.kt.resize(d * kBk);
    sc.vp.resize(kBk * dp);
    sc.s.resize(kBq * kBk);
    sc.o.resize(kBq * dp);
    sc.m.resize(kBq);
    sc.l.resize(kBq);
    sc.lim.resize(kBq);
    return sc;
  };
  // Last query blocks first: under the causal mask they see the most keys.
  dynamic_for<BlockScratch>(blocks * p.heads, make, [&](int64_t task, BlockScratch& sc) {
    attention_block(q, k, v, out, p, task % p.heads, (blocks - 1 - task / p.heads) * kBq, sc);
  });
}

}  // namespace

void attention(const float* q, const float* k, const float* v, float* out, const AttentionParams& p) {
  if (p.q_len < 0 || p.kv_len < 1 || p.heads < 1 || p.head_dim < 1) throw std::range_error("attention: bad sizes");
  const int64_t row = p.heads * p.head_dim;
  if (p.q_stride < row || p.k_stride < row || p.v_stride < row || p.out_stride < row)
    throw std::range_error("attention: token stride smaller than heads * head_dim");
  if (p.chunk < 0 || p.query_offset < 0) throw std::range_error("attention: bad mask");
  if (p.q_len == 0) return;
  if (active_isa() >= Isa::kAvx2) {
    attention_avx2(q, k, v, out, p);
  } else {
    attention_scalar(q, k, v, out, p);
  }
}

}  // namespace qarvd
