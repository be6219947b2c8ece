// AMX path of the integer GEMM: 32 x 32 register tiles as 2 x 2 accumulator tiles of 16 x 16 int32
// (tmm0-3), two activation tiles of 16 rows (tmm4-5, loaded from row-major packed activations) and
// two weight tiles (tmm6-7, quad rows of the packed weights, loaded as they are), tdpbssd on signed
// activation bytes (xq, or xq - 128 for uint8 activations, the shift folded into the zero-point
// correction like any zero point). 4-bit weights are widened to bytes once per panel and thread, in a
// scratch buffer, just before the tile loads. After each group the accumulators are stored and the
// AVX-512 epilogue (shared with the VNNI path) applies them. The tile configuration is loaded once
// per thread and kept until the K step changes; forward_int releases the tiles at the end.
// The same source builds natively and against SIMDe plus the tile emulation (emulated/gemm_int_amx.cc).
#include "amx_tiles.h"
#include "gemm_int_epilogue512.h"
#include "gemm_int_kernels.h"
#include "simd_build.h"

namespace qarvd::gemm::QARVD_SIMD_NS {
namespace {

constexpr int kMr = 32;
constexpr int kNp = 2;
constexpr int kTileRows = 16;

// Per-thread: the configured K step (0: tiles not configured), the widened 4-bit weights and the
// zero-padded weight rows of a last, partial tile step.
struct AmxThread {
  int64_t kstep = 0;
  alignas(64) uint8_t tail[kNp][16 * 64];
  const PackedSegment* wide_seg = nullptr;  // whose panels are in `wide`
  int64_t wide_panel = -1;
  int wide_panels = 0;
  AlignedBuffer<uint8_t> wide;  // [panel][len_pad / 4 quad rows][64]
};
thread_local AmxThread t_amx;

// Accumulators C00 C01 C10 C11 (tiles 0-3) of 16 x 16 int32, A tiles (4, 5) of 16 rows x kstep
// bytes, B tiles (6, 7) of kstep / 4 quad rows x 64 bytes.
QARVD_TARGET_AMX void configure(int64_t kstep) {
  AmxThread& t = t_amx;
  if (t.kstep == kstep) return;
  TileConfig c;
  for (int i = 0; i < 4; ++i) {
    c.rows[i] = kTileRows;
    c.colsb[i] = 64;
  }
  for (int i = 4; i < 6; ++i) {
    c.rows[i] = kTileRows;
    c.colsb[i] = static_cast<uint16_t>(kstep);
  }
  for (int i = 6; i < 8; ++i) {
    c.rows[i] = static_cast<uint8_t>(kstep / 4);
    c.colsb[i] = 64;
  }
  Tiles::configure(c);
  t.kstep = kstep;
}

// Bytes per panel of the widened 4-bit weights: the segment padded to whole tile steps (zeros).
int64_t wide_panel_bytes(const PackedSegment& seg) { return tile_padded_len(seg) * kIntNr; }

// The weights of panels [panel, panel + panels) of a 4-bit segment as int8 quad rows (the 8-bit
// layout) padded to whole tile steps, widened from the nibbles once and reused while the thread
// stays on these panels.
QARVD_TARGET_AVX512VNNI const uint8_t* widened(const PackedSegment& seg, const WeightPanels& w, int64_t panel, int panels) {
  AmxThread& t = t_amx;
  const int64_t wide_bytes = wide_panel_bytes(seg);
  if (t.wide_seg == &seg && t.wide_panel == panel && t.wide_panels == panels) return t.wide.data();
  t.wide.reserve(static_cast<size_t>(kNp * wide_bytes));
  for (int v = 0; v < panels; ++v) {
    uint8_t* dst = t.wide.data() + v * wide_bytes;
    std::memset(dst + w.len_pad * kIntNr, 0, static_cast<size_t>(wide_bytes - w.len_pad * kIntNr));
    widen_nibble_panel(w.bytes.data() + (panel + v) * w.panel_bytes, w.len_pad, dst);
  }
  t.wide_seg = &seg;
  t.wide_panel = panel;
  t.wide_panels = panels;
  return t.wide.data();
}

template <int NP>
QARVD_TARGET_AMX void segment_tiles(const SegmentArgs& s) {
  const PackedSegment& seg = *s.seg;
  const WeightPanels& w = *s.w;
  const int64_t kstep = tile_k_step(seg);
  configure(kstep);
  // Weight panels as int8 quad rows: the packed ones (8-bit, padded to the VNNI step of 4) or the
  // widened copy (4-bit, padded to whole tile steps).
  const bool wide = seg.spec.bits == 4;
  const uint8_t* b = wide ? widened(seg, w, s.panel, NP) : w.bytes.data() + s.panel * w.panel_bytes;
  const int64_t b_panel = wide ? wide_panel_bytes(seg) : w.panel_bytes;
  const int64_t b_len = wide ? tile_padded_len(seg) : w.len_pad;  // k covered by each panel's rows
  const uint8_t* a0 = s.a;
  const uint8_t* a1 = s.a + kTileRows * s.a_ld;
  alignas(64) int32_t acc[kMr][kNp * kIntNr];
  const bool float_exact = seg.float_exact8 && !s.dbg;
  const bool shared_zc = shared_row_zc(s, kMr);
  for (int64_t g = 0; g < seg.ngroups; ++g) {
    const int64_t kk = seg.group_offset_k(g), kpad = round_up(seg.group_len(g), kstep);
    Tiles::zero<0>();
    Tiles::zero<2>();
    if (NP > 1) {
      Tiles::zero<1>();
      Tiles::zero<3>();
    }
    for (int64_t k0 = kk; k0 < kk + kpad; k0 += kstep) {
      // A last step past the panel's rows takes them from a zero-padded copy.
      const uint8_t* b0 = b + k0 * kIntNr;
      const uint8_t* b1 = b + b_panel + k0 * kIntNr;
      if (k0 + kstep > b_len) {
        AmxThread& t = t_amx;
        const size_t valid = static_cast<size_t>((b_len - k0) * kIntNr), all = static_cast<size_t>(kstep * kIntNr);
        for (int v = 0; v < NP; ++v) {
          std::memcpy(t.tail[v], b + v * b_panel + k0 * kIntNr, valid);
          std::memset(t.tail[v] + valid, 0, all - valid);
        }
        b0 = t.tail[0];
        b1 = t.tail[NP > 1 ? 1 : 0];
      }
      Tiles::load<4>(a0 + k0, s.a_ld);
      Tiles::load<5>(a1 + k0, s.a_ld);
      Tiles::load<6>(b0, 64);
      Tiles::dpbssd<0, 4, 6>();
      Tiles::dpbssd<2, 5, 6>();
      if (NP > 1) {
        Tiles::load<7>(b1, 64);
        Tiles::dpbssd<1, 4, 7>();
        Tiles::dpbssd<3, 5, 7>();
      }
    }
    constexpr int64_t ld = kNp * kIntNr * 4;
    Tiles::store<0>(&acc[0][0], ld);
    Tiles::store<2>(&acc[kTileRows][0], ld);
    if (NP > 1) {
      Tiles::store<1>(&acc[0][kIntNr], ld);
      Tiles::store<3>(&acc[kTileRows][kIntNr], ld);
    }
    const bool first = s.first && g == 0;
    for (int v = 0; v < NP; ++v) {
      const PanelMeta p = panel_meta(seg, s.panel + v, g, shared_zc, s.row_zc[0]);
      for (int i = 0; i < kMr; ++i) {
        const __m512i row = _mm512_load_si512(reinterpret_cast<const void*>(&acc[i][v * kIntNr]));
        apply_row(s, p, kMr, i, v, g, first, float_exact, kNp * kIntNr, row);
      }
    }
  }
}

void segment_amx(const SegmentArgs& s) {
  if (s.panels == kNp) {
    segment_tiles<kNp>(s);
  } else {
    segment_tiles<1>(s);
  }
}

QARVD_TARGET_AMX void finish_amx() {
  AmxThread& t = t_amx;
  if (t.kstep != 0) Tiles::release();
  t.kstep = 0;
  t.wide_seg = nullptr;
}

}  // namespace

#ifndef QARVD_SIMD_EMULATED
// The peak loop: four independent tdpbssd chains on fixed A and B tiles (2 x 16 x 16 x 64 int8
// operations each per iteration).
QARVD_TARGET_AMX int64_t peak_ops_amx(int64_t iterations) {
  alignas(64) static const int8_t src[16 * 64] = {1};
  configure(64);
  Tiles::zero<0>();
  Tiles::zero<1>();
  Tiles::zero<2>();
  Tiles::zero<3>();
  Tiles::load<4>(src, 64);
  Tiles::load<5>(src, 64);
  Tiles::load<6>(src, 64);
  Tiles::load<7>(src, 64);
  for (int64_t it = 0; it < iterations; ++it) {
    Tiles::dpbssd<0, 4, 6>();
    Tiles::dpbssd<1, 4, 7>();
    Tiles::dpbssd<2, 5, 6>();
    Tiles::dpbssd<3, 5, 7>();
  }
  alignas(64) int32_t out[16 * 16];
  Tiles::store<0>(out, 64);
  finish_amx();
  return out[0] == 0x7fffffff ? 0 : iterations * 4 * 16 * 16 * 64 * 2;
}
#endif

const IntPath kIntAmx = {WeightLayout::kQuads, kMr, kNp, false, true, 128, &kRowKernelsAvx2, segment_amx, finish_amx};

}  // namespace qarvd::gemm::QARVD_SIMD_NS
