// AVX-512 code shared by the AVX-512 VNNI and AMX paths (included inside their QARVD_SIMD_NS): the
// widening of 4-bit weight panels, and the epilogue of one group for one row of a register tile: corrected = acc - wzero * row_sum - row_zc * wsum
// (int32, wrapping; in float where that is exact), then ftile = fma(float(corrected), row_scale *
// wscale, first ? 0 : ftile), the same float operations as every other path; or the corrected sums to
// the debug output.
#pragma once
#include "gemm_int_kernels.h"
#include "simd_build.h"

namespace qarvd::gemm::QARVD_SIMD_NS {

// One panel of 4-bit weights (len_pad / 8 rows of 64 bytes of nibbles: low k 0-3, high k 4-7) as
// the 8-bit quad layout (len_pad / 4 rows of 64 bytes, values 0..15).
QARVD_TARGET_AVX512VNNI inline void widen_nibble_panel(const uint8_t* src, int64_t len_pad, uint8_t* dst) {
  const __m512i low = _mm512_set1_epi8(0x0f);
  for (int64_t r = 0; r < len_pad / 8; ++r) {
    const __m512i raw = _mm512_load_si512(reinterpret_cast<const void*>(src + r * 64));
    _mm512_store_si512(reinterpret_cast<void*>(dst + (2 * r) * 64), _mm512_and_si512(raw, low));
    _mm512_store_si512(reinterpret_cast<void*>(dst + (2 * r + 1) * 64), _mm512_and_si512(_mm512_srli_epi16(raw, 4), low));
  }
}

// One weight panel's metadata for one group. Two shortcuts give the same integers with less work:
// weights without zero points (8-bit symmetric) skip the row-sum term, and a tile whose rows share
// one zero point (symmetric activations: all 128; static ones: their zero point + 128) takes the
// zero-point term per panel (wszc = wsum * zc) instead of per row.
struct PanelMeta {
  __m512i wz, ws, wszc;
  __m512 sw, wzf, wsf, wszcf;
  bool no_wzero, shared_zc;
};

// Whether the tile's mr rows share one zero point (byte formats only).
inline bool shared_row_zc(const SegmentArgs& s, int mr) {
  if (!s.row_zc) return false;
  for (int i = 1; i < mr; ++i)
    if (s.row_zc[i] != s.row_zc[0]) return false;
  return true;
}

QARVD_TARGET_AVX512VNNI inline PanelMeta panel_meta(const PackedSegment& seg, int64_t panel, int64_t g, bool shared_zc,
                                                    int32_t zc) {
  const size_t meta = static_cast<size_t>((panel * seg.ngroups + g) * kIntNr);
  PanelMeta p;
  p.wz = _mm512_loadu_si512(seg.wzero.data() + meta);
  p.ws = _mm512_loadu_si512(seg.wsum.data() + meta);
  p.sw = _mm512_loadu_ps(seg.wscale.data() + meta);
  p.wzf = _mm512_cvtepi32_ps(p.wz);
  p.wsf = _mm512_cvtepi32_ps(p.ws);
  p.no_wzero = seg.no_wzero;
  p.shared_zc = shared_zc;
  if (shared_zc) {
    p.wszc = _mm512_mullo_epi32(p.ws, _mm512_set1_epi32(zc));
    p.wszcf = _mm512_mul_ps(p.wsf, _mm512_set1_ps(static_cast<float>(zc)));
  }
  return p;
}

// Row i, panel v of the tile (ftile row stride ldf floats; row sums [group][mr]) for group g.
// float_exact: the segment's corrections are exact in float (and no debug output is asked for).
QARVD_TARGET_AVX512VNNI inline void apply_row(const SegmentArgs& s, const PanelMeta& p, int mr, int i, int v,
                                              int64_t g, bool first, bool float_exact, int64_t ldf, __m512i acc) {
  const int32_t rs = s.row_sums[g * mr + i], zc = s.row_zc[i];
  __m512 c;
  if (float_exact) {
    // Every term an integer below 2^24: exact in float however it is grouped.
    c = _mm512_cvtepi32_ps(acc);
    if (!p.no_wzero) c = _mm512_fnmadd_ps(p.wzf, _mm512_set1_ps(static_cast<float>(rs)), c);
    c = p.shared_zc ? _mm512_sub_ps(c, p.wszcf) : _mm512_fnmadd_ps(p.wsf, _mm512_set1_ps(static_cast<float>(zc)), c);
  } else {
    __m512i ci = p.no_wzero ? acc : _mm512_sub_epi32(acc, _mm512_mullo_epi32(p.wz, _mm512_set1_epi32(rs)));
    ci = _mm512_sub_epi32(ci, p.shared_zc ? p.wszc : _mm512_mullo_epi32(p.ws, _mm512_set1_epi32(zc)));
    if (s.dbg) {
      alignas(64) int32_t tmp[kIntNr];
      _mm512_store_si512(reinterpret_cast<void*>(tmp), ci);
      if (i < s.rows)
        for (int j = 0; j < kIntNr && v * kIntNr + j < s.cols; ++j) s.dbg[i * s.dbg_row + (v * kIntNr + j) * s.dbg_col + g] = tmp[j];
      return;
    }
    c = _mm512_cvtepi32_ps(ci);
  }
  float* f = s.ftile + i * ldf + v * kIntNr;
  const __m512 prev = first ? _mm512_setzero_ps() : _mm512_loadu_ps(f);
  _mm512_storeu_ps(f, _mm512_fmadd_ps(c, _mm512_mul_ps(_mm512_set1_ps(s.row_scale[i]), p.sw), prev));
}

}  // namespace qarvd::gemm::QARVD_SIMD_NS
