// The AVX2 path of attention: float32 FMAs for every precision (bfloat16 and int8 operands are
// rounded, or quantized, before they reach the kernels, so the results are the precision's).
//
// Scores are kept key-major (S^T[key][query]) so that the online softmax runs down the columns with
// plain vertical vector ops, eight queries at a time, and so that float32 keys and values are read in
// place: only the query block is repacked (transposed and scaled, once per task).
#include "attention_internal.h"
#include "simd_math.h"

namespace qarvd::attn {
namespace {

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

// Online-softmax step for the block's nk keys and eight queries (columns) at i: block max under the
// mask (key j visible to query i iff j < valid_i), m_new = max(m, block max), p = exp(s - m_new)
// (0 where masked), l = l alpha + sum p with alpha = exp(m - m_new). kMasked = false is the common
// case of every key visible to all eight queries (always so without a mask), with no mask work.
template <bool kMasked>
QARVD_AVX2 void softmax_columns(Scratch& sc, int64_t i, int64_t nk, __m256i valid) {
  const int64_t bq = sc.bq;
  const __m256 neg_inf = _mm256_set1_ps(kNegInf);
  __m256 mx = neg_inf;
  for (int64_t j = 0; j < nk; ++j) {
    __m256 s = _mm256_loadu_ps(&sc.st[j * bq + i]);
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
    float* sp = &sc.st[j * bq + i];
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

struct Avx2Kernels : ScalarConversions {
  static PathShape shape() { return {kBq, kBk, kQkKeys, kQkQueries, 8, 2, 4, false}; }

  QARVD_AVX2 static void scores(Unit, const KeyBlock& b, int64_t rows_p, Scratch& sc) {
    const int64_t nk_p = round_up(b.nk, kQkKeys);
    const float* base = static_cast<const float*>(b.base);
    for (int64_t i0 = 0; i0 < rows_p; i0 += kQkQueries) {
      for (int64_t j0 = 0; j0 < nk_p; j0 += kQkKeys) {
        const float* krow[kQkKeys];
        for (int r = 0; r < kQkKeys; ++r) {
          krow[r] = j0 + r < b.nk ? base + (j0 + r) * b.stride : static_cast<const float*>(b.zero);
        }
        qk_tile(krow, &sc.qt[i0], sc.bq, sc.d, &sc.st[j0 * sc.bq + i0], sc.bq);
      }
    }
    if (b.scale || sc.qscaled) {
      for (int64_t j = 0; j < b.nk; ++j) {
        const __m256 ks = _mm256_set1_ps(b.scale ? b.scale[j] : 1.0f);
        float* row = &sc.st[j * sc.bq];
        for (int64_t i = 0; i < rows_p; i += 8) {
          __m256 s = _mm256_mul_ps(_mm256_loadu_ps(row + i), ks);
          if (sc.qscaled) s = _mm256_mul_ps(s, _mm256_loadu_ps(&sc.qscale[i]));
          _mm256_storeu_ps(row + i, s);
        }
      }
    }
  }

  QARVD_AVX2 static void softmax(int64_t rows_p, int64_t kb, int64_t nk, Scratch& sc) {
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

  QARVD_AVX2 static void rescale(int64_t rows_p, Scratch& sc) {
    for (int64_t r = 0; r < rows_p; ++r) {
      const float a = sc.alpha[r];
      if (a == 1.0f) continue;
      const __m256 va = _mm256_set1_ps(a);
      float* orow = &sc.o[r * sc.dp];
      for (int64_t c = 0; c < sc.dp; c += 8) _mm256_storeu_ps(orow + c, _mm256_mul_ps(_mm256_loadu_ps(orow + c), va));
    }
  }

  QARVD_AVX2 static void accumulate(Unit, const ValueBlock& vb, int64_t nk, int64_t rows_p, Scratch& sc) {
    const int64_t d = sc.d, dp = sc.dp, bq = sc.bq;
    const float* v = static_cast<const float*>(vb.base);
    const int64_t tail_cols = d % 8;
    const __m256i tail = simd::tail_mask_avx2(static_cast<int>(tail_cols));
    int64_t c0 = 0;
    for (; c0 + 16 <= dp; c0 += 16) {
      const bool masked = tail_cols && c0 + 16 > d;
      for (int64_t i0 = 0; i0 < rows_p; i0 += kPvRows) {
        if (masked) {
          pv_tile<2, true>(&sc.st[i0], bq, v + c0, vb.stride, nk, &sc.o[i0 * dp + c0], dp, tail);
        } else {
          pv_tile<2, false>(&sc.st[i0], bq, v + c0, vb.stride, nk, &sc.o[i0 * dp + c0], dp, tail);
        }
      }
    }
    if (c0 < dp) {
      for (int64_t i0 = 0; i0 < rows_p; i0 += kPvRows) {
        if (tail_cols) {
          pv_tile<1, true>(&sc.st[i0], bq, v + c0, vb.stride, nk, &sc.o[i0 * dp + c0], dp, tail);
        } else {
          pv_tile<1, false>(&sc.st[i0], bq, v + c0, vb.stride, nk, &sc.o[i0 * dp + c0], dp, tail);
        }
      }
    }
  }
};

}  // namespace

void run_avx2(const float* q, const Operands& in, float* out, const AttentionParams& p) {
  run_blocks<Avx2Kernels>(q, in, out, p, Unit::kFp32Fma, Unit::kFp32Fma);
}

}  // namespace qarvd::attn
