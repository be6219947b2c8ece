// The per-ISA pieces of the integer GEMM (gemm_int.h), all with one contract so that every path
// yields the same integers and, through the same float operations in the epilogue, the same floats.
//
// Packed layouts (kIntMr = 4 rows, kIntNr = 16 channels):
// - A, 8-bit segments: int16 a = xq - za, as dwords [k/2][row] holding the pair (a[2t], a[2t+1]).
// - A, 4-bit segments: int8 s = xq (- 128 for uint8), as dwords [k/4][row] holding four k.
// - B, 8-bit: per pair of k, 32 bytes: channel c's int8 pair at bytes 2c, 2c+1.
// - B, 4-bit: per 8 k, two 32-byte blocks (k 0-3, k 4-7); byte 4c + j holds channel c (low nibble)
//   and channel 8 + c (high nibble) at k = 4 * block + j, as unsigned u = wq + 8.
#pragma once
#include <cstdint>

#include "gemm_int.h"

namespace qarvd::gemm {

// What the epilogue of one (segment, group) needs for one tile (used inside the ISA files).
struct EpilogueArgs {
  const int32_t* acc;      // [kIntMr][kIntNr] raw kernel sums
  const int32_t* row_sum;  // [kIntMr] sum of the packed activations over the group
  const int32_t* row_zc;   // [kIntMr] 4-bit: the activation zero point of the packed bytes; 8-bit: null
  const float* row_scale;  // [kIntMr] activation scale
  const int32_t* wzero;    // [kIntNr]
  const int32_t* wsum;     // [kIntNr] (4-bit only)
  const float* wscale;     // [kIntNr]
  float* ftile;            // [kIntMr][kIntNr] fp32 accumulation (taken as zero when `first`), or
  int32_t* dbg;            // when not null: corrected sums go to dbg[i * dbg_row + j * dbg_col]
  int64_t dbg_row, dbg_col;
  int rows, cols;          // valid part of the tile (for dbg)
  bool first;              // the tile's first (segment, group)
  bool float_exact;        // the segment's float_exact: corrections may be applied in float
};

// One segment of one output tile: all its groups, each a kernel run and an epilogue.
struct SegmentArgs {
  const PackedSegment* seg;
  const uint8_t* a;         // the segment's packed activations of this row panel
  int64_t panel;            // the weight panel (its weights and metadata are found from seg)
  const int32_t* row_sums;  // [ngroups][kIntMr]
  const int32_t* row_zc;    // [kIntMr] for 4-bit segments, else null
  const float* row_scale;   // [kIntMr]
  float* ftile;
  bool first;               // the tile's first segment
  int32_t* dbg;             // the segment's first group in the debug output, or null
  int64_t dbg_row, dbg_col;
  int rows, cols;
};

// Runs a segment with one ISA's kernels and epilogue (the loop every ISA file shares).
template <typename K8, typename K4, typename Epilogue>
inline void run_segment(const SegmentArgs& s, K8 k8, K4 k4, Epilogue epilogue) {
  const PackedSegment& seg = *s.seg;
  alignas(64) int32_t acc[kIntMr * kIntNr];
  EpilogueArgs e;
  e.acc = acc;
  e.row_zc = s.row_zc;
  e.row_scale = s.row_scale;
  e.ftile = s.ftile;
  e.dbg_row = s.dbg_row;
  e.dbg_col = s.dbg_col;
  e.rows = s.rows;
  e.cols = s.cols;
  e.float_exact = seg.float_exact;
  const uint8_t* b = seg.weights.data() + s.panel * seg.panel_bytes;
  for (int64_t g = 0; g < seg.ngroups; ++g) {
    const int64_t kk = seg.group_offset_k(g);
    if (seg.spec.bits == 8) {
      k8(reinterpret_cast<const int16_t*>(s.a + kk * kIntMr * 2), reinterpret_cast<const int8_t*>(b + kk * kIntNr),
         seg.group_steps(g), acc);
    } else {
      k4(reinterpret_cast<const int8_t*>(s.a + kk * kIntMr), b + kk * kIntNr / 2, seg.group_steps(g), acc);
    }
    const size_t meta = static_cast<size_t>((s.panel * seg.ngroups + g) * kIntNr);
    e.row_sum = s.row_sums + g * kIntMr;
    e.wzero = seg.wzero.data() + meta;
    e.wsum = seg.wsum.data() + meta;
    e.wscale = seg.wscale.data() + meta;
    e.dbg = s.dbg ? s.dbg + g : nullptr;
    e.first = s.first && g == 0;
    epilogue(e);
  }
}

struct IntKernels {
  // For each group g of the segment: acc[4][16] = sum over the group of a * b (8-bit: int16 pairs,
  // 4-bit: bytes times nibbles); corrected = acc - wzero * row_sum - row_zc * wsum (int32,
  // wrapping); then ftile = fma(float(corrected), row_scale * wscale, first group ? 0 : ftile), or
  // corrected to dbg.
  void (*segment)(const SegmentArgs& s);
  // y[i * ldy + j] = ftile[i][j] (+ bias[j]) for i < rows, j < cols.
  void (*store)(const float* ftile, const float* bias, float* y, int64_t ldy, int rows, int cols);
  // lo/hi of x[0..n) ignoring NaN (lo > hi when there is no number).
  void (*minmax)(const float* x, int64_t n, float* lo, float* hi);
  // out[k] = clamp(nearbyint(x[k] / scale), lo, hi) + offset (NaN -> offset), as int16 or int8, and
  // sums[g] = sum of out over group g (groups of `group` elements).
  void (*quant16)(const float* x, int64_t n, float scale, float lo, float hi, int16_t* out, int64_t group,
                  int32_t* sums);
  void (*quant8)(const float* x, int64_t n, float scale, float lo, float hi, int32_t offset, int8_t* out,
                 int64_t group, int32_t* sums);
};

extern const IntKernels kIntKernelsScalar;
extern const IntKernels kIntKernelsAvx2;

}  // namespace qarvd::gemm
