// One source, two builds. A kernel file with AVX-VNNI, AVX-512 or AMX code includes this header and
// writes its SIMD code with the ordinary intrinsics inside QARVD_SIMD_NS, marking functions with the
// QARVD_TARGET_* attributes:
// - compiled on its own it is the native build (immintrin.h, function target attributes, namespace
//   `native`), run where the CPU has the instructions;
// - compiled through its twin in csrc/kernels/emulated/ (which defines QARVD_SIMD_EMULATED and
//   includes the kernel file) it is the emulated build: SIMDe implements the same intrinsics in
//   portable C++ (namespace `emulated`), so that the very same source is tested bit for bit on any
//   x86-64. AMX tiles are emulated by amx_tiles.h.
// The emulated build is for tests and comparisons, not for speed.
#pragma once

#ifdef QARVD_SIMD_EMULATED
#include <cmath>
// SIMDe's portable fused multiply-add falls back to a*b + c (two roundings) unless the C library's
// fmaf is declared fast; it is exact either way, and exactness is what the emulation is for.
#ifndef FP_FAST_FMAF
#define FP_FAST_FMAF 1
#endif
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <cstdint>
#include <cstring>
// The VEX-encoded AVX-VNNI names (GCC's avxvnniintrin.h) for SIMDe's AVX512-VL twins.
#define _mm256_dpbusd_avx_epi32(src, a, b) simde_mm256_dpbusd_epi32(src, a, b)
// Intrinsics this SIMDe release (Debian's 0.7.4) lacks, written out lane by lane with the same
// semantics (conversion in the default rounding mode, round to nearest even, as MXCSR has it).
#ifndef _mm512_cvtepi32_ps
static inline simde__m512 qarvd_mm512_cvtepi32_ps(simde__m512i a) {
  alignas(64) int32_t in[16];
  alignas(64) float out[16];
  simde_mm512_store_si512(in, a);
  for (int i = 0; i < 16; ++i) out[i] = static_cast<float>(in[i]);
  return simde_mm512_load_ps(out);
}
#define _mm512_cvtepi32_ps(a) qarvd_mm512_cvtepi32_ps(a)
#endif
// The mask type and rounding flags under their native names, as SIMDe's aliases do for vectors.
typedef simde__mmask16 __mmask16;
#ifndef _MM_FROUND_NO_EXC
#define _MM_FROUND_NO_EXC SIMDE_MM_FROUND_NO_EXC
#endif
// Attention (attention_avx512.cc): widening loads, masked float loads and stores, and the bfloat16
// conversion, which rounds as VCVTNE2PS2BF16: zero and denormals to a signed zero, infinities kept,
// NaN quieted, otherwise to nearest even.
#ifndef _mm512_cvtepi8_epi32
static inline simde__m512i qarvd_mm512_cvtepi8_epi32(simde__m128i a) {
  alignas(16) int8_t in[16];
  alignas(64) int32_t out[16];
  simde_mm_store_si128(reinterpret_cast<simde__m128i*>(in), a);
  for (int i = 0; i < 16; ++i) out[i] = in[i];
  return simde_mm512_load_si512(out);
}
#define _mm512_cvtepi8_epi32(a) qarvd_mm512_cvtepi8_epi32(a)
#endif
#ifndef _mm512_cvtepu16_epi32
static inline simde__m512i qarvd_mm512_cvtepu16_epi32(simde__m256i a) {
  alignas(32) uint16_t in[16];
  alignas(64) int32_t out[16];
  simde_mm256_store_si256(reinterpret_cast<simde__m256i*>(in), a);
  for (int i = 0; i < 16; ++i) out[i] = in[i];
  return simde_mm512_load_si512(out);
}
#define _mm512_cvtepu16_epi32(a) qarvd_mm512_cvtepu16_epi32(a)
#endif
#ifndef _mm512_maskz_loadu_ps
static inline simde__m512 qarvd_mm512_maskz_loadu_ps(simde__mmask16 k, const void* p) {
  alignas(64) float out[16];
  for (int i = 0; i < 16; ++i) out[i] = (k >> i) & 1 ? static_cast<const float*>(p)[i] : 0.0f;
  return simde_mm512_load_ps(out);
}
#define _mm512_maskz_loadu_ps(k, p) qarvd_mm512_maskz_loadu_ps(k, p)
#endif
#ifndef _mm512_mask_storeu_ps
static inline void qarvd_mm512_mask_storeu_ps(void* p, simde__mmask16 k, simde__m512 a) {
  alignas(64) float in[16];
  simde_mm512_store_ps(in, a);
  for (int i = 0; i < 16; ++i)
    if ((k >> i) & 1) static_cast<float*>(p)[i] = in[i];
}
#define _mm512_mask_storeu_ps(p, k, a) qarvd_mm512_mask_storeu_ps(p, k, a)
#endif
#ifndef _mm512_cvtne2ps_pbh
static inline uint16_t qarvd_bf16_rne(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  const uint32_t e = u & 0x7f800000u, m = u & 0x007fffffu;
  if (e == 0) return static_cast<uint16_t>((u >> 16) & 0x8000u);
  if (e == 0x7f800000u) return static_cast<uint16_t>((u >> 16) | (m ? 0x40u : 0u));
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
// Words 0-15 from b, 16-31 from a.
static inline simde__m512bh qarvd_mm512_cvtne2ps_pbh(simde__m512 a, simde__m512 b) {
  alignas(64) float fa[16], fb[16];
  alignas(64) uint16_t out[32];
  simde_mm512_store_ps(fa, a);
  simde_mm512_store_ps(fb, b);
  for (int i = 0; i < 16; ++i) {
    out[i] = qarvd_bf16_rne(fb[i]);
    out[16 + i] = qarvd_bf16_rne(fa[i]);
  }
  simde__m512bh r;
  std::memcpy(&r, out, 64);
  return r;
}
#define _mm512_cvtne2ps_pbh(a, b) qarvd_mm512_cvtne2ps_pbh(a, b)
#endif
#define QARVD_SIMD_NS emulated
#define QARVD_TARGET_AVXVNNI
#define QARVD_TARGET_AVX512
#define QARVD_TARGET_AVX512VNNI
#define QARVD_TARGET_AVX512BF16
#define QARVD_TARGET_AMX
#define QARVD_TARGET_AMXBF16
#else
#include <immintrin.h>
// GCC 12's _mm512_undefined_* (self-initialised locals inside the intrinsics) trip this warning.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define QARVD_SIMD_NS native
#define QARVD_TARGET_AVXVNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
#define QARVD_TARGET_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl")))
#define QARVD_TARGET_AVX512VNNI \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")))
#define QARVD_TARGET_AVX512BF16 \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512bf16")))
#define QARVD_TARGET_AMX \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,amx-tile,amx-int8")))
#define QARVD_TARGET_AMXBF16                                                                          \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,avx512bf16,amx-tile," \
                        "amx-int8,amx-bf16")))
#endif
