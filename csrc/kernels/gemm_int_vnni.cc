// VNNI paths of the integer GEMM (layouts in gemm_int_kernels.h): vpdpbusd multiplies unsigned
// activation bytes by signed weight bytes and adds each group of four products into an int32 lane,
// exactly (|4 * 255 * 128| < 2^31, no saturation), so a quad row of weights (16 channels x 4 k) is one
// instruction per activation row.
// - AVX-VNNI (256-bit VEX, client CPUs): the 4 x 16 tiles of the AVX2 path, with its epilogue.
// - AVX-512 VNNI: 12 x 32 tiles (two weight panels) in 24 zmm accumulators, the epilogue applied
//   straight from the registers. 4-bit weights are widened by a mask and a shift (a 64-byte row of
//   nibbles into two quad rows): once per thread and weight panel for the 12-row tiles, in registers
//   for the few-row ones.
// The same source builds natively and against SIMDe (emulated/gemm_int_vnni.cc).
#include "simd_build.h"

#include "gemm_int_epilogue512.h"
#include "gemm_int_kernels.h"

namespace qarvd::gemm::QARVD_SIMD_NS {
namespace {

// ---- AVX-VNNI: 4 rows x 16 channels, raw sums to memory ----

// acc[4][16] = sum over kpad k of u8 activations (dwords [k/4][4]) times int8 quads.
QARVD_TARGET_AVXVNNI void k8_avxvnni(const uint8_t* a, const int8_t* b, int64_t kpad, int32_t* acc) {
  __m256i c[kSmallMr][2];
  for (int i = 0; i < kSmallMr; ++i) c[i][0] = c[i][1] = _mm256_setzero_si256();
  const int32_t* a32 = reinterpret_cast<const int32_t*>(a);
  for (int64_t t = 0; t < kpad / 4; ++t) {
    const __m256i w0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + t * 64));
    const __m256i w1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + t * 64 + 32));
    for (int i = 0; i < kSmallMr; ++i) {
      const __m256i x = _mm256_set1_epi32(a32[t * kSmallMr + i]);
      c[i][0] = _mm256_dpbusd_avx_epi32(c[i][0], x, w0);
      c[i][1] = _mm256_dpbusd_avx_epi32(c[i][1], x, w1);
    }
  }
  for (int i = 0; i < kSmallMr; ++i) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(acc + i * kIntNr), c[i][0]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(acc + i * kIntNr + 8), c[i][1]);
  }
}

// The same for 4-bit weights: per 8 k a 64-byte row of nibbles (low: k 0-3, high: k 4-7).
QARVD_TARGET_AVXVNNI void k4_avxvnni(const int8_t* a, const uint8_t* b, int64_t kpad, int32_t* acc) {
  __m256i c[kSmallMr][2];
  for (int i = 0; i < kSmallMr; ++i) c[i][0] = c[i][1] = _mm256_setzero_si256();
  const __m256i low = _mm256_set1_epi8(0x0f);
  const int32_t* a32 = reinterpret_cast<const int32_t*>(a);
  for (int64_t t = 0; t < kpad / 8; ++t) {
    const __m256i r0 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + t * 64));
    const __m256i r1 = _mm256_load_si256(reinterpret_cast<const __m256i*>(b + t * 64 + 32));
    const __m256i lo0 = _mm256_and_si256(r0, low), hi0 = _mm256_and_si256(_mm256_srli_epi16(r0, 4), low);
    const __m256i lo1 = _mm256_and_si256(r1, low), hi1 = _mm256_and_si256(_mm256_srli_epi16(r1, 4), low);
    for (int i = 0; i < kSmallMr; ++i) {
      const __m256i x0 = _mm256_set1_epi32(a32[(2 * t) * kSmallMr + i]);
      const __m256i x1 = _mm256_set1_epi32(a32[(2 * t + 1) * kSmallMr + i]);
      c[i][0] = _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(c[i][0], x0, lo0), x1, hi0);
      c[i][1] = _mm256_dpbusd_avx_epi32(_mm256_dpbusd_avx_epi32(c[i][1], x0, lo1), x1, hi1);
    }
  }
  for (int i = 0; i < kSmallMr; ++i) {
    _mm256_store_si256(reinterpret_cast<__m256i*>(acc + i * kIntNr), c[i][0]);
    _mm256_store_si256(reinterpret_cast<__m256i*>(acc + i * kIntNr + 8), c[i][1]);
  }
}

void segment_avxvnni(const SegmentArgs& s) {
  run_segment(
      s, [](const uint8_t* a, const int8_t* b, int64_t kpad, int32_t* acc) { k8_avxvnni(a, b, kpad, acc); },
      [](const int8_t* a, const uint8_t* b, int64_t kpad, int32_t* acc) { k4_avxvnni(a, b, kpad, acc); },
      epilogue_avx2, true);
}

// ---- AVX-512 VNNI: 12 rows x 32 channels (4 x 64 for a few rows) ----

// Per thread, for the 12-row tiles of 4-bit segments: the weight panels the thread is on, widened
// from nibbles to the 8-bit quad layout once and reused by every 12-row tile of its rows (in
// registers each tile would widen them again). Valid within one call: finish_vnni forgets them.
struct WidePanels {
  const PackedSegment* seg = nullptr;
  int64_t panel = -1;
  int panels = 0;
  AlignedBuffer<uint8_t> bytes;  // [panel][len_pad / 4 quad rows][64]
};
thread_local WidePanels t_wide;

QARVD_TARGET_AVX512VNNI const uint8_t* widened(const PackedSegment& seg, const WeightPanels& w, int64_t panel, int panels) {
  WidePanels& t = t_wide;
  if (t.seg == &seg && t.panel == panel && t.panels == panels) return t.bytes.data();
  const int64_t wide_bytes = w.len_pad * kIntNr;
  t.bytes.reserve(static_cast<size_t>(panels * wide_bytes));
  for (int v = 0; v < panels; ++v) widen_nibble_panel(w.bytes.data() + (panel + v) * w.panel_bytes, w.len_pad, t.bytes.data() + v * wide_bytes);
  t.seg = &seg;
  t.panel = panel;
  t.panels = panels;
  return t.bytes.data();
}

void finish_vnni() { t_wide.seg = nullptr; }

// One register tile of MR rows and NP weight panels (the ftile row holds LDP panels), all of the
// segment's groups: for each group the accumulators start at zero in registers, run over the
// group's k (u8 activations, dwords [k/4][MR], times int8 quads (BITS 8) or 4-bit nibble rows
// (BITS 4)), and go through the epilogue straight from the registers. One function, so that the
// accumulators are locals the compiler keeps in registers.
template <int MR, int NP, int LDP, int BITS>
QARVD_TARGET_AVX512VNNI void segment_tiles(const SegmentArgs& s) {
  constexpr int kMr = MR, kLd = LDP * kIntNr;
  const PackedSegment& seg = *s.seg;
  const WeightPanels& w = *s.w;
  // 4-bit weights of the 12-row tiles come widened (the same bytes as 8-bit weights with values
  // 0..15, so the 8-bit loop gives the same sums); those of the few-row tiles widen in registers.
  constexpr bool kWide = BITS == 4 && MR >= 12;
  constexpr int kBits = kWide ? 8 : BITS;
  const int64_t panel_bytes = kWide ? w.len_pad * kIntNr : w.panel_bytes;
  const uint8_t* base = kWide ? widened(seg, w, s.panel, NP) : w.bytes.data() + s.panel * panel_bytes;
  const bool float_exact = seg.float_exact8 && !s.dbg;
  const bool shared_zc = shared_row_zc(s, kMr);
  const __m512i low = _mm512_set1_epi8(0x0f);
  for (int64_t g = 0; g < seg.ngroups; ++g) {
    const int64_t kk = seg.group_offset_k(g), kpad = round_up(seg.group_len(g), w.step);
    const int32_t* a32 = reinterpret_cast<const int32_t*>(s.a + kk * kMr);
    const uint8_t* b = base + (kBits == 8 ? kk * kIntNr : kk * kIntNr / 2);
    __m512i acc[kMr][NP];
#pragma GCC unroll 12
    for (int i = 0; i < kMr; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < NP; ++v) acc[i][v] = _mm512_setzero_si512();
    if (kBits == 8) {
      for (int64_t q = 0; q < kpad / 4; ++q) {
        __m512i wv[NP];
#pragma GCC unroll 4
        for (int v = 0; v < NP; ++v) wv[v] = _mm512_load_si512(reinterpret_cast<const void*>(b + v * panel_bytes + q * 64));
#pragma GCC unroll 12
        for (int i = 0; i < kMr; ++i) {
          const __m512i x = _mm512_set1_epi32(a32[q * kMr + i]);
#pragma GCC unroll 4
          for (int v = 0; v < NP; ++v) acc[i][v] = _mm512_dpbusd_epi32(acc[i][v], x, wv[v]);
        }
      }
    } else {
      for (int64_t q = 0; q < kpad / 8; ++q) {
        __m512i lo[NP], hi[NP];
#pragma GCC unroll 4
        for (int v = 0; v < NP; ++v) {
          const __m512i raw = _mm512_load_si512(reinterpret_cast<const void*>(b + v * panel_bytes + q * 64));
          lo[v] = _mm512_and_si512(raw, low);
          hi[v] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low);
        }
#pragma GCC unroll 12
        for (int i = 0; i < kMr; ++i) {
          const __m512i x0 = _mm512_set1_epi32(a32[(2 * q) * kMr + i]);
          const __m512i x1 = _mm512_set1_epi32(a32[(2 * q + 1) * kMr + i]);
#pragma GCC unroll 4
          for (int v = 0; v < NP; ++v) acc[i][v] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(acc[i][v], x0, lo[v]), x1, hi[v]);
        }
      }
    }
    const bool first = s.first && g == 0;
#pragma GCC unroll 4
    for (int v = 0; v < NP; ++v) {
      const PanelMeta p = panel_meta(seg, s.panel + v, g, shared_zc, s.row_zc[0]);
#pragma GCC unroll 12
      for (int i = 0; i < kMr; ++i) apply_row(s, p, kMr, i, v, g, first, float_exact, kLd, acc[i][v]);
    }
  }
}

template <int MR, int NP, int LDP>
void segment_tiles(const SegmentArgs& s) {
  if (s.seg->spec.bits == 8) {
    segment_tiles<MR, NP, LDP, 8>(s);
  } else {
    segment_tiles<MR, NP, LDP, 4>(s);
  }
}

void segment_avx512vnni(const SegmentArgs& s) {
  if (s.panels == 2) {
    segment_tiles<12, 2, 2>(s);
  } else {
    segment_tiles<12, 1, 2>(s);
  }
}

// A few rows: 4 x 64 tiles waste less on padding rows.
void segment_avx512vnni_few(const SegmentArgs& s) {
  switch (s.panels) {
    case 4: return segment_tiles<4, 4, 4>(s);
    case 3: return segment_tiles<4, 3, 4>(s);
    case 2: return segment_tiles<4, 2, 4>(s);
    default: return segment_tiles<4, 1, 4>(s);
  }
}

}  // namespace

#ifndef QARVD_SIMD_EMULATED
// The peak loop: 24 independent vpdpbusd chains on registers (2 x 64 x 24 int8 operations per
// round), the instruction's throughput bound and nothing else. Inline assembly: it measures the
// instruction, and compilers keep such register arrays in memory.
QARVD_TARGET_AVX512VNNI int64_t peak_ops_avx512vnni(int64_t rounds) {
  if (rounds <= 0) return 0;
  int64_t n = rounds;
  __asm__ volatile(
      "vpternlogd $0xff, %%zmm31, %%zmm31, %%zmm31\n\t"
      "vpabsb %%zmm31, %%zmm30\n\t"
      "1:\n\t"
      "vpdpbusd %%zmm30, %%zmm31, %%zmm0\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm1\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm2\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm3\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm4\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm5\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm6\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm7\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm8\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm9\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm10\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm11\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm12\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm13\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm14\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm15\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm16\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm17\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm18\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm19\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm20\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm21\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm22\n\t"
        "vpdpbusd %%zmm30, %%zmm31, %%zmm23\n\t"
        "dec %[n]\n\t"
      "jnz 1b\n\t"
      : [n] "+r"(n)
      :
      : "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm30", "xmm31");
  return rounds * 24 * 64 * 2;
}
#endif

const IntPath kIntAvxVnni = {WeightLayout::kQuads, kSmallMr, 1, true, false, 64, &kRowKernelsAvx2, segment_avxvnni};
const IntPath kIntAvx512Vnni = {WeightLayout::kQuads, 12, 2, true, false, 96, &kRowKernelsAvx2, segment_avx512vnni, finish_vnni};
const IntPath kIntAvx512VnniFew = {WeightLayout::kQuads, 4, 4, true, false, 64, &kRowKernelsAvx2, segment_avx512vnni_few};

}  // namespace qarvd::gemm::QARVD_SIMD_NS
