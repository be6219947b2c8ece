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

// Everything the epilogue of one (segment, group) needs for one tile.
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

struct IntKernels {
  // acc[4][16] = sum over `pairs` k pairs (8-bit) / `steps` 8-k steps (4-bit) of a * b.
  void (*k8)(const int16_t* a, const int8_t* b, int64_t pairs, int32_t* acc);
  void (*k4)(const int8_t* a, const uint8_t* b, int64_t steps, int32_t* acc);
  // corrected = acc - wzero * row_sum - row_zc * wsum (int32, wrapping), then
  // ftile = fma(float(corrected), row_scale * wscale, first ? 0 : ftile), or corrected to dbg.
  void (*epilogue)(const EpilogueArgs& e);
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
