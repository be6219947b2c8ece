// Run kernels: the inner loops of quantize.cc over one contiguous run of elements, with either one
// scale for the run (Const) or one scale per element (Vec). The scalar versions here define the
// results; quantize_avx2.cc has the vector versions, which must agree exactly (they use the scalar
// ones for their tails). Internal to the quantize family.
#pragma once
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "quant_math.h"
#include "quantize.h"

namespace qarvd::qrun {

// Quantizes x[0..n) into the packed output at element position pos. Const runs read scale[0] and
// zero_point[0]; Vec runs read scale[i] and zero_point[i].
using QuantFn = void (*)(const void* x, int64_t n, const float* scale, const int32_t* zero_point, void* out,
                         int64_t pos);
// Dequantizes the n values at element position pos of the packed input into out[0..n).
using DequantFn = void (*)(const void* q, int64_t pos, int64_t n, const float* scale, const int32_t* zero_point,
                           float* out);
// Folds x[0..n) into *lo / *hi (Const) or into lo[i] / hi[i] (Vec). Returns false on NaN or infinity.
using RangeFn = bool (*)(const void* x, int64_t n, float* lo, float* hi);
// Folds max |x| of x[0..n) into *amax. Returns false on NaN or infinity.
using AbsMaxFn = bool (*)(const void* x, int64_t n, float* amax);

struct Kernels {
  QuantFn quant_const, quant_vec;
  // quant_const for runs whose quotients x / scale are known finite and to round into
  // [qmin - zeroPoint, qmax - zeroPoint] (symmetric dynamic rows), so the clamp can never bind.
  QuantFn quant_in_range;
  DequantFn dequant_const, dequant_vec;
  RangeFn range_const, range_vec;
  AbsMaxFn absmax;
};

// Kernels for the input type xt and quantized type qt on the scalar or the AVX2 path.
Kernels scalar_kernels(FloatType xt, QType qt);
Kernels avx2_kernels(FloatType xt, QType qt);

inline float half_to_float(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  } else {
    // Zero or subnormal: man * 2^-24 is exact in float32.
    float f = static_cast<float>(man) * 5.9604644775390625e-8f;
    return sign ? -f : f;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

inline float bf16_to_float(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

template <FloatType XT>
inline float load_x(const void* x, int64_t i) {
  if constexpr (XT == FloatType::kF32) {
    return static_cast<const float*>(x)[i];
  } else if constexpr (XT == FloatType::kF16) {
    return half_to_float(static_cast<const uint16_t*>(x)[i]);
  } else {
    return bf16_to_float(static_cast<const uint16_t*>(x)[i]);
  }
}

// Writes q at element position pos. A low nibble is written with a zero high nibble, which the next
// element (always written later, by the same thread) fills in: so padding nibbles end up zero.
template <QType QT>
inline void store_q(void* out, int64_t pos, int32_t q) {
  auto* b = static_cast<uint8_t*>(out);
  if constexpr (QT == QType::kInt8 || QT == QType::kUint8) {
    b[pos] = static_cast<uint8_t>(q);
  } else if (pos & 1) {
    b[pos >> 1] = static_cast<uint8_t>((b[pos >> 1] & 0x0f) | (q << 4));
  } else {
    b[pos >> 1] = static_cast<uint8_t>(q & 0x0f);
  }
}

template <QType QT>
inline int32_t load_q(const void* q, int64_t pos) {
  const auto* b = static_cast<const uint8_t*>(q);
  if constexpr (QT == QType::kInt8) return static_cast<int8_t>(b[pos]);
  if constexpr (QT == QType::kUint8) return b[pos];
  int32_t v = (b[pos >> 1] >> ((pos & 1) * 4)) & 0x0f;
  if constexpr (QT == QType::kInt4) v = (v ^ 8) - 8;
  return v;
}

template <FloatType XT, QType QT, bool VEC>
void quant_scalar(const void* x, int64_t n, const float* scale, const int32_t* zero_point, void* out,
                  int64_t pos) {
  const QRange r = qrange(QT);
  for (int64_t i = 0; i < n; ++i) {
    int64_t k = VEC ? i : 0;
    store_q<QT>(out, pos + i, quantize_value(load_x<XT>(x, i), scale[k], zero_point[k], r));
  }
}

template <QType QT, bool VEC>
void dequant_scalar(const void* q, int64_t pos, int64_t n, const float* scale, const int32_t* zero_point,
                    float* out) {
  for (int64_t i = 0; i < n; ++i) {
    int64_t k = VEC ? i : 0;
    out[i] = dequantize_value(load_q<QT>(q, pos + i), scale[k], zero_point[k]);
  }
}

inline bool finite(float v) { return v - v == 0.0f; }

template <FloatType XT>
bool range_const_scalar(const void* x, int64_t n, float* lo, float* hi) {
  float l = *lo, h = *hi;
  bool ok = true;
  for (int64_t i = 0; i < n; ++i) {
    float v = load_x<XT>(x, i);
    ok &= finite(v);
    l = v < l ? v : l;
    h = v > h ? v : h;
  }
  *lo = l;
  *hi = h;
  return ok;
}

template <FloatType XT>
bool range_vec_scalar(const void* x, int64_t n, float* lo, float* hi) {
  bool ok = true;
  for (int64_t i = 0; i < n; ++i) {
    float v = load_x<XT>(x, i);
    ok &= finite(v);
    lo[i] = v < lo[i] ? v : lo[i];
    hi[i] = v > hi[i] ? v : hi[i];
  }
  return ok;
}

template <FloatType XT>
bool absmax_scalar(const void* x, int64_t n, float* amax) {
  float m = *amax;
  bool ok = true;
  for (int64_t i = 0; i < n; ++i) {
    float v = std::fabs(load_x<XT>(x, i));
    ok &= finite(v);
    m = v > m ? v : m;
  }
  *amax = m;
  return ok;
}

// Calls make(xt_tag, qt_tag) with std::integral_constant tags for the run-time types, so that each
// path can build its table of template instances in one expression.
template <class Make>
Kernels for_types(FloatType xt, QType qt, Make make) {
  auto with_q = [&](auto xtag) {
    switch (qt) {
      case QType::kInt8: return make(xtag, std::integral_constant<QType, QType::kInt8>{});
      case QType::kUint8: return make(xtag, std::integral_constant<QType, QType::kUint8>{});
      case QType::kInt4: return make(xtag, std::integral_constant<QType, QType::kInt4>{});
      case QType::kUint4: return make(xtag, std::integral_constant<QType, QType::kUint4>{});
    }
    return make(xtag, std::integral_constant<QType, QType::kInt8>{});
  };
  switch (xt) {
    case FloatType::kF16: return with_q(std::integral_constant<FloatType, FloatType::kF16>{});
    case FloatType::kBF16: return with_q(std::integral_constant<FloatType, FloatType::kBF16>{});
    default: return with_q(std::integral_constant<FloatType, FloatType::kF32>{});
  }
}

}  // namespace qarvd::qrun
