// The per-ISA pieces of the integer GEMM (gemm_int.h), all with one contract so that every path
// yields the same integers and, through the same float operations in the epilogue, the same floats.
//
// Weight layouts, per panel of kIntNr = 16 output channels:
// - pairs, 8-bit: per pair of k, 32 bytes: channel c's int8 pair at bytes 2c, 2c+1.
// - pairs, 4-bit: per 8 k, two 32-byte blocks (k 0-3, k 4-7); byte 4c + j holds channel c (low
//   nibble) and channel 8 + c (high nibble) at k = 4 * block + j, as unsigned u = wq + 8.
// - quads, 8-bit: per 4 k, 64 bytes: channel c's four int8 at bytes 4c .. 4c+3 (an AMX B-tile row).
// - quads, 4-bit: per 8 k, 64 bytes: byte 4c + j holds channel c at k = j (low nibble) and k = 4 + j
//   (high nibble), as u = wq + 8; a mask and a shift give two quad rows.
// Activation formats, per panel of `mr` rows (the path's register tile height):
// - int16 pairs (8-bit weights in pairs): a = xq - za, as dwords [k/2][row] holding (a[2t], a[2t+1]).
// - bytes: s = xq - 128 * (uint8 activations), or for VNNI the unsigned u = s + 128, as dwords
//   [k/4][row] holding four k; or, for AMX, row-major rows of the padded segment (tile loads).
#pragma once
#include <cstdint>

#include "gemm_int.h"

namespace qarvd::gemm {

// What a path's segment routine gets: one register tile (mr rows x panels * 16 channels) of one
// segment, all of its groups.
struct SegmentArgs {
  const PackedSegment* seg;
  const WeightPanels* w;    // the segment's weights in the path's layout
  const uint8_t* a;         // the segment's packed activations of this row panel
  int64_t a_ld;             // row-major activations: bytes per row
  int64_t panel;            // the tile's first weight panel
  int panels;               // weight panels in the tile (at most the path's np)
  const int32_t* row_sums;  // [ngroups][mr] sums of the packed activations per group
  const int32_t* row_zc;    // [mr] byte formats: the zero point of the packed bytes; int16 pairs: null
  const float* row_scale;   // [mr] activation scale
  float* ftile;             // [mr][np * kIntNr] fp32 accumulation (taken as zero when `first`)
  bool first;               // the tile's first segment
  int32_t* dbg;             // when not null: corrected sums of the segment's first group go to
  int64_t dbg_row, dbg_col; //   dbg[i * dbg_row + j * dbg_col] (+ g for group g) instead of ftile
  int rows, cols;           // valid part of the tile
};

// The helpers every path uses to quantize the activations (AVX2 or portable).
struct RowKernels {
  // lo/hi of the finite values of x[0..n) (lo > hi when there is none).
  void (*minmax)(const float* x, int64_t n, float* lo, float* hi);
  // out[k] = clamp(nearbyint(x[k] / scale), lo, hi) + offset (NaN -> offset), as int16 or int8, and
  // sums[g] = sum of out over group g (groups of `group` elements).
  void (*quant16)(const float* x, int64_t n, float scale, float lo, float hi, int16_t* out, int64_t group,
                  int32_t* sums);
  void (*quant8)(const float* x, int64_t n, float scale, float lo, float hi, int32_t offset, int8_t* out,
                 int64_t group, int32_t* sums);
  // y[i * ldy + j] = ftile[i * ldf + j] (+ bias[j]) for i < rows, j < cols.
  void (*store)(const float* ftile, int64_t ldf, const float* bias, float* y, int64_t ldy, int rows, int cols);
  // out[j] = x[perm[j]] for j < n (a dual-scale layer's column order).
  void (*gather)(const float* x, const int32_t* perm, int64_t n, float* out);
};

extern const RowKernels kRowKernelsScalar;
extern const RowKernels kRowKernelsAvx2;

// A code path of the integer GEMM.
struct IntPath {
  WeightLayout layout;
  int mr;                // rows of the register tile and of a packed activation panel
  int np;                // weight panels of the register tile
  bool unsigned_bytes;   // byte activations as u = s + 128 (VNNI)
  bool row_major;        // byte activations row-major (AMX tiles) rather than interleaved dwords
  int64_t block_rows;    // rows per block of packed activations
  const RowKernels* rows_kernels;
  // For each group g of the segment: acc = sum over the group of a * w; corrected = acc - wzero *
  // row_sum - row_zc * wsum (int32, wrapping; the last term only for byte formats); then ftile =
  // fma(float(corrected), row_scale * wscale, first group of the tile ? 0 : ftile), or corrected to dbg.
  void (*segment)(const SegmentArgs& s);
  // Called by each thread when its share of a call is done (AMX: release the tiles), or null.
  void (*finish)() = nullptr;

  // Whether a segment's activations are int16 pairs (8-bit weights in pairs) or bytes.
  bool int16_pairs(const PackedSegment& seg) const { return layout == WeightLayout::kPairs && seg.spec.bits == 8; }
};

extern const IntPath kIntScalar;  // 4 x 16, pairs
extern const IntPath kIntAvx2;    // 4 x 16, pairs
namespace native {
extern const IntPath kIntAvxVnni;     // 4 x 16, quads, vpdpbusd on ymm
extern const IntPath kIntAvx512Vnni;     // 12 x 32, quads, vpdpbusd on zmm
extern const IntPath kIntAvx512VnniFew;  // 4 x 64, the same for a few rows
extern const IntPath kIntAmx;            // 32 x 32 (2 x 2 tiles), quads, tdpbssd
// Peak-rate loops of the path's multiply instruction (for the benchmark's fraction of peak): the
// int8 operations done in `iterations` rounds.
int64_t peak_ops_avx512vnni(int64_t iterations);
int64_t peak_ops_amx(int64_t iterations);
}  // namespace native
namespace emulated {
extern const IntPath kIntAvxVnni;
extern const IntPath kIntAvx512Vnni;
extern const IntPath kIntAvx512VnniFew;
extern const IntPath kIntAmx;
}  // namespace emulated

// The K step of a segment's AMX tiles: 64, or 32 or 16 for groups that are not multiples of 64 (so
// that group boundaries fall on tile steps), and the length its row-major activations are padded
// to: the last group rounded up to whole tile steps, zeros past the segment.
inline int64_t tile_k_step(const PackedSegment& s) {
  if (s.ngroups == 1 || s.group % 64 == 0) return 64;
  return s.group % 32 == 0 ? 32 : 16;
}
inline int64_t tile_padded_len(const PackedSegment& s) {
  return (s.ngroups - 1) * s.group + round_up(s.group_len(s.ngroups - 1), tile_k_step(s));
}

// The path forward_int takes now (the kernel table behind int_path()).
const IntPath& current_int_path();

// The 4 x 16 tile machinery of the scalar, AVX2 and AVX-VNNI paths: a kernel per group writes the
// raw sums to acc, an epilogue applies them.
constexpr int kSmallMr = 4;

struct EpilogueArgs {
  const int32_t* acc;      // [kSmallMr][kIntNr] raw kernel sums
  const int32_t* row_sum;  // [kSmallMr] sum of the packed activations over the group
  const int32_t* row_zc;   // [kSmallMr] byte formats: the zero point of the packed bytes; else null
  const float* row_scale;  // [kSmallMr] activation scale
  const int32_t* wzero;    // [kIntNr]
  const int32_t* wsum;     // [kIntNr] (byte formats only)
  const float* wscale;     // [kIntNr]
  float* ftile;            // [kSmallMr][kIntNr]
  int32_t* dbg;
  int64_t dbg_row, dbg_col;
  int rows, cols;
  bool first;
  bool float_exact;        // corrections may be applied in float
};

// Runs a segment with one ISA's kernels and epilogue (the loop the 4 x 16 paths share). k8 takes
// the 8-bit activations (int16 pairs or bytes), k4 bytes; both the segment's weight panel and the
// group's K rounded up to whole steps of the layout (padding is zero on both sides).
template <typename K8, typename K4, typename Epilogue>
inline void run_segment(const SegmentArgs& s, K8 k8, K4 k4, Epilogue epilogue, bool bytes8) {
  const PackedSegment& seg = *s.seg;
  alignas(64) int32_t acc[kSmallMr * kIntNr];
  EpilogueArgs e;
  e.acc = acc;
  e.row_zc = s.row_zc;
  e.row_scale = s.row_scale;
  e.ftile = s.ftile;
  e.dbg_row = s.dbg_row;
  e.dbg_col = s.dbg_col;
  e.rows = s.rows;
  e.cols = s.cols;
  const bool bytes = seg.spec.bits == 4 || bytes8;
  e.float_exact = bytes ? seg.float_exact8 : seg.float_exact16;
  const WeightPanels& w = *s.w;
  const uint8_t* b = w.bytes.data() + s.panel * w.panel_bytes;
  for (int64_t g = 0; g < seg.ngroups; ++g) {
    const int64_t kk = seg.group_offset_k(g);
    const int64_t kpad = round_up(seg.group_len(g), w.step);
    if (seg.spec.bits == 8) {
      k8(s.a + kk * kSmallMr * (bytes8 ? 1 : 2), reinterpret_cast<const int8_t*>(b + kk * kIntNr), kpad, acc);
    } else {
      k4(reinterpret_cast<const int8_t*>(s.a + kk * kSmallMr), b + kk * kIntNr / 2, kpad, acc);
    }
    const size_t meta = static_cast<size_t>((s.panel * seg.ngroups + g) * kIntNr);
    e.row_sum = s.row_sums + g * kSmallMr;
    e.wzero = seg.wzero.data() + meta;
    e.wsum = seg.wsum.data() + meta;
    e.wscale = seg.wscale.data() + meta;
    e.dbg = s.dbg ? s.dbg + g : nullptr;
    e.first = s.first && g == 0;
    epilogue(e);
  }
}

// The epilogue of the 4 x 16 tiles on AVX2 (gemm_int_avx2.cc), shared with the AVX-VNNI path.
void epilogue_avx2(const EpilogueArgs& e);

}  // namespace qarvd::gemm
