// AVX2 path of the integer GEMM (see gemm_int_kernels.h for the layouts and gemm_int.h for why
// these instruction chains are exact). The two micro-kernels are inline assembly: the 4x16 tiles use
// all 16 ymm registers and compilers spill them otherwise.
#include <immintrin.h>

#include <cmath>

#include "gemm_int_kernels.h"

#define QARVD_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace qarvd::gemm {
namespace {

alignas(32) const uint8_t kLowNibbles[32] = {15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15,
                                             15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15, 15};
alignas(32) const int16_t kOnes16[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};

#define ZERO_ACC                         \
  "vpxor %%ymm0, %%ymm0, %%ymm0\n\t"     \
  "vpxor %%ymm1, %%ymm1, %%ymm1\n\t"     \
  "vpxor %%ymm2, %%ymm2, %%ymm2\n\t"     \
  "vpxor %%ymm3, %%ymm3, %%ymm3\n\t"     \
  "vpxor %%ymm4, %%ymm4, %%ymm4\n\t"     \
  "vpxor %%ymm5, %%ymm5, %%ymm5\n\t"     \
  "vpxor %%ymm6, %%ymm6, %%ymm6\n\t"     \
  "vpxor %%ymm7, %%ymm7, %%ymm7\n\t"

#define STORE_ACC                        \
  "vmovdqu %%ymm0, 0(%[acc])\n\t"        \
  "vmovdqu %%ymm1, 32(%[acc])\n\t"       \
  "vmovdqu %%ymm2, 64(%[acc])\n\t"       \
  "vmovdqu %%ymm3, 96(%[acc])\n\t"       \
  "vmovdqu %%ymm4, 128(%[acc])\n\t"      \
  "vmovdqu %%ymm5, 160(%[acc])\n\t"      \
  "vmovdqu %%ymm6, 192(%[acc])\n\t"      \
  "vmovdqu %%ymm7, 224(%[acc])\n\t"

// One k pair of the 8-bit kernel: sign-extend 16 + 16 weight bytes to int16, broadcast each row's
// activation pair, vpmaddwd and add into the row's two accumulators.
#define K8_ROW(ao, areg, r0, r1, t0, t1)                 \
  "vpbroadcastd " #ao "(%[a]), %%ymm" #areg "\n\t"       \
  "vpmaddwd %%ymm8, %%ymm" #areg ", %%ymm" #t0 "\n\t"    \
  "vpaddd %%ymm" #t0 ", %%ymm" #r0 ", %%ymm" #r0 "\n\t"  \
  "vpmaddwd %%ymm9, %%ymm" #areg ", %%ymm" #t1 "\n\t"    \
  "vpaddd %%ymm" #t1 ", %%ymm" #r1 ", %%ymm" #r1 "\n\t"
#define K8_STEP(ao, bo)                                  \
  "vpmovsxbw " #bo "(%[b]), %%ymm8\n\t"                  \
  "vpmovsxbw " #bo "+16(%[b]), %%ymm9\n\t"               \
  K8_ROW(ao, 10, 0, 1, 12, 13)                           \
  K8_ROW(ao + 4, 11, 2, 3, 14, 15)                       \
  K8_ROW(ao + 8, 10, 4, 5, 12, 13)                       \
  K8_ROW(ao + 12, 11, 6, 7, 14, 15)

QARVD_AVX2 void k8_avx2(const int16_t* a, const int8_t* b, int64_t pairs, int32_t* acc) {
  int64_t quads = pairs / 4, rest = pairs % 4;
  __asm__ volatile(
      ZERO_ACC
      "test %[quads], %[quads]\n\t"
      "jz 2f\n\t"
      "1:\n\t"
      "prefetcht0 512(%[b])\n\t"
      K8_STEP(0, 0)
      K8_STEP(16, 32)
      "prefetcht0 576(%[b])\n\t"
      K8_STEP(32, 64)
      K8_STEP(48, 96)
      "add $64, %[a]\n\t"
      "add $128, %[b]\n\t"
      "dec %[quads]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "test %[rest], %[rest]\n\t"
      "jz 4f\n\t"
      "3:\n\t"
      K8_STEP(0, 0)
      "add $16, %[a]\n\t"
      "add $32, %[b]\n\t"
      "dec %[rest]\n\t"
      "jnz 3b\n\t"
      "4:\n\t"
      STORE_ACC
      : [a] "+r"(a), [b] "+r"(b), [quads] "+r"(quads), [rest] "+r"(rest)
      : [acc] "r"(acc)
      : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

// One row of the 4-bit kernel: both 4-k blocks of the row's activations times the unsigned nibbles
// (vpmaddubsw: |pair sum| <= 3840), the two blocks added in int16 (<= 7680), widened by vpmaddwd
// with ones and added to the row's accumulators.
#define K4_ROW(ao, r0, r1)                               \
  "vpbroadcastd " #ao "(%[a]), %%ymm12\n\t"              \
  "vpbroadcastd " #ao "+16(%[a]), %%ymm13\n\t"           \
  "vpmaddubsw %%ymm12, %%ymm8, %%ymm14\n\t"              \
  "vpmaddubsw %%ymm13, %%ymm10, %%ymm15\n\t"             \
  "vpaddw %%ymm15, %%ymm14, %%ymm14\n\t"                 \
  "vpmaddwd (%[ones]), %%ymm14, %%ymm14\n\t"             \
  "vpaddd %%ymm14, %%ymm" #r0 ", %%ymm" #r0 "\n\t"       \
  "vpmaddubsw %%ymm12, %%ymm9, %%ymm14\n\t"              \
  "vpmaddubsw %%ymm13, %%ymm11, %%ymm15\n\t"             \
  "vpaddw %%ymm15, %%ymm14, %%ymm14\n\t"                 \
  "vpmaddwd (%[ones]), %%ymm14, %%ymm14\n\t"             \
  "vpaddd %%ymm14, %%ymm" #r1 ", %%ymm" #r1 "\n\t"
#define K4_STEP(ao, bo)                                  \
  "vmovdqu " #bo "(%[b]), %%ymm9\n\t"                    \
  "vpand (%[mask]), %%ymm9, %%ymm8\n\t"                  \
  "vpsrlw $4, %%ymm9, %%ymm9\n\t"                        \
  "vpand (%[mask]), %%ymm9, %%ymm9\n\t"                  \
  "vmovdqu " #bo "+32(%[b]), %%ymm11\n\t"                \
  "vpand (%[mask]), %%ymm11, %%ymm10\n\t"                \
  "vpsrlw $4, %%ymm11, %%ymm11\n\t"                      \
  "vpand (%[mask]), %%ymm11, %%ymm11\n\t"                \
  K4_ROW(ao, 0, 1)                                       \
  K4_ROW(ao + 4, 2, 3)                                   \
  K4_ROW(ao + 8, 4, 5)                                   \
  K4_ROW(ao + 12, 6, 7)

QARVD_AVX2 void k4_avx2(const int8_t* a, const uint8_t* b, int64_t steps, int32_t* acc) {
  int64_t pairs = steps / 2, rest = steps % 2;
  __asm__ volatile(
      ZERO_ACC
      "test %[pairs], %[pairs]\n\t"
      "jz 2f\n\t"
      "1:\n\t"
      "prefetcht0 512(%[b])\n\t"
      K4_STEP(0, 0)
      K4_STEP(32, 64)
      "add $64, %[a]\n\t"
      "add $128, %[b]\n\t"
      "dec %[pairs]\n\t"
      "jnz 1b\n\t"
      "2:\n\t"
      "test %[rest], %[rest]\n\t"
      "jz 3f\n\t"
      K4_STEP(0, 0)
      "3:\n\t"
      STORE_ACC
      : [a] "+r"(a), [b] "+r"(b), [pairs] "+r"(pairs), [rest] "+r"(rest)
      : [acc] "r"(acc), [mask] "r"(kLowNibbles), [ones] "r"(kOnes16)
      : "cc", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",
        "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

#undef ZERO_ACC
#undef STORE_ACC
#undef K8_ROW
#undef K8_STEP
#undef K4_ROW
#undef K4_STEP

// The float form of the epilogue, for segments whose corrections are exact in float: the same
// float(corrected) as the integer form, with fused multiply-adds instead of vpmulld.
}  // namespace

QARVD_AVX2 inline void epilogue_float_avx2(const EpilogueArgs& e) {
  // Locals, so that the stores to the tile need not reload the arguments.
  const int32_t* __restrict acc = e.acc;
  const int32_t* __restrict row_sum = e.row_sum;
  const int32_t* __restrict row_zc = e.row_zc;
  const float* __restrict row_scale = e.row_scale;
  float* __restrict ftile = e.ftile;
  const bool first = e.first;
  const __m256 wz[2] = {_mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(e.wzero))),
                        _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(e.wzero + 8)))};
  __m256 ws[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
  if (row_zc) {
    ws[0] = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(e.wsum)));
    ws[1] = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(e.wsum + 8)));
  }
  const __m256 sw[2] = {_mm256_loadu_ps(e.wscale), _mm256_loadu_ps(e.wscale + 8)};
  for (int i = 0; i < kSmallMr; ++i) {
    const __m256 rs = _mm256_set1_ps(static_cast<float>(row_sum[i]));
    const __m256 zc = _mm256_set1_ps(row_zc ? static_cast<float>(row_zc[i]) : 0.0f);
    const __m256 sa = _mm256_set1_ps(row_scale[i]);
    for (int h = 0; h < 2; ++h) {
      __m256 c = _mm256_cvtepi32_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + i * kIntNr + 8 * h)));
      c = _mm256_fnmadd_ps(wz[h], rs, c);
      c = _mm256_fnmadd_ps(ws[h], zc, c);  // zero when there is no activation zero-point term
      float* f = ftile + i * kIntNr + 8 * h;
      const __m256 prev = first ? _mm256_setzero_ps() : _mm256_loadu_ps(f);
      _mm256_storeu_ps(f, _mm256_fmadd_ps(c, _mm256_mul_ps(sa, sw[h]), prev));
    }
  }
}

QARVD_AVX2 void epilogue_avx2(const EpilogueArgs& e) {
  if (e.float_exact && !e.dbg) {
    epilogue_float_avx2(e);
    return;
  }
  const __m256i wz[2] = {_mm256_loadu_si256(reinterpret_cast<const __m256i*>(e.wzero)),
                         _mm256_loadu_si256(reinterpret_cast<const __m256i*>(e.wzero + 8))};
  __m256i ws[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
  if (e.row_zc) {
    ws[0] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(e.wsum));
    ws[1] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(e.wsum + 8));
  }
  const __m256 sw[2] = {_mm256_loadu_ps(e.wscale), _mm256_loadu_ps(e.wscale + 8)};
  for (int i = 0; i < kSmallMr; ++i) {
    const __m256i rs = _mm256_set1_epi32(e.row_sum[i]);
    const __m256i zc = _mm256_set1_epi32(e.row_zc ? e.row_zc[i] : 0);
    const __m256 sa = _mm256_set1_ps(e.row_scale[i]);
    for (int h = 0; h < 2; ++h) {
      __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(e.acc + i * kIntNr + 8 * h));
      c = _mm256_sub_epi32(c, _mm256_mullo_epi32(wz[h], rs));
      if (e.row_zc) c = _mm256_sub_epi32(c, _mm256_mullo_epi32(zc, ws[h]));
      if (e.dbg) {
        alignas(32) int32_t tmp[8];
        _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), c);
        if (i < e.rows)
          for (int j = 0; j < 8 && 8 * h + j < e.cols; ++j) e.dbg[i * e.dbg_row + (8 * h + j) * e.dbg_col] = tmp[j];
      } else {
        float* f = e.ftile + i * kIntNr + 8 * h;
        const __m256 prev = e.first ? _mm256_setzero_ps() : _mm256_loadu_ps(f);
        _mm256_storeu_ps(f, _mm256_fmadd_ps(_mm256_cvtepi32_ps(c), _mm256_mul_ps(sa, sw[h]), prev));
      }
    }
  }
}

namespace {

QARVD_AVX2 void segment_avx2(const SegmentArgs& s) {
  run_segment(
      s,
      [](const uint8_t* a, const int8_t* b, int64_t kpad, int32_t* acc) {
        k8_avx2(reinterpret_cast<const int16_t*>(a), b, kpad / 2, acc);
      },
      [](const int8_t* a, const uint8_t* b, int64_t kpad, int32_t* acc) { k4_avx2(a, b, kpad / 8, acc); },
      epilogue_avx2, false);
}

QARVD_AVX2 void store_avx2(const float* ftile, int64_t ldf, const float* bias, float* y, int64_t ldy, int rows, int cols) {
  int j = 0;
  for (; j + 8 <= cols; j += 8) {
    const __m256 b = bias ? _mm256_loadu_ps(bias + j) : _mm256_setzero_ps();
    for (int i = 0; i < rows; ++i) _mm256_storeu_ps(y + i * ldy + j, _mm256_add_ps(_mm256_loadu_ps(ftile + i * ldf + j), b));
  }
  for (; j < cols; ++j)
    for (int i = 0; i < rows; ++i) y[i * ldy + j] = bias ? ftile[i * ldf + j] + bias[j] : ftile[i * ldf + j];
}

QARVD_AVX2 void minmax_avx2(const float* x, int64_t n, float* lo, float* hi) {
  const __m256 pinf = _mm256_set1_ps(INFINITY), ninf = _mm256_set1_ps(-INFINITY);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 vl = pinf, vh = ninf;
  int64_t k = 0;
  // NaN and infinities stay out of the range: |v| < inf is false for both.
  for (; k + 8 <= n; k += 8) {
    const __m256 v = _mm256_loadu_ps(x + k);
    const __m256 finite = _mm256_cmp_ps(_mm256_and_ps(v, abs_mask), pinf, _CMP_LT_OQ);
    vl = _mm256_min_ps(_mm256_blendv_ps(pinf, v, finite), vl);
    vh = _mm256_max_ps(_mm256_blendv_ps(ninf, v, finite), vh);
  }
  alignas(32) float bl[8], bh[8];
  _mm256_store_ps(bl, vl);
  _mm256_store_ps(bh, vh);
  float l = bl[0], h = bh[0];
  for (int j = 1; j < 8; ++j) {
    if (bl[j] < l) l = bl[j];
    if (bh[j] > h) h = bh[j];
  }
  for (; k < n; ++k) {
    if (!std::isfinite(x[k])) continue;
    if (x[k] < l) l = x[k];
    if (x[k] > h) h = x[k];
  }
  *lo = l;
  *hi = h;
}

// nearbyint(x / scale), NaN -> 0, clamped to [lo, hi], as int32.
QARVD_AVX2 inline __m256i quant_rel8(const float* x, __m256 scale, __m256 lo, __m256 hi) {
  __m256 v = _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(x), scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  v = _mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q));
  return _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, lo), hi));
}

inline float quant_rel_scalar(float x, float scale, float lo, float hi) {
  float v = std::nearbyint(x / scale);
  if (std::isnan(v)) return 0.0f;
  return std::fmin(std::fmax(v, lo), hi);
}

QARVD_AVX2 int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

QARVD_AVX2 void quant16_avx2(const float* x, int64_t n, float scale, float lo, float hi, int16_t* out,
                             int64_t group, int32_t* sums) {
  const __m256 vs = _mm256_set1_ps(scale), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  for (int64_t g0 = 0, g = 0; g0 < n; g0 += group, ++g) {
    const int64_t g1 = std::min(n, g0 + group);
    __m256i vsum = _mm256_setzero_si256();
    int64_t k = g0;
    for (; k + 16 <= g1; k += 16) {
      const __m256i q0 = quant_rel8(x + k, vs, vlo, vhi), q1 = quant_rel8(x + k + 8, vs, vlo, vhi);
      vsum = _mm256_add_epi32(vsum, _mm256_add_epi32(q0, q1));
      const __m256i p = _mm256_permute4x64_epi64(_mm256_packs_epi32(q0, q1), 0xd8);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), p);
    }
    int32_t s = hsum(vsum);
    for (; k < g1; ++k) {
      out[k] = static_cast<int16_t>(quant_rel_scalar(x[k], scale, lo, hi));
      s += out[k];
    }
    sums[g] = s;
  }
}

QARVD_AVX2 void quant8_avx2(const float* x, int64_t n, float scale, float lo, float hi, int32_t offset, int8_t* out,
                            int64_t group, int32_t* sums) {
  const __m256 vs = _mm256_set1_ps(scale), vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
  const __m256i voff = _mm256_set1_epi32(offset);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t g0 = 0, g = 0; g0 < n; g0 += group, ++g) {
    const int64_t g1 = std::min(n, g0 + group);
    __m256i vsum = _mm256_setzero_si256();
    int64_t k = g0;
    for (; k + 32 <= g1; k += 32) {
      const __m256i q0 = _mm256_add_epi32(quant_rel8(x + k, vs, vlo, vhi), voff);
      const __m256i q1 = _mm256_add_epi32(quant_rel8(x + k + 8, vs, vlo, vhi), voff);
      const __m256i q2 = _mm256_add_epi32(quant_rel8(x + k + 16, vs, vlo, vhi), voff);
      const __m256i q3 = _mm256_add_epi32(quant_rel8(x + k + 24, vs, vlo, vhi), voff);
      vsum = _mm256_add_epi32(vsum, _mm256_add_epi32(_mm256_add_epi32(q0, q1), _mm256_add_epi32(q2, q3)));
      const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + k), _mm256_permutevar8x32_epi32(p, order));
    }
    int32_t s = hsum(vsum);
    for (; k < g1; ++k) {
      out[k] = static_cast<int8_t>(static_cast<int32_t>(quant_rel_scalar(x[k], scale, lo, hi)) + offset);
      s += out[k];
    }
    sums[g] = s;
  }
}

QARVD_AVX2 void gather_avx2(const float* x, const int32_t* perm, int64_t n, float* out) {
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256i idx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(perm + j));
    _mm256_storeu_ps(out + j, _mm256_i32gather_ps(x, idx, 4));
  }
  for (; j < n; ++j) out[j] = x[perm[j]];
}

}  // namespace

const RowKernels kRowKernelsAvx2 = {minmax_avx2, quant16_avx2, quant8_avx2, store_avx2, gather_avx2};
const IntPath kIntAvx2 = {WeightLayout::kPairs, kSmallMr, 1, false, false, 64, &kRowKernelsAvx2, segment_avx2};

}  // namespace qarvd::gemm
