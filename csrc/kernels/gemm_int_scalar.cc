// The portable path of the integer GEMM: plain loops over the packed layouts of gemm_int_kernels.h.
// It is the reference the SIMD paths must match integer for integer and float for float.
#include <cmath>

#include "gemm_int_kernels.h"

namespace qarvd::gemm {
namespace {

void k8_scalar(const int16_t* a, const int8_t* b, int64_t pairs, int32_t* acc) {
  int32_t sum[kSmallMr][kIntNr] = {};
  for (int64_t t = 0; t < pairs; ++t) {
    const int16_t* at = a + t * kSmallMr * 2;
    const int8_t* bt = b + t * kIntNr * 2;
    for (int i = 0; i < kSmallMr; ++i)
      for (int j = 0; j < kIntNr; ++j) sum[i][j] += at[2 * i] * bt[2 * j] + at[2 * i + 1] * bt[2 * j + 1];
  }
  for (int i = 0; i < kSmallMr; ++i)
    for (int j = 0; j < kIntNr; ++j) acc[i * kIntNr + j] = sum[i][j];
}

void k4_scalar(const int8_t* a, const uint8_t* b, int64_t steps, int32_t* acc) {
  int32_t sum[kSmallMr][kIntNr] = {};
  for (int64_t t = 0; t < steps; ++t) {
    for (int q = 0; q < 2; ++q) {
      const int8_t* aq = a + (2 * t + q) * kSmallMr * 4;
      const uint8_t* bq = b + t * 64 + q * 32;
      for (int i = 0; i < kSmallMr; ++i)
        for (int c = 0; c < 8; ++c)
          for (int j = 0; j < 4; ++j) {
            const int32_t x = aq[4 * i + j];
            sum[i][c] += x * (bq[4 * c + j] & 15);
            sum[i][8 + c] += x * (bq[4 * c + j] >> 4);
          }
    }
  }
  for (int i = 0; i < kSmallMr; ++i)
    for (int j = 0; j < kIntNr; ++j) acc[i * kIntNr + j] = sum[i][j];
}

void epilogue_scalar(const EpilogueArgs& e) {
  for (int i = 0; i < kSmallMr; ++i) {
    for (int j = 0; j < kIntNr; ++j) {
      // Wrapping arithmetic as the SIMD path: only the final value is guaranteed to fit.
      uint32_t c = static_cast<uint32_t>(e.acc[i * kIntNr + j]) -
                   static_cast<uint32_t>(e.wzero[j]) * static_cast<uint32_t>(e.row_sum[i]);
      if (e.row_zc) c -= static_cast<uint32_t>(e.row_zc[i]) * static_cast<uint32_t>(e.wsum[j]);
      const int32_t corrected = static_cast<int32_t>(c);
      if (e.dbg) {
        if (i < e.rows && j < e.cols) e.dbg[i * e.dbg_row + j * e.dbg_col] = corrected;
      } else {
        float& f = e.ftile[i * kIntNr + j];
        f = std::fma(static_cast<float>(corrected), e.row_scale[i] * e.wscale[j], e.first ? 0.0f : f);
      }
    }
  }
}

void segment_scalar(const SegmentArgs& s) {
  run_segment(
      s,
      [](const uint8_t* a, const int8_t* b, int64_t kpad, int32_t* acc) {
        k8_scalar(reinterpret_cast<const int16_t*>(a), b, kpad / 2, acc);
      },
      [](const int8_t* a, const uint8_t* b, int64_t kpad, int32_t* acc) { k4_scalar(a, b, kpad / 8, acc); },
      epilogue_scalar, false);
}

void store_scalar(const float* ftile, int64_t ldf, const float* bias, float* y, int64_t ldy, int rows, int cols) {
  for (int i = 0; i < rows; ++i)
    for (int j = 0; j < cols; ++j) y[i * ldy + j] = bias ? ftile[i * ldf + j] + bias[j] : ftile[i * ldf + j];
}

void minmax_scalar(const float* x, int64_t n, float* lo, float* hi) {
  float l = INFINITY, h = -INFINITY;
  for (int64_t k = 0; k < n; ++k) {
    // NaN and infinities stay out of the range (they quantize to the zero point and saturate).
    if (!std::isfinite(x[k])) continue;
    if (x[k] < l) l = x[k];
    if (x[k] > h) h = x[k];
  }
  *lo = l;
  *hi = h;
}

inline float quant_rel(float x, float scale, float lo, float hi) {
  float v = std::nearbyint(x / scale);
  if (std::isnan(v)) return 0.0f;
  return std::fmin(std::fmax(v, lo), hi);
}

void quant16_scalar(const float* x, int64_t n, float scale, float lo, float hi, int16_t* out, int64_t group,
                    int32_t* sums) {
  for (int64_t g0 = 0, g = 0; g0 < n; g0 += group, ++g) {
    int32_t s = 0;
    for (int64_t k = g0; k < std::min(n, g0 + group); ++k) {
      out[k] = static_cast<int16_t>(quant_rel(x[k], scale, lo, hi));
      s += out[k];
    }
    sums[g] = s;
  }
}

void quant8_scalar(const float* x, int64_t n, float scale, float lo, float hi, int32_t offset, int8_t* out,
                   int64_t group, int32_t* sums) {
  for (int64_t g0 = 0, g = 0; g0 < n; g0 += group, ++g) {
    int32_t s = 0;
    for (int64_t k = g0; k < std::min(n, g0 + group); ++k) {
      out[k] = static_cast<int8_t>(static_cast<int32_t>(quant_rel(x[k], scale, lo, hi)) + offset);
      s += out[k];
    }
    sums[g] = s;
  }
}

void gather_scalar(const float* x, const int32_t* perm, int64_t n, float* out) {
  for (int64_t j = 0; j < n; ++j) out[j] = x[perm[j]];
}

}  // namespace

const RowKernels kRowKernelsScalar = {minmax_scalar, quant16_scalar, quant8_scalar, store_scalar, gather_scalar};
const IntPath kIntScalar = {WeightLayout::kPairs, kSmallMr, 1, false, false, 64, &kRowKernelsScalar, segment_scalar};

}  // namespace qarvd::gemm
