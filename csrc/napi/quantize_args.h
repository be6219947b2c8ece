// Arguments of the quantize family shared by the CPU and CUDA bindings: dtype codes and the block
// layout of a granularity. They arrive validated by TypeScript; they are re-checked here because a
// wrong value would corrupt memory.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>

#include "../kernels/quantize.h"
#include "util.h"

namespace qarvd::napi::quantize_args {

inline void require(bool ok, const std::string& what) {
  if (!ok) throw std::out_of_range("native: " + what);
}

inline int64_t mul(int64_t a, int64_t b) {
  int64_t r;
  require(!__builtin_mul_overflow(a, b, &r), "tensor size overflows");
  return r;
}

inline FloatType float_type(const Napi::CallbackInfo& info, size_t i) {
  int64_t code = integer(info, i, "xType");
  require(code >= 0 && code <= 2, "xType must be a float dtype code");
  return static_cast<FloatType>(code);
}

inline QType quant_type(const Napi::CallbackInfo& info, size_t i) {
  int64_t code = integer(info, i, "qType");
  require(code >= 4 && code <= 7, "qType must be a quantized dtype code");
  return static_cast<QType>(code);
}

// Five arguments from index i: outer, axisLen, inner, mode, groupSize.
inline BlockLayout layout(const Napi::CallbackInfo& info, size_t i) {
  BlockLayout l;
  l.outer = integer(info, i, "outer");
  l.axis_len = integer(info, i + 1, "axisLen");
  l.inner = integer(info, i + 2, "inner");
  int64_t mode = integer(info, i + 3, "mode");
  require(mode >= 0 && mode <= 2, "unknown granularity mode");
  l.mode = static_cast<Granularity>(mode);
  l.group = integer(info, i + 4, "groupSize");
  l.validate();
  mul(mul(l.outer, l.axis_len), l.inner);
  return l;
}

}  // namespace qarvd::napi::quantize_args
