// The AVX-512 paths of attention, on the block loop of attention_internal.h:
// - float32 FMAs (every precision; bfloat16 and int8 operands rounded or quantized before they reach
//   the kernels), 8 x 48 score tiles and 6 x 64 output tiles in 24 zmm accumulators;
// - with AVX512-BF16 and VNNI (`dot`): bfloat16 precision as vdpbf16ps on query pairs x key pairs
//   (keys read in place when stored in bfloat16) and probability pairs x value pairs; int8 precision
//   as vpdpbusd on query quads (q + 128, unsigned) x key quads (signed, read in place from the int8
//   keys), the 128 taken back out through each key's integer sum, then P.V in bfloat16.
// Scores are key-major (S^T[key][query]) so that the online softmax runs down the columns, sixteen
// queries a vector, and keys are broadcast straight from their rows.
// The same source builds against SIMDe (emulated/attention_avx512.cc).
#include "simd_build.h"

#include "attention_avx512.h"

namespace qarvd::attn::QARVD_SIMD_NS {
namespace {

constexpr int64_t kBq = 192;
constexpr int64_t kBk = 64;
constexpr int kQkKeys = 8;
constexpr int kQkQueries = 48;
constexpr int kPvRows = 6;

#ifdef QARVD_SIMD_EMULATED
inline __m512bh as_bh(__m512i x) {
  __m512bh r;
  std::memcpy(&r, &x, 64);
  return r;
}
inline __m512i from_bh(__m512bh x) {
  __m512i r;
  std::memcpy(&r, &x, 64);
  return r;
}
#else
QARVD_TARGET_AVX512BF16 inline __m512bh as_bh(__m512i x) { return (__m512bh)x; }
QARVD_TARGET_AVX512BF16 inline __m512i from_bh(__m512bh x) { return (__m512i)x; }
#endif

inline int32_t load32(const void* p) {
  int32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

// exp(x) for 16 floats: exp_avx2's Cephes scheme (simd_math.h), 2^n applied with vscalefps.
QARVD_TARGET_AVX512 inline __m512 exp512(__m512 x) {
  const __m512 xc = _mm512_min_ps(_mm512_set1_ps(88.0f), _mm512_max_ps(_mm512_set1_ps(-87.33654022216797f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

// Two rows of 16 floats as 16 bfloat16 pairs (a low, b high), rounded to nearest even.
QARVD_TARGET_AVX512BF16 inline __m512i pairs_of(__m512 a, __m512 b) {
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
                                              21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  return _mm512_permutexvar_epi16(interleave, from_bh(_mm512_cvtne2ps_pbh(b, a)));
}

// ---- score tiles: st[8][48] for eight key rows and 48 queries ----

QARVD_TARGET_AVX512 void qk_fp32(const float* const* krow, const float* qt, int64_t ldq, int64_t depth, float* st,
                                 int64_t lds) {
  __m512 acc[kQkKeys][3];
#pragma GCC unroll 8
  for (int r = 0; r < kQkKeys; ++r) acc[r][0] = acc[r][1] = acc[r][2] = _mm512_setzero_ps();
  for (int64_t t = 0; t < depth; ++t) {
    const float* qrow = qt + t * ldq;
    const __m512 q0 = _mm512_loadu_ps(qrow), q1 = _mm512_loadu_ps(qrow + 16), q2 = _mm512_loadu_ps(qrow + 32);
#pragma GCC unroll 8
    for (int r = 0; r < kQkKeys; ++r) {
      const __m512 kv = _mm512_set1_ps(krow[r][t]);
      acc[r][0] = _mm512_fmadd_ps(kv, q0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(kv, q1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps(kv, q2, acc[r][2]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kQkKeys; ++r)
#pragma GCC unroll 4
    for (int w = 0; w < 3; ++w) _mm512_storeu_ps(st + r * lds + 16 * w, acc[r][w]);
}

// Query pairs x key pairs: each key row's pair (k[2t], k[2t + 1]) broadcast as one 32-bit word.
QARVD_TARGET_AVX512BF16 void qk_bf16(const uint16_t* const* krow, const uint32_t* qp, int64_t ldq, int64_t depth,
                                     float* st, int64_t lds) {
  __m512 acc[kQkKeys][3];
#pragma GCC unroll 8
  for (int r = 0; r < kQkKeys; ++r) acc[r][0] = acc[r][1] = acc[r][2] = _mm512_setzero_ps();
  for (int64_t t = 0; t < depth; ++t) {
    const uint32_t* qrow = qp + t * ldq;
    const __m512bh q0 = as_bh(_mm512_loadu_si512(qrow)), q1 = as_bh(_mm512_loadu_si512(qrow + 16)),
                   q2 = as_bh(_mm512_loadu_si512(qrow + 32));
#pragma GCC unroll 8
    for (int r = 0; r < kQkKeys; ++r) {
      const __m512bh kv = as_bh(_mm512_set1_epi32(load32(krow[r] + 2 * t)));
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], kv, q0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], kv, q1);
      acc[r][2] = _mm512_dpbf16_ps(acc[r][2], kv, q2);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kQkKeys; ++r)
#pragma GCC unroll 4
    for (int w = 0; w < 3; ++w) _mm512_storeu_ps(st + r * lds + 16 * w, acc[r][w]);
}

// Unsigned query quads (q + 128) x signed key quads, the int32 sums stored as they are (scores()
// turns them into scores).
QARVD_TARGET_AVX512BF16 void qk_int8(const int8_t* const* krow, const uint32_t* qp, int64_t ldq, int64_t depth, int32_t* st,
                                     int64_t lds) {
  __m512i acc[kQkKeys][3];
#pragma GCC unroll 8
  for (int r = 0; r < kQkKeys; ++r) acc[r][0] = acc[r][1] = acc[r][2] = _mm512_setzero_si512();
  for (int64_t t = 0; t < depth; ++t) {
    const uint32_t* qrow = qp + t * ldq;
    const __m512i q0 = _mm512_loadu_si512(qrow), q1 = _mm512_loadu_si512(qrow + 16), q2 = _mm512_loadu_si512(qrow + 32);
#pragma GCC unroll 8
    for (int r = 0; r < kQkKeys; ++r) {
      const __m512i kv = _mm512_set1_epi32(load32(krow[r] + 4 * t));
      acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], q0, kv);
      acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], q1, kv);
      acc[r][2] = _mm512_dpbusd_epi32(acc[r][2], q2, kv);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kQkKeys; ++r)
#pragma GCC unroll 4
    for (int w = 0; w < 3; ++w) _mm512_storeu_si512(st + r * lds + 16 * w, acc[r][w]);
}

// ---- output tiles: o[6][16 W] += P^T . V over a key block ----

template <int W, bool kMasked>
QARVD_TARGET_AVX512 void pv_fp32(const float* pt, int64_t ldp, const float* v, int64_t ldv, int64_t n, float* o,
                                 int64_t ldo, __mmask16 tail) {
  __m512 acc[kPvRows][W];
#pragma GCC unroll 8
  for (int r = 0; r < kPvRows; ++r)
#pragma GCC unroll 4
    for (int w = 0; w < W; ++w) acc[r][w] = _mm512_loadu_ps(o + r * ldo + 16 * w);
  for (int64_t j = 0; j < n; ++j) {
    const float* vr = v + j * ldv;
    __m512 vv[W];
#pragma GCC unroll 4
    for (int w = 0; w < W; ++w) {
      vv[w] = (kMasked && w == W - 1) ? _mm512_maskz_loadu_ps(tail, vr + 16 * w) : _mm512_loadu_ps(vr + 16 * w);
    }
    const float* pr = pt + j * ldp;
#pragma GCC unroll 8
    for (int r = 0; r < kPvRows; ++r) {
      const __m512 pv = _mm512_set1_ps(pr[r]);
#pragma GCC unroll 4
      for (int w = 0; w < W; ++w) acc[r][w] = _mm512_fmadd_ps(pv, vv[w], acc[r][w]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kPvRows; ++r)
#pragma GCC unroll 4
    for (int w = 0; w < W; ++w) _mm512_storeu_ps(o + r * ldo + 16 * w, acc[r][w]);
}

// Probability pairs (one 32-bit word per query and key pair) broadcast against value pairs.
template <int W>
QARVD_TARGET_AVX512BF16 void pv_bf16(const uint32_t* pp, int64_t ldp, const uint32_t* vp, int64_t ldv, int64_t pairs,
                                     float* o, int64_t ldo) {
  __m512 acc[kPvRows][W];
#pragma GCC unroll 8
  for (int r = 0; r < kPvRows; ++r)
#pragma GCC unroll 4
    for (int w = 0; w < W; ++w) acc[r][w] = _mm512_loadu_ps(o + r * ldo + 16 * w);
  for (int64_t j = 0; j < pairs; ++j) {
    __m512bh vv[W];
#pragma GCC unroll 4
    for (int w = 0; w < W; ++w) vv[w] = as_bh(_mm512_loadu_si512(vp + j * ldv + 16 * w));
    const uint32_t* pr = pp + j * ldp;
#pragma GCC unroll 8
    for (int r = 0; r < kPvRows; ++r) {
      const __m512bh pv = as_bh(_mm512_set1_epi32(static_cast<int32_t>(pr[r])));
#pragma GCC unroll 4
      for (int w = 0; w < W; ++w) acc[r][w] = _mm512_dpbf16_ps(acc[r][w], pv, vv[w]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < kPvRows; ++r)
#pragma GCC unroll 4
    for (int w = 0; w < W; ++w) _mm512_storeu_ps(o + r * ldo + 16 * w, acc[r][w]);
}

// Online-softmax step for sixteen queries (columns) at i, as the AVX2 path's softmax_columns.
template <bool kMasked>
QARVD_TARGET_AVX512 void softmax_columns(Scratch& sc, int64_t i, int64_t nk, __m512i valid) {
  const int64_t bq = sc.bq;
  const __m512 neg_inf = _mm512_set1_ps(kNegInf);
  __m512 mx = neg_inf;
  for (int64_t j = 0; j < nk; ++j) {
    __m512 s = _mm512_loadu_ps(&sc.st[j * bq + i]);
    if (kMasked) s = _mm512_mask_blend_ps(_mm512_cmpgt_epi32_mask(valid, _mm512_set1_epi32(static_cast<int32_t>(j))), neg_inf, s);
    mx = _mm512_max_ps(mx, s);
  }
  const __m512 m_old = _mm512_loadu_ps(&sc.m[i]);
  const __m512 m_new = _mm512_max_ps(m_old, mx);
  const __m512 alpha = exp512(_mm512_sub_ps(m_old, m_new));
  __m512 sum0 = _mm512_setzero_ps(), sum1 = sum0;
  for (int64_t j = 0; j < nk; ++j) {
    float* sp = &sc.st[j * bq + i];
    __m512 p = exp512(_mm512_sub_ps(_mm512_loadu_ps(sp), m_new));
    if (kMasked) p = _mm512_maskz_mov_ps(_mm512_cmpgt_epi32_mask(valid, _mm512_set1_epi32(static_cast<int32_t>(j))), p);
    _mm512_storeu_ps(sp, p);
    if (j & 1) {
      sum1 = _mm512_add_ps(sum1, p);
    } else {
      sum0 = _mm512_add_ps(sum0, p);
    }
  }
  _mm512_storeu_ps(&sc.l[i], _mm512_fmadd_ps(_mm512_loadu_ps(&sc.l[i]), alpha, _mm512_add_ps(sum0, sum1)));
  _mm512_storeu_ps(&sc.m[i], m_new);
  _mm512_storeu_ps(&sc.alpha[i], alpha);
}

}  // namespace

PathShape Avx512Kernels::shape() { return {kBq, kBk, kQkKeys, kQkQueries, 16, 2, 4, true}; }

QARVD_TARGET_AVX512 void Avx512Kernels::scores(Unit qk, const KeyBlock& b, int64_t rows_p, Scratch& sc) {
  const int64_t nk_p = round_up(b.nk, kQkKeys), bq = sc.bq;
  for (int64_t i0 = 0; i0 < rows_p; i0 += kQkQueries) {
    for (int64_t j0 = 0; j0 < nk_p; j0 += kQkKeys) {
      float* st = &sc.st[j0 * bq + i0];
      if (qk == Unit::kFp32Fma) {
        const float* base = static_cast<const float*>(b.base);
        const float* krow[kQkKeys];
#pragma GCC unroll 8
        for (int r = 0; r < kQkKeys; ++r) krow[r] = j0 + r < b.nk ? base + (j0 + r) * b.stride : static_cast<const float*>(b.zero);
        qk_fp32(krow, &sc.qt[i0], bq, sc.depth, st, bq);
      } else if (qk == Unit::kBf16Dot) {
        const uint16_t* base = static_cast<const uint16_t*>(b.base);
        const uint16_t* krow[kQkKeys];
#pragma GCC unroll 8
        for (int r = 0; r < kQkKeys; ++r) krow[r] = j0 + r < b.nk ? base + (j0 + r) * b.stride : static_cast<const uint16_t*>(b.zero);
        qk_bf16(krow, &sc.qpack[i0], bq, sc.depth, st, bq);
      } else {
        const int8_t* base = static_cast<const int8_t*>(b.base);
        const int8_t* krow[kQkKeys];
        for (int r = 0; r < kQkKeys; ++r) krow[r] = j0 + r < b.nk ? base + (j0 + r) * b.stride : static_cast<const int8_t*>(b.zero);
        qk_int8(krow, &sc.qpack[i0], bq, sc.depth, reinterpret_cast<int32_t*>(st), bq);
      }
    }
  }
  finish_scores(qk, b, rows_p, sc);
}

QARVD_TARGET_AVX512 void Avx512Kernels::finish_scores(Unit qk, const KeyBlock& b, int64_t rows_p, Scratch& sc) {
  const int64_t bq = sc.bq;
  if (qk == Unit::kInt8Dot) {
    // score = (sum - 128 ksum) * kscale * qscale: unsigned queries' 128 taken back out exactly.
    for (int64_t j = 0; j < b.nk; ++j) {
      const __m512i corr = _mm512_set1_epi32(sc.int8_unsigned ? 128 * b.sum[j] : 0);
      const __m512 ks = _mm512_set1_ps(b.scale[j]);
      float* row = &sc.st[j * bq];
      for (int64_t i = 0; i < rows_p; i += 16) {
        const __m512i acc = _mm512_loadu_si512(row + i);
        const __m512 s = _mm512_cvtepi32_ps(_mm512_sub_epi32(acc, corr));
        _mm512_storeu_ps(row + i, _mm512_mul_ps(_mm512_mul_ps(s, ks), _mm512_loadu_ps(&sc.qscale[i])));
      }
    }
  } else if (b.scale || sc.qscaled) {
    for (int64_t j = 0; j < b.nk; ++j) {
      const __m512 ks = _mm512_set1_ps(b.scale ? b.scale[j] : 1.0f);
      float* row = &sc.st[j * bq];
      for (int64_t i = 0; i < rows_p; i += 16) {
        __m512 s = _mm512_mul_ps(_mm512_loadu_ps(row + i), ks);
        if (sc.qscaled) s = _mm512_mul_ps(s, _mm512_loadu_ps(&sc.qscale[i]));
        _mm512_storeu_ps(row + i, s);
      }
    }
  }
}

QARVD_TARGET_AVX512 void Avx512Kernels::softmax(int64_t rows_p, int64_t kb, int64_t nk, Scratch& sc) {
  const __m512i vkb = _mm512_set1_epi32(static_cast<int32_t>(kb)), vnk = _mm512_set1_epi32(static_cast<int32_t>(nk));
  for (int64_t i = 0; i < rows_p; i += 16) {
    const __m512i lim = _mm512_loadu_si512(&sc.lim[i]);
    const __m512i valid = _mm512_min_epi32(_mm512_max_epi32(_mm512_sub_epi32(lim, vkb), _mm512_setzero_si512()), vnk);
    if (_mm512_cmpeq_epi32_mask(valid, vnk) == 0xFFFF) {
      softmax_columns<false>(sc, i, nk, valid);
    } else {
      softmax_columns<true>(sc, i, nk, valid);
    }
  }
}

QARVD_TARGET_AVX512 void Avx512Kernels::rescale(int64_t rows_p, Scratch& sc) {
  for (int64_t r = 0; r < rows_p; ++r) {
    const float a = sc.alpha[r];
    if (a == 1.0f) continue;
    const __m512 va = _mm512_set1_ps(a);
    float* orow = &sc.o[r * sc.dp];
    for (int64_t c = 0; c < sc.dp; c += 16) _mm512_storeu_ps(orow + c, _mm512_mul_ps(_mm512_loadu_ps(orow + c), va));
  }
}

namespace {

template <int W>
QARVD_TARGET_AVX512 void pv_fp32_columns(const ValueBlock& vb, int64_t c0, int64_t nk, int64_t rows_p, Scratch& sc) {
  const int64_t d = sc.d, dp = sc.dp, bq = sc.bq;
  const float* v = static_cast<const float*>(vb.base) + c0;
  const bool masked = c0 + 16 * W > d;
  const __mmask16 tail = static_cast<__mmask16>(masked ? (1u << (d - (c0 + 16 * (W - 1)))) - 1u : 0xFFFFu);
  for (int64_t i0 = 0; i0 < rows_p; i0 += kPvRows) {
    if (masked) {
      pv_fp32<W, true>(&sc.st[i0], bq, v, vb.stride, nk, &sc.o[i0 * dp + c0], dp, tail);
    } else {
      pv_fp32<W, false>(&sc.st[i0], bq, v, vb.stride, nk, &sc.o[i0 * dp + c0], dp, tail);
    }
  }
}

template <int W>
QARVD_TARGET_AVX512 void pv_bf16_columns(const ValueBlock& vb, int64_t c0, int64_t nk, int64_t rows_p, Scratch& sc) {
  const int64_t pairs = round_up(nk, 2) / 2;
  const uint32_t* v = static_cast<const uint32_t*>(vb.base) + c0;
  for (int64_t i0 = 0; i0 < rows_p; i0 += kPvRows) pv_bf16<W>(&sc.ppack[i0], sc.bq, v, vb.stride, pairs, &sc.o[i0 * sc.dp + c0], sc.dp);
}

}  // namespace

QARVD_TARGET_AVX512 void Avx512Kernels::accumulate(Unit pv, const ValueBlock& vb, int64_t nk, int64_t rows_p, Scratch& sc) {
  // Columns in groups of 64 (four vectors), the rest in one group of one to three; with float32
  // values the last vector of a head whose size is not a multiple of 16 is loaded under a mask.
  const int64_t dp = sc.dp;
  const bool bf16 = pv == Unit::kBf16Dot;
  for (int64_t c0 = 0; c0 < dp; c0 += 64) {
    switch (std::min<int64_t>(4, (dp - c0) / 16)) {
      case 4: bf16 ? pv_bf16_columns<4>(vb, c0, nk, rows_p, sc) : pv_fp32_columns<4>(vb, c0, nk, rows_p, sc); break;
      case 3: bf16 ? pv_bf16_columns<3>(vb, c0, nk, rows_p, sc) : pv_fp32_columns<3>(vb, c0, nk, rows_p, sc); break;
      case 2: bf16 ? pv_bf16_columns<2>(vb, c0, nk, rows_p, sc) : pv_fp32_columns<2>(vb, c0, nk, rows_p, sc); break;
      default: bf16 ? pv_bf16_columns<1>(vb, c0, nk, rows_p, sc) : pv_fp32_columns<1>(vb, c0, nk, rows_p, sc); break;
    }
  }
}

namespace {

// Value pair row (tokens t, t + 1 when `second`) of head h as bfloat16 words: SIMD sixteen channels a
// step when head_dim is a multiple of 16 (int8 values as their integers, exact in bfloat16).
QARVD_TARGET_AVX512BF16 void pair_row(const KvView& v, int64_t t, bool second, int64_t h, int64_t d, int64_t dp, uint32_t* dst) {
  int64_t c = 0;
  if (d % 16 == 0) {
    for (; c < d; c += 16) {
      __m512i w;
      const int64_t at = t * v.stride + h * d + c;
      if (v.dtype == KvDtype::kFp32) {
        const float* a = static_cast<const float*>(v.data) + at;
        w = pairs_of(_mm512_loadu_ps(a), second ? _mm512_loadu_ps(a + v.stride) : _mm512_setzero_ps());
      } else if (v.dtype == KvDtype::kBf16) {
        const uint16_t* a = static_cast<const uint16_t*>(v.data) + at;
        const __m512i lo = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a)));
        const __m512i hi = second ? _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + v.stride)))
                                  : _mm512_setzero_si512();
        w = _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16));
      } else {
        const int8_t* a = static_cast<const int8_t*>(v.data) + at;
        const __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))));
        const __m512 hi = second ? _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a + v.stride))))
                                 : _mm512_setzero_ps();
        w = pairs_of(lo, hi);
      }
      _mm512_storeu_si512(dst + c, w);
    }
  }
  for (; c < d; ++c) {
    const uint32_t lo = bf16_bits(stored(v, t, h * d + c)), hi = second ? bf16_bits(stored(v, t + 1, h * d + c)) : 0u;
    dst[c] = lo | (hi << 16);
  }
  for (; c < dp; ++c) dst[c] = 0u;
}

// A token's float32 keys (all heads, `width` floats) rounded to bfloat16, 32 a step.
QARVD_TARGET_AVX512BF16 void bf16_row(const float* src, int64_t width, uint16_t* dst) {
  int64_t c = 0;
  for (; c + 32 <= width; c += 32) {
    const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + c + 16), _mm512_loadu_ps(src + c));
    _mm512_storeu_si512(dst + c, from_bh(b));
  }
  for (; c < width; ++c) dst[c] = bf16_bits(src[c]);
}


// Rows [first, first + n) of head h of bfloat16 or int8 keys or values widened to float32 (exactly;
// int8 as the integers), sixteen channels a step.
QARVD_TARGET_AVX512 void widen_rows(const KvView& x, int64_t h, int64_t d, int64_t first, int64_t n, float* dst, int64_t ld) {
  for (int64_t j = 0; j < n; ++j) {
    const int64_t at = (first + j) * x.stride + h * d;
    for (int64_t c = 0; c < d; c += 16) {
      __m512 w;
      if (x.dtype == KvDtype::kBf16) {
        const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(static_cast<const uint16_t*>(x.data) + at + c));
        w = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16));
      } else {
        const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const int8_t*>(x.data) + at + c));
        w = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b));
      }
      _mm512_storeu_ps(dst + j * ld + c, w);
    }
  }
}

}  // namespace

KeyBlock Avx512Kernels::keys(Unit qk, const Operands& in, const AttentionParams& p, int64_t h, int64_t kb, int64_t nk,
                             Scratch& sc) {
  // Float32 products over a bfloat16 or int8 cache: each block widened as it is used.
  if (qk == Unit::kFp32Fma && in.k.dtype != KvDtype::kFp32 && p.precision != AttentionPrecision::kInt8 && p.head_dim % 16 == 0) {
    float* buf = reinterpret_cast<float*>(sc.kbuf.data());
    widen_rows(in.k, h, p.head_dim, kb, nk, buf, sc.ldk);
    KeyBlock b;
    b.base = buf;
    b.stride = sc.ldk;
    b.nk = nk;
    b.zero = sc.zero.data();
    if (in.k.dtype == KvDtype::kInt8) {
      for (int64_t j = 0; j < nk; ++j) sc.kscale[j] = in.k.scale[(kb + j) * in.k.scale_stride + h];
      b.scale = sc.kscale.data();
    }
    return b;
  }
  if (qk == Unit::kBf16Dot && in.k.dtype == KvDtype::kInt8 && p.head_dim % 32 == 0) return int8_keys_as_bf16(in.k, p, h, kb, nk, sc);
  return ScalarConversions::keys(qk, in, p, h, kb, nk, sc);
}

// int8 keys as bfloat16 rows (their integers, exactly), 32 channels a step; the scales go to the scores.
QARVD_TARGET_AVX512BF16 KeyBlock Avx512Kernels::int8_keys_as_bf16(const KvView& k, const AttentionParams& p, int64_t h, int64_t kb,
                                                                 int64_t nk, Scratch& sc) {
  const int64_t d = p.head_dim;
  uint16_t* buf = reinterpret_cast<uint16_t*>(sc.kbuf.data());
  for (int64_t j = 0; j < nk; ++j) {
    const int8_t* src = static_cast<const int8_t*>(k.data) + (kb + j) * k.stride + h * d;
    for (int64_t c = 0; c < d; c += 32) {
      const __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + c))));
      const __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + c + 16))));
      _mm512_storeu_si512(buf + j * sc.ldk + c, from_bh(_mm512_cvtne2ps_pbh(hi, lo)));
    }
    sc.kscale[j] = k.scale[(kb + j) * k.scale_stride + h];
  }
  KeyBlock b;
  b.base = buf;
  b.stride = sc.ldk;
  b.nk = nk;
  b.zero = sc.zero.data();
  b.scale = sc.kscale.data();
  return b;
}

ValueBlock Avx512Kernels::values(Unit pv, const Operands& in, const AttentionParams& p, int64_t h, int64_t kb, int64_t nk,
                                 Scratch& sc) {
  if (pv == Unit::kFp32Fma && in.v.dtype != KvDtype::kFp32 && p.head_dim % 16 == 0) {
    float* buf = reinterpret_cast<float*>(sc.vbuf.data());
    widen_rows(in.v, h, p.head_dim, kb, nk, buf, sc.ldv);
    if (in.v.dtype == KvDtype::kInt8)
      for (int64_t j = 0; j < nk; ++j) sc.vscale[j] = in.v.scale[(kb + j) * in.v.scale_stride + h];
    return {buf, sc.ldv};
  }
  return ScalarConversions::values(pv, in, p, h, kb, nk, sc);
}

// quantize_row with sixteen lanes (the same floats: the same division and rounding, a max in any order).
QARVD_TARGET_AVX512 float quantize_row512(const float* x, int64_t n, int8_t* q) {
  if (n % 16 != 0) return quantize_row(x, n, q);
  __m512 amax = _mm512_setzero_ps();
  __mmask16 nan = 0;
  for (int64_t c = 0; c < n; c += 16) {
    const __m512 v = _mm512_loadu_ps(x + c);
    amax = _mm512_max_ps(amax, _mm512_abs_ps(v));
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  }
  if (nan) return quantize_row(x, n, q);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, amax);
  float m = 0.0f;
  for (float a : lanes) m = a > m ? a : m;
  const float scale = std::max(m / 127.0f, kMinScale);
  // x / scale rounded to nearest even by adding 1.5 * 2^23, clamped there, read off the low bits.
  constexpr float kRound = 12582912.0f;
  const __m512 vs = _mm512_set1_ps(scale), round = _mm512_set1_ps(kRound);
  const __m512 lo = _mm512_set1_ps(kRound - 128.0f), hi = _mm512_set1_ps(kRound + 127.0f);
  const __m512i bias = _mm512_set1_epi32(0x4b400000);
  for (int64_t c = 0; c < n; c += 16) {
    const __m512 t = _mm512_min_ps(hi, _mm512_max_ps(lo, _mm512_add_ps(_mm512_div_ps(_mm512_loadu_ps(x + c), vs), round)));
    const __m512i i = _mm512_sub_epi32(_mm512_castps_si512(t), bias);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + c), _mm512_cvtsepi32_epi8(i));
  }
  return scale;
}

Operands prepare_dot_operands(Operands in, const AttentionParams& p, Unit qk, Unit pv, int64_t dp, AttentionWorkspace& ws) {
  const int64_t d = p.head_dim, heads = p.heads, width = heads * d;
  if (qk == Unit::kBf16Dot && in.k.dtype == KvDtype::kFp32 && d % 2 == 0) {
    ws.bf16_keys.resize(static_cast<size_t>(p.kv_len * width));
    const KvView k = in.k;
    parallel_for(p.kv_len, 64, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t) bf16_row(static_cast<const float*>(k.data) + t * k.stride, width, ws.bf16_keys.data() + t * width);
    });
    in.k = {KvDtype::kBf16, ws.bf16_keys.data(), width, nullptr, 0};
  }
  if (pv == Unit::kBf16Dot) {
    const int64_t rows = (p.kv_len + 1) / 2;
    ws.value_pairs.resize(static_cast<size_t>(rows * heads * dp));
    const KvView v = in.v;
    parallel_for(rows, 32, [&](int64_t r0, int64_t r1, int) {
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t h = 0; h < heads; ++h)
          pair_row(v, 2 * r, 2 * r + 1 < p.kv_len, h, d, dp, ws.value_pairs.data() + (r * heads + h) * dp);
    });
    in.vpairs = ws.value_pairs.data();
    in.vpairs_row = dp;
  }
  return in;
}

void Avx512Kernels::probabilities(Unit pv, int64_t nk, int64_t rows_p, bool scaled, bool round, Scratch& sc) {
  if (pv == Unit::kBf16Dot) return probabilities_pairs16(nk, rows_p, scaled, sc);
  ScalarConversions::probabilities(pv, nk, rows_p, scaled, round, sc);
}

// The block's probabilities (times the values' int8 scales) as bfloat16 pairs of consecutive keys.
QARVD_TARGET_AVX512BF16 void Avx512Kernels::probabilities_pairs16(int64_t nk, int64_t rows_p, bool scaled, Scratch& sc) {
  const int64_t pairs = round_up(nk, 2) / 2, bq = sc.bq;
  for (int64_t r = 0; r < pairs; ++r) {
    const bool second = 2 * r + 1 < nk;
    const __m512 sa = _mm512_set1_ps(scaled ? sc.vscale[2 * r] : 1.0f);
    const __m512 sb = _mm512_set1_ps(scaled && second ? sc.vscale[2 * r + 1] : 1.0f);
    const float* a = &sc.st[2 * r * bq];
    for (int64_t i = 0; i < rows_p; i += 16) {
      const __m512 pa = _mm512_mul_ps(_mm512_loadu_ps(a + i), sa);
      const __m512 pb = second ? _mm512_mul_ps(_mm512_loadu_ps(a + bq + i), sb) : _mm512_setzero_ps();
      _mm512_storeu_si512(&sc.ppack[r * bq + i], pairs_of(pa, pb));
    }
  }
}

void run_avx512(const float* q, Operands in, float* out, const AttentionParams& p, bool dot, AttentionWorkspace& ws) {
  Unit qk = Unit::kFp32Fma, pv = Unit::kFp32Fma;
  if (dot && p.precision != AttentionPrecision::kFp32) {
    qk = p.precision == AttentionPrecision::kInt8 ? Unit::kInt8Dot : Unit::kBf16Dot;
    pv = Unit::kBf16Dot;
    in = prepare_dot_operands(in, p, qk, pv, round_up(p.head_dim, 16), ws);
  }
  run_blocks<Avx512Kernels>(q, in, out, p, qk, pv);
}

}  // namespace qarvd::attn::QARVD_SIMD_NS
