// AVX2 (+F16C) run kernels of the quantize family. Each computes exactly what the scalar run kernel
// of quantize_runs.h computes: vdivps is IEEE division, vroundps rounds half to even like nearbyint,
// and clamping the rounded quotient plus the zero point in float gives the same integer as clamping
// before adding it (both saturate beyond 2^24, where the float sum stops being exact).
// Compiled with function target attributes only, so this file is safe on any x86-64 CPU; it is
// called only when active_isa() >= kAvx2.
#include "quantize_runs.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include "simd_math.h"

#define QARVD_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace qarvd::qrun {
namespace {

template <FloatType XT>
inline const void* advance(const void* x, int64_t i) {
  return static_cast<const char*>(x) + i * float_type_size(XT);
}

template <FloatType XT>
QARVD_AVX2 inline __m256 load8(const void* x, int64_t i) {
  if constexpr (XT == FloatType::kF32) {
    return _mm256_loadu_ps(static_cast<const float*>(x) + i);
  } else {
    __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(x) + i));
    if constexpr (XT == FloatType::kF16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
}

// Streams run ahead of the hardware prefetcher, which does not keep enough lines in flight for a
// loop this short; 32 elements of x cover 64 (2-byte types) or 128 bytes.
constexpr int64_t kAheadBytes = 2048;

template <FloatType XT>
QARVD_AVX2 inline void prefetch_ahead(const void* x, int64_t i) {
  const char* p = static_cast<const char*>(x) + i * float_type_size(XT) + kAheadBytes;
  _mm_prefetch(p, _MM_HINT_T0);
  if constexpr (XT == FloatType::kF32) _mm_prefetch(p + 64, _MM_HINT_T0);
}

// clamp(round(x / s) + zf, qmin, qmax) with a NaN quotient mapped to zf, as int32 lanes. Without
// CLAMP (callers that know every quotient is finite and rounds into range) only round + zf remain.
template <bool CLAMP>
QARVD_AVX2 inline __m256i quant8(__m256 x, __m256 s, __m256 zf, __m256 qmin, __m256 qmax) {
  __m256 v = _mm256_round_ps(_mm256_div_ps(x, s), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  if constexpr (CLAMP) {
    v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
    v = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(v, zf), qmin), qmax);
  } else {
    v = _mm256_add_ps(v, zf);
  }
  return _mm256_cvtps_epi32(v);
}

template <FloatType XT, bool VEC, bool CLAMP>
QARVD_AVX2 inline __m256i quant_at(const void* x, int64_t i, const float* scale, const int32_t* zero_point,
                                   __m256 s, __m256 zf, __m256 qmin, __m256 qmax) {
  if constexpr (VEC) {
    s = _mm256_loadu_ps(scale + i);
    zf = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(zero_point + i)));
  }
  return quant8<CLAMP>(load8<XT>(x, i), s, zf, qmin, qmax);
}

// Four vectors of 8 in-range int32 values -> 32 bytes in element order (packs interleave the two
// 128-bit lanes; the permute undoes it).
template <bool SIGNED>
QARVD_AVX2 inline __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d) {
  __m256i ab = _mm256_packs_epi32(a, b), cd = _mm256_packs_epi32(c, d);
  __m256i r = SIGNED ? _mm256_packs_epi16(ab, cd) : _mm256_packus_epi16(ab, cd);
  return _mm256_permutevar8x32_epi32(r, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// For each 16-bit word (bytes 2k, 2k+1): low nibble of byte 2k | low nibble of byte 2k+1 << 4.
QARVD_AVX2 inline __m256i nibble_words(__m256i b) {
  __m256i lo = _mm256_and_si256(b, _mm256_set1_epi16(0x000f));
  __m256i hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), _mm256_set1_epi16(0x00f0));
  return _mm256_or_si256(lo, hi);
}

QARVD_AVX2 inline __m128i nibble_words128(__m128i b) {
  __m128i lo = _mm_and_si128(b, _mm_set1_epi16(0x000f));
  __m128i hi = _mm_and_si128(_mm_srli_epi16(b, 4), _mm_set1_epi16(0x00f0));
  return _mm_or_si128(lo, hi);
}

template <FloatType XT, QType QT, bool VEC, bool CLAMP = true>
QARVD_AVX2 void quant_avx2(const void* x, int64_t n, const float* scale, const int32_t* zero_point, void* out,
                           int64_t pos) {
  constexpr bool kFour = QT == QType::kInt4 || QT == QType::kUint4;
  constexpr bool kSigned = QT == QType::kInt8 || QT == QType::kInt4;
  const QRange r = qrange(QT);
  const __m256 qmin = _mm256_set1_ps(static_cast<float>(r.qmin));
  const __m256 qmax = _mm256_set1_ps(static_cast<float>(r.qmax));
  const __m256 s = _mm256_set1_ps(scale[0]);
  const __m256 zf = _mm256_set1_ps(static_cast<float>(zero_point[0]));
  auto* o = static_cast<uint8_t*>(out);
  int64_t i = 0;
  if (kFour && (pos & 1) && n > 0) {
    quant_scalar<XT, QT, VEC>(x, 1, scale, zero_point, out, pos);
    i = 1;
  }
#define QARVD_Q(j) quant_at<XT, VEC, CLAMP>(x, (j), scale, zero_point, s, zf, qmin, qmax)
  if constexpr (!kFour) {
    for (; i + 32 <= n; i += 32) {
      prefetch_ahead<XT>(x, i);
      __m256i b = pack32<kSigned>(QARVD_Q(i), QARVD_Q(i + 8), QARVD_Q(i + 16), QARVD_Q(i + 24));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + pos + i), b);
    }
    for (; i + 8 <= n; i += 8) {
      __m256i q = QARVD_Q(i);
      __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
      __m128i b = kSigned ? _mm_packs_epi16(w, w) : _mm_packus_epi16(w, w);
      _mm_storel_epi64(reinterpret_cast<__m128i*>(o + pos + i), b);
    }
  } else {
    // pos + i is even from here on: whole bytes.
    for (; i + 64 <= n; i += 64) {
      prefetch_ahead<XT>(x, i);
      prefetch_ahead<XT>(x, i + 32);
      __m256i b0 = pack32<kSigned>(QARVD_Q(i), QARVD_Q(i + 8), QARVD_Q(i + 16), QARVD_Q(i + 24));
      __m256i b1 = pack32<kSigned>(QARVD_Q(i + 32), QARVD_Q(i + 40), QARVD_Q(i + 48), QARVD_Q(i + 56));
      __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi16(nibble_words(b0), nibble_words(b1)), 0xd8);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o + ((pos + i) >> 1)), p);
    }
    for (; i + 8 <= n; i += 8) {
      __m256i q = QARVD_Q(i);
      __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
      __m128i b = kSigned ? _mm_packs_epi16(w, w) : _mm_packus_epi16(w, w);
      __m128i c = _mm_packus_epi16(nibble_words128(b), _mm_setzero_si128());
      int32_t v = _mm_cvtsi128_si32(c);
      std::memcpy(o + ((pos + i) >> 1), &v, 4);
    }
  }
#undef QARVD_Q
  if (i < n) {
    quant_scalar<XT, QT, VEC>(advance<XT>(x, i), n - i, VEC ? scale + i : scale, VEC ? zero_point + i : zero_point,
                              out, pos + i);
  }
}

template <bool SIGNED>
QARVD_AVX2 inline __m256i widen8(__m128i b) {
  return SIGNED ? _mm256_cvtepi8_epi32(b) : _mm256_cvtepu8_epi32(b);
}

template <bool VEC>
QARVD_AVX2 inline void dequant8(__m256i q, int64_t i, const float* scale, const int32_t* zero_point, __m256 s,
                                __m256i zp, float* out) {
  if constexpr (VEC) {
    s = _mm256_loadu_ps(scale + i);
    zp = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(zero_point + i));
  }
  _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(q, zp)), s));
}

// 16 packed nibbles (8 bytes in the low half of raw) -> 16 bytes in element order, sign-extended to
// int8 for signed types; with 16 bytes of raw, the high half gives elements 16..31.
template <bool SIGNED>
QARVD_AVX2 inline void unpack_nibbles(__m128i raw, __m128i* e0, __m128i* e1) {
  const __m128i m = _mm_set1_epi8(0x0f);
  __m128i lo = _mm_and_si128(raw, m), hi = _mm_and_si128(_mm_srli_epi16(raw, 4), m);
  *e0 = _mm_unpacklo_epi8(lo, hi);
  *e1 = _mm_unpackhi_epi8(lo, hi);
  if constexpr (SIGNED) {
    const __m128i eight = _mm_set1_epi8(8);
    *e0 = _mm_sub_epi8(_mm_xor_si128(*e0, eight), eight);
    *e1 = _mm_sub_epi8(_mm_xor_si128(*e1, eight), eight);
  }
}

template <QType QT, bool VEC>
QARVD_AVX2 void dequant_avx2(const void* q, int64_t pos, int64_t n, const float* scale, const int32_t* zero_point,
                             float* out) {
  constexpr bool kFour = QT == QType::kInt4 || QT == QType::kUint4;
  constexpr bool kSigned = QT == QType::kInt8 || QT == QType::kInt4;
  const auto* b = static_cast<const uint8_t*>(q);
  const __m256 s = _mm256_set1_ps(scale[0]);
  const __m256i zp = _mm256_set1_epi32(zero_point[0]);
  int64_t i = 0;
  if (kFour && (pos & 1) && n > 0) {
    dequant_scalar<QT, VEC>(q, pos, 1, scale, zero_point, out);
    i = 1;
  }
  for (; i + 32 <= n; i += 32) {
    __m128i e0, e1;
    if constexpr (kFour) {
      unpack_nibbles<kSigned>(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b + ((pos + i) >> 1))), &e0, &e1);
    } else {
      e0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + pos + i));
      e1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + pos + i + 16));
    }
    dequant8<VEC>(widen8<kSigned>(e0), i, scale, zero_point, s, zp, out);
    dequant8<VEC>(widen8<kSigned>(_mm_srli_si128(e0, 8)), i + 8, scale, zero_point, s, zp, out);
    dequant8<VEC>(widen8<kSigned>(e1), i + 16, scale, zero_point, s, zp, out);
    dequant8<VEC>(widen8<kSigned>(_mm_srli_si128(e1, 8)), i + 24, scale, zero_point, s, zp, out);
  }
  for (; i + 8 <= n; i += 8) {
    __m128i e;
    if constexpr (kFour) {
      int32_t raw;
      std::memcpy(&raw, b + ((pos + i) >> 1), 4);
      __m128i e1;
      unpack_nibbles<kSigned>(_mm_cvtsi32_si128(raw), &e, &e1);
    } else {
      e = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(b + pos + i));
    }
    dequant8<VEC>(widen8<kSigned>(e), i, scale, zero_point, s, zp, out);
  }
  if (i < n) {
    dequant_scalar<QT, VEC>(q, pos + i, n - i, VEC ? scale + i : scale, VEC ? zero_point + i : zero_point, out + i);
  }
}

QARVD_AVX2 inline int32_t hmax_epi32(__m256i v) {
  __m128i m = _mm_max_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  m = _mm_max_epi32(m, _mm_shuffle_epi32(m, 0x4e));
  m = _mm_max_epi32(m, _mm_shuffle_epi32(m, 0xb1));
  return _mm_cvtsi128_si32(m);
}

// |x| as integer bits: ordered like the values, and >= 0x7f800000 exactly for NaN and infinities.
QARVD_AVX2 inline __m256i abs_bits(__m256 v) {
  return _mm256_and_si256(_mm256_castps_si256(v), _mm256_set1_epi32(0x7fffffff));
}

constexpr int32_t kInfBits = 0x7f800000;

template <FloatType XT>
QARVD_AVX2 bool range_const_avx2(const void* x, int64_t n, float* lo, float* hi) {
  __m256 l0 = _mm256_set1_ps(*lo), l1 = l0, h0 = _mm256_set1_ps(*hi), h1 = h0;
  __m256i a0 = _mm256_setzero_si256(), a1 = a0;
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    if ((i & 31) == 0) prefetch_ahead<XT>(x, i);
    __m256 v0 = load8<XT>(x, i), v1 = load8<XT>(x, i + 8);
    l0 = _mm256_min_ps(l0, v0);
    h0 = _mm256_max_ps(h0, v0);
    a0 = _mm256_max_epi32(a0, abs_bits(v0));
    l1 = _mm256_min_ps(l1, v1);
    h1 = _mm256_max_ps(h1, v1);
    a1 = _mm256_max_epi32(a1, abs_bits(v1));
  }
  if (i + 8 <= n) {
    __m256 v0 = load8<XT>(x, i);
    l0 = _mm256_min_ps(l0, v0);
    h0 = _mm256_max_ps(h0, v0);
    a0 = _mm256_max_epi32(a0, abs_bits(v0));
    i += 8;
  }
  *lo = simd::hmin_avx2(_mm256_min_ps(l0, l1));
  *hi = simd::hmax_avx2(_mm256_max_ps(h0, h1));
  bool ok = hmax_epi32(_mm256_max_epi32(a0, a1)) < kInfBits;
  if (i < n) ok &= range_const_scalar<XT>(advance<XT>(x, i), n - i, lo, hi);
  return ok;
}

template <FloatType XT>
QARVD_AVX2 bool range_vec_avx2(const void* x, int64_t n, float* lo, float* hi) {
  __m256i a = _mm256_setzero_si256();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = load8<XT>(x, i);
    _mm256_storeu_ps(lo + i, _mm256_min_ps(_mm256_loadu_ps(lo + i), v));
    _mm256_storeu_ps(hi + i, _mm256_max_ps(_mm256_loadu_ps(hi + i), v));
    a = _mm256_max_epi32(a, abs_bits(v));
  }
  bool ok = hmax_epi32(a) < kInfBits;
  if (i < n) ok &= range_vec_scalar<XT>(advance<XT>(x, i), n - i, lo + i, hi + i);
  return ok;
}

template <FloatType XT>
QARVD_AVX2 bool absmax_avx2(const void* x, int64_t n, float* amax) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    prefetch_ahead<XT>(x, i);
    a0 = _mm256_max_epi32(a0, abs_bits(load8<XT>(x, i)));
    a1 = _mm256_max_epi32(a1, abs_bits(load8<XT>(x, i + 8)));
    a2 = _mm256_max_epi32(a2, abs_bits(load8<XT>(x, i + 16)));
    a3 = _mm256_max_epi32(a3, abs_bits(load8<XT>(x, i + 24)));
  }
  for (; i + 8 <= n; i += 8) a0 = _mm256_max_epi32(a0, abs_bits(load8<XT>(x, i)));
  int32_t bits = hmax_epi32(_mm256_max_epi32(_mm256_max_epi32(a0, a1), _mm256_max_epi32(a2, a3)));
  bool ok = bits < kInfBits;
  float m;
  std::memcpy(&m, &bits, 4);
  if (m > *amax) *amax = m;
  if (i < n) ok &= absmax_scalar<XT>(advance<XT>(x, i), n - i, amax);
  return ok;
}

}  // namespace

Kernels avx2_kernels(FloatType xt, QType qt) {
  return for_types(xt, qt, [](auto xtag, auto qtag) {
    constexpr FloatType XT = decltype(xtag)::value;
    constexpr QType QT = decltype(qtag)::value;
    return Kernels{&quant_avx2<XT, QT, false>, &quant_avx2<XT, QT, true>, &quant_avx2<XT, QT, false, false>,
                   &dequant_avx2<QT, false>,    &dequant_avx2<QT, true>,    &range_const_avx2<XT>,
                   &range_vec_avx2<XT>,         &absmax_avx2<XT>};
  });
}

}  // namespace qarvd::qrun

#else

namespace qarvd::qrun {
Kernels avx2_kernels(FloatType xt, QType qt) { return scalar_kernels(xt, qt); }
}  // namespace qarvd::qrun

#endif
