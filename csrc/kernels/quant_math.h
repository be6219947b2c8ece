// The scalar semantics of quantization, shared by every CPU kernel (and mirrored exactly by
// lib/primitives/qparams.ts): SIMD paths must produce the same integers as these functions.
//
//   q  = clamp(roundHalfToEven(x / scale) + zeroPoint, qmin, qmax)      (NaN x -> zeroPoint)
//   x' = (q - zeroPoint) * scale
//
// Division (not multiplication by 1/scale) as in ONNX QuantizeLinear; the default rounding mode of
// the FPU (round to nearest, ties to even) does the rounding.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace qarvd {

enum class QType : int { kInt8 = 4, kUint8 = 5, kInt4 = 6, kUint4 = 7 };  // dtype codes (lib/tensor/dtype.ts)

struct QRange {
  int qmin, qmax;
};

inline QRange qrange(QType t) {
  switch (t) {
    case QType::kInt8: return {-128, 127};
    case QType::kUint8: return {0, 255};
    case QType::kInt4: return {-8, 7};
    case QType::kUint4: return {0, 15};
  }
  return {0, 0};
}

inline bool is_signed(QType t) { return t == QType::kInt8 || t == QType::kInt4; }
inline int bits_of(QType t) { return (t == QType::kInt8 || t == QType::kUint8) ? 8 : 4; }

// Smallest scale chooseQParams returns (float32 epsilon, as PyTorch/torchao), so an all-zero range
// still gives a usable scale.
constexpr float kMinScale = 1.1920928955078125e-7f;

struct QParams {
  float scale;
  int32_t zero_point;
};

// Scale and zero point for the range [lo, hi] (float32 arithmetic, step by step as the TS mirror).
// Asymmetric: the range is widened to contain 0, scale = (hi - lo) / (qmax - qmin),
//   zeroPoint = clamp(qmin - roundHalfToEven(lo / scale), qmin, qmax).
// Symmetric: amax = max(|lo|, |hi|), scale = amax / (2^(b-1) - 1), zeroPoint = 0 for signed types and
//   2^(b-1) for unsigned ones.
inline QParams choose_qparams(float lo, float hi, QType t, bool symmetric) {
  QRange r = qrange(t);
  if (symmetric) {
    float amax = std::max(std::fabs(lo), std::fabs(hi));
    float half = static_cast<float>((1 << (bits_of(t) - 1)) - 1);
    float scale = std::max(amax / half, kMinScale);
    return {scale, is_signed(t) ? 0 : (1 << (bits_of(t) - 1))};
  }
  lo = std::min(lo, 0.0f);
  hi = std::max(hi, 0.0f);
  float scale = std::max((hi - lo) / static_cast<float>(r.qmax - r.qmin), kMinScale);
  float zp = static_cast<float>(r.qmin) - std::nearbyint(lo / scale);
  zp = std::min(std::max(zp, static_cast<float>(r.qmin)), static_cast<float>(r.qmax));
  return {scale, static_cast<int32_t>(zp)};
}

inline int32_t quantize_value(float x, float scale, int32_t zero_point, QRange r) {
  float v = x / scale;
  if (std::isnan(v)) return zero_point;
  // Clamp in float before converting so that huge values cannot overflow int32.
  v = std::nearbyint(v);
  v = std::min(std::max(v, static_cast<float>(r.qmin - zero_point)), static_cast<float>(r.qmax - zero_point));
  return static_cast<int32_t>(v) + zero_point;
}

inline float dequantize_value(int32_t q, float scale, int32_t zero_point) {
  return static_cast<float>(q - zero_point) * scale;
}

}  // namespace qarvd
