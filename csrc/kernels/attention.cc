#include "attention.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
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
//
// Scores are kept key-major (S^T[key][query]) so that the online softmax runs down the columns with
// plain vertical vector ops, eight queries at a time, and so that keys and values are read in place:
// only the query block is repacked (transposed and scaled, once per task).

// Query block: a multiple of the QK tile width (24) and of the PV tile height (6). Key block: a
// multiple of the QK tile height (4). With head_dim 128 a task's working set (Q^T 48 KB, scores
// 24 KB, output accumulators 48 KB) and a key block's K and V rows (64 KB) fit a Zen 3 L2 (512 KB).
// Measured on Zen 3: 96 x 64 runs at about 70% of the FMA peak on one core; 48 or 128-key blocks
// are no better.
constexpr int64_t kBq = 96;
constexpr int64_t kBk = 64;
constexpr int kQkKeys = 4;
constexpr int kQkQueries = 24;
constexpr int kPvRows = 6;

inline int64_t round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// st[4][24] = krow[4][depth] . qt[depth][24]: one broadcast per key row and step (the rows are read in
// place), three loads of Q^T, twelve FMAs into twelve accumulators.
QARVD_AVX2 void qk_tile(const float* const* krow, const float* qt, int64_t ldq, int64_t depth, float* st, int64_t lds) {
  __m256 acc[kQkKeys][3];
  for (int r = 0; r < kQkKeys; ++r) acc[r][0] = acc[r][1] = acc[r][2] = _mm256_setzero_ps();
  for (int64_t t = 0; t < depth; ++t) {
    const float* qrow = qt + t * ldq;
    const __m256 q0 = _mm256_loadu_ps(qrow), q1 = _mm256_loadu_ps(qrow + 8), q2 = _mm256_loadu_ps(qrow + 16);
    for (int r = 0; r < kQkKeys; ++r) {
      const __m256 kv = _mm256_broadcast_ss(krow[r] + t);
      acc[r][0] = _mm256_fmadd_ps(kv, q0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(kv, q1, acc[r][1]);
      acc[r][2] = _mm256_fmadd_ps(kv, q2, acc[r][2]);
    }
  }
  for (int r = 0; r < kQkKeys; ++r) {
    _mm256_storeu_ps(st + r * lds, acc[r][0]);
    _mm256_storeu_ps(st + r * lds + 8, acc[r][1]);
    _mm256_storeu_ps(st + r * lds + 16, acc[r][2]);
  }
}

// o[6][8 W] += p^T[n][6]^T . v[n][8 W]: probabilities broadcast from the key-major block, value rows
// read in place (ldv apart); the last vector of a head whose size is not a multiple of 8 is read
// through `tail` so that nothing past the head is touched.
template <int W, bool kMasked>
QARVD_AVX2 void pv_tile(const float* pt, int64_t ldp, const float* v, int64_t ldv, int64_t n, float* o, int64_t ldo,
                        __m256i tail) {
  __m256 acc[kPvRows][W];
  for (int r = 0; r < kPvRows; ++r)
    for (int w = 0; w < W; ++w) acc[r][w] = _mm256_loadu_ps(o + r * ldo + 8 * w);
  for (int64_t j = 0; j < n; ++j) {
    const float* vr = v + j * ldv;
    __m256 vv[W];
    for (int w = 0; w < W; ++w) {
      vv[w] = (kMasked && w == W - 1) ? _mm256_maskload_ps(vr + 8 * w, tail) : _mm256_loadu_ps(vr + 8 * w);
    }
    const float* pr = pt + j * ldp;
    for (int r = 0; r < kPvRows; ++r) {
      const __m256 pv = _mm256_broadcast_ss(pr + r);
      for (int w = 0; w < W; ++w) acc[r][w] = _mm256_fmadd_ps(pv, vv[w], acc[r][w]);
    }
  }
  for (int r = 0; r < kPvRows; ++r)
    for (int w = 0; w < W; ++w) _mm256_storeu_ps(o + r * ldo + 8 * w, acc[r][w]);
}

struct BlockScratch {
  int64_t dp;                 // head_dim rounded up to 8 (columns of the output accumulators)
  std::vector<float> qt;      // [d][kBq] scaled queries, transposed
  std::vector<float> st;      // [kBk][kBq] scores, then probabilities, key-major
  std::vector<float> o;       // [kBq][dp] unnormalised outputs
  std::vector<float> m, l, alpha;  // running max and sum per query; this block's rescale factor
  std::vector<int32_t> lim;   // visible keys per query
  std::vector<float> zero;    // [d] stands in for key rows past the end of a key block
};

// Online-softmax step for the block's nk keys and eight queries (columns) at i: block max under the
// mask (key j visible to query i iff j < valid_i), m_new = max(m, block max), p = exp(s - m_new)
// (0 where masked), l = l alpha + sum p with alpha = exp(m - m_new). kMasked = false is the common
// case of every key visible to all eight queries (always so without a mask), with no mask work.
template <bool kMasked>
QARVD_AVX2 void softmax_columns(BlockScratch& sc, int64_t i, int64_t nk, __m256i valid) {
  const __m256 neg_inf = _mm256_set1_ps(kNegInf);
  __m256 mx = neg_inf;
  for (int64_t j = 0; j < nk; ++j) {
    __m256 s = _mm256_loadu_ps(&sc.st[j * kBq + i]);
    if (kMasked) {
      const __m256 vis = _mm256_castsi256_ps(_mm256_cmpgt_epi32(valid, _mm256_set1_epi32(static_cast<int32_t>(j))));
      s = _mm256_blendv_ps(neg_inf, s, vis);
    }
    mx = _mm256_max_ps(mx, s);
  }
  const __m256 m_old = _mm256_loadu_ps(&sc.m[i]);
  // Every query sees key 0, so m_new is finite from the first block on; there alpha = exp(-inf)
  // saturates to 1e-38, which scales the zero l and o to zero all the same.
  const __m256 m_new = _mm256_max_ps(m_old, mx);
  const __m256 alpha = simd::exp_avx2(_mm256_sub_ps(m_old, m_new));
  __m256 sum0 = _mm256_setzero_ps(), sum1 = sum0;
  for (int64_t j = 0; j < nk; ++j) {
    float* sp = &sc.st[j * kBq + i];
    __m256 p = simd::exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(sp), m_new));
    if (kMasked) {
      p = _mm256_and_ps(p, _mm256_castsi256_ps(_mm256_cmpgt_epi32(valid, _mm256_set1_epi32(static_cast<int32_t>(j)))));
    }
    _mm256_storeu_ps(sp, p);
    if (j & 1) {
      sum1 = _mm256_add_ps(sum1, p);
    } else {
      sum0 = _mm256_add_ps(sum0, p);
    }
  }
  _mm256_storeu_ps(&sc.l[i], _mm256_fmadd_ps(_mm256_loadu_ps(&sc.l[i]), alpha, _mm256_add_ps(sum0, sum1)));
  _mm256_storeu_ps(&sc.m[i], m_new);
  _mm256_storeu_ps(&sc.alpha[i], alpha);
}

QARVD_AVX2 void softmax_block(BlockScratch& sc, int64_t rows_p, int64_t kb, int64_t nk) {
  const __m256i vkb = _mm256_set1_epi32(static_cast<int32_t>(kb)), vnk = _mm256_set1_epi32(static_cast<int32_t>(nk));
  for (int64_t i = 0; i < rows_p; i += 8) {
    const __m256i lim = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(&sc.lim[i]));
    const __m256i valid = _mm256_min_epi32(_mm256_max_epi32(_mm256_sub_epi32(lim, vkb), _mm256_setzero_si256()), vnk);
    if (_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(valid, vnk))) == 0xFF) {
      softmax_columns<false>(sc, i, nk, valid);
    } else {
      softmax_columns<true>(sc, i, nk, valid);
    }
  }
}

QARVD_AVX2 void attention_block(const float* q, const float* k, const float* v, float* out, const AttentionParams& p,
                                int64_t h, int64_t q0, BlockScratch& sc) {
  const int64_t d = p.head_dim, dp = sc.dp;
  const int64_t rows = std::min(kBq, p.q_len - q0), rows_p = round_up(rows, kQkQueries);
  for (int64_t r = 0; r < rows_p; ++r) {
    if (r < rows) {
      const float* src = q + (q0 + r) * p.q_stride + h * d;
      for (int64_t c = 0; c < d; ++c) sc.qt[c * kBq + r] = src[c] * p.scale;
    } else {
      for (int64_t c = 0; c < d; ++c) sc.qt[c * kBq + r] = 0.0f;
    }
    sc.lim[r] = static_cast<int32_t>(visible(p, q0 + std::min(r, rows - 1)));
  }
  std::fill(sc.m.begin(), sc.m.end(), kNegInf);
  std::fill(sc.l.begin(), sc.l.end(), 0.0f);
  std::fill(sc.o.begin(), sc.o.begin() + rows_p * dp, 0.0f);
  const int64_t kv_end = sc.lim[rows_p - 1];
  const int64_t tail_cols = d % 8;
  const __m256i tail = simd::tail_mask_avx2(static_cast<int>(tail_cols));
  for (int64_t kb = 0; kb < kv_end; kb += kBk) {
    const int64_t nk = std::min(kBk, kv_end - kb), nk_p = round_up(nk, kQkKeys);
    for (int64_t i0 = 0; i0 < rows_p; i0 += kQkQueries) {
      for (int64_t j0 = 0; j0 < nk_p; j0 += kQkKeys) {
        const float* krow[kQkKeys];
        for (int r = 0; r < kQkKeys; ++r) {
          krow[r] = j0 + r < nk ? k + (kb + j0 + r) * p.k_stride + h * d : sc.zero.data();
        }
        qk_tile(krow, &sc.qt[i0], kBq, d, &sc.st[j0 * kBq + i0], kBq);
      }
    }
    softmax_block(sc, rows_p, kb, nk);
    for (int64_t r = 0; r < rows_p; ++r) {
      const float a = sc.alpha[r];
      if (a == 1.0f) continue;
      const __m256 va = _mm256_set1_ps(a);
      float* orow = &sc.o[r * dp];
      for (int64_t c = 0; c < dp; c += 8) _mm256_storeu_ps(orow + c, _mm256_mul_ps(_mm256_loadu_ps(orow + c), va));
    }
    const float* vb = v + kb * p.v_stride + h * d;
    int64_t c0 = 0;
    for (; c0 + 16 <= dp; c0 += 16) {
      const bool masked = tail_cols && c0 + 16 > d;
      for (int64_t i0 = 0; i0 < rows_p; i0 += kPvRows) {
        if (masked) {
          pv_tile<2, true>(&sc.st[i0], kBq, vb + c0, p.v_stride, nk, &sc.o[i0 * dp + c0], dp, tail);
        } else {
          pv_tile<2, false>(&sc.st[i0], kBq, vb + c0, p.v_stride, nk, &sc.o[i0 * dp + c0], dp, tail);
        }
      }
    }
    if (c0 < dp) {
      for (int64_t i0 = 0; i0 < rows_p; i0 += kPvRows) {
        if (tail_cols) {
          pv_tile<1, true>(&sc.st[i0], kBq, vb + c0, p.v_stride, nk, &sc.o[i0 * dp + c0], dp, tail);
        } else {
          pv_tile<1, false>(&sc.st[i0], kBq, vb + c0, p.v_stride, nk, &sc.o[i0 * dp + c0], dp, tail);
        }
      }
    }
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
    sc.qt.resize(d * kBq);
    sc.st.resize(kBk * kBq);
    sc.o.resize(kBq * dp);
    sc.m.resize(kBq);
    sc.l.resize(kBq);
    sc.alpha.resize(kBq);
    sc.lim.resize(kBq);
    sc.zero.assign(d, 0.0f);
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
  // The AVX2 kernel compares key positions in 32-bit lanes.
  if (p.kv_len > INT32_MAX) throw std::range_error("attention: more than 2^31 - 1 keys");
  if (p.q_len == 0) return;
  if (active_isa() >= Isa::kAvx2) {
    attention_avx2(q, k, v, out, p);
  } else {
    attention_scalar(q, k, v, out, p);
  }
}

}  // namespace qarvd
