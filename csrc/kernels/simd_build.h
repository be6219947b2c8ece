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
#define QARVD_SIMD_NS emulated
#define QARVD_TARGET_AVXVNNI
#define QARVD_TARGET_AVX512
#define QARVD_TARGET_AVX512VNNI
#define QARVD_TARGET_AMX
#else
#include <immintrin.h>
// GCC 12's _mm512_undefined_* (self-initialised locals inside the intrinsics) trip this warning.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#define QARVD_SIMD_NS native
#define QARVD_TARGET_AVXVNNI __attribute__((target("avx2,fma,f16c,avxvnni")))
#define QARVD_TARGET_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl")))
#define QARVD_TARGET_AVX512VNNI \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")))
#define QARVD_TARGET_AMX \
  __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512dq,avx512vl,avx512vnni,amx-tile,amx-int8")))
#endif
