// Bindings of the quantize family (csrc/kernels/quantize.h). Arguments arrive validated by
// lib/primitives/quantize.ts; here only what would corrupt memory is re-checked (codes, dimensions,
// buffer lengths against the layout). Every function takes a trailing `async` flag: true returns a
// Promise and runs on the libuv pool.
#include <stdexcept>
#include <string>

#include "../kernels/quantize.h"
#include "quantize_args.h"
#include "util.h"

namespace {

using qarvd::BlockLayout;
using qarvd::FloatType;
using qarvd::QType;
namespace nb = qarvd::napi;

using qarvd::napi::quantize_args::float_type;
using qarvd::napi::quantize_args::layout;
using qarvd::napi::quantize_args::mul;
using qarvd::napi::quantize_args::quant_type;
using qarvd::napi::quantize_args::require;

// The float input as raw bytes, checked to hold exactly `count` elements of type xt.
const void* float_input(const Napi::CallbackInfo& info, size_t i, FloatType xt, int64_t count) {
  if (xt == FloatType::kF32) {
    auto v = nb::typed_array<float>(info, i, "x");
    require(static_cast<int64_t>(v.length) == count, "x has the wrong length");
    return v.data;
  }
  auto v = nb::typed_array<uint16_t>(info, i, "x");
  require(static_cast<int64_t>(v.length) == count, "x has the wrong length");
  return v.data;
}

void* packed(const Napi::CallbackInfo& info, size_t i, const char* name, QType qt, int64_t count,
             nb::Access access = nb::Access::kIn) {
  auto v = nb::bytes(info, i, name, access);
  require(static_cast<int64_t>(v.length) == qarvd::packed_bytes(qt, count), std::string(name) + " has the wrong length");
  return v.data;
}

template <typename T>
T* exactly(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t count, nb::Access access = nb::Access::kIn) {
  auto v = nb::typed_array<T>(info, i, name, access);
  require(static_cast<int64_t>(v.length) == count, std::string(name) + " has the wrong length");
  return v.data;
}

// quantize(x, xType, outer, axisLen, inner, mode, groupSize, scale, zeroPoint, qType, out, async)
Napi::Value Quantize(const Napi::CallbackInfo& info) {
  FloatType xt = float_type(info, 1);
  BlockLayout l = layout(info, 2);
  const void* x = float_input(info, 0, xt, l.size());
  const float* scale = exactly<float>(info, 7, "scale", l.num_scales());
  const int32_t* zp = exactly<int32_t>(info, 8, "zeroPoint", l.num_scales());
  QType qt = quant_type(info, 9);
  void* out = packed(info, 10, "out", qt, l.size(), nb::Access::kOut);
  return nb::dispatch(info, nb::boolean(info, 11, "async"), [=] { qarvd::quantize(x, xt, l, scale, zp, qt, out); });
}

// dequantize(q, qType, outer, axisLen, inner, mode, groupSize, scale, zeroPoint, out, async)
Napi::Value Dequantize(const Napi::CallbackInfo& info) {
  QType qt = quant_type(info, 1);
  BlockLayout l = layout(info, 2);
  const void* q = packed(info, 0, "q", qt, l.size());
  const float* scale = exactly<float>(info, 7, "scale", l.num_scales());
  const int32_t* zp = exactly<int32_t>(info, 8, "zeroPoint", l.num_scales());
  float* out = exactly<float>(info, 9, "out", l.size(), nb::Access::kOut);
  return nb::dispatch(info, nb::boolean(info, 10, "async"), [=] { qarvd::dequantize(q, qt, l, scale, zp, out); });
}

// chooseQParams(x, xType, outer, axisLen, inner, mode, groupSize, qType, symmetric, scale, zeroPoint, async)
Napi::Value ChooseQParams(const Napi::CallbackInfo& info) {
  FloatType xt = float_type(info, 1);
  BlockLayout l = layout(info, 2);
  const void* x = float_input(info, 0, xt, l.size());
  QType qt = quant_type(info, 7);
  bool symmetric = nb::boolean(info, 8, "symmetric");
  float* scale = exactly<float>(info, 9, "scale", l.num_scales(), nb::Access::kOut);
  int32_t* zp = exactly<int32_t>(info, 10, "zeroPoint", l.num_scales(), nb::Access::kOut);
  return nb::dispatch(info, nb::boolean(info, 11, "async"),
                      [=] { qarvd::choose_qparams_blocks(x, xt, l, qt, symmetric, scale, zp); });
}

// blockRange(x, xType, outer, axisLen, inner, mode, groupSize, lo, hi, async)
Napi::Value BlockRange(const Napi::CallbackInfo& info) {
  FloatType xt = float_type(info, 1);
  BlockLayout l = layout(info, 2);
  const void* x = float_input(info, 0, xt, l.size());
  float* lo = exactly<float>(info, 7, "lo", l.num_scales(), nb::Access::kOut);
  float* hi = exactly<float>(info, 8, "hi", l.num_scales(), nb::Access::kOut);
  return nb::dispatch(info, nb::boolean(info, 9, "async"), [=] { qarvd::block_range(x, xt, l, lo, hi); });
}

// quantizePerToken(x, xType, rows, cols, qType, symmetric, out, scale, zeroPoint, async)
Napi::Value QuantizePerToken(const Napi::CallbackInfo& info) {
  FloatType xt = float_type(info, 1);
  int64_t rows = nb::integer(info, 2, "rows"), cols = nb::integer(info, 3, "cols");
  require(rows >= 0 && cols >= 0, "negative dimension");
  int64_t n = mul(rows, cols);
  const void* x = float_input(info, 0, xt, n);
  QType qt = quant_type(info, 4);
  bool symmetric = nb::boolean(info, 5, "symmetric");
  void* out = packed(info, 6, "out", qt, n, nb::Access::kOut);
  float* scale = exactly<float>(info, 7, "scale", rows, nb::Access::kOut);
  int32_t* zp = exactly<int32_t>(info, 8, "zeroPoint", rows, nb::Access::kOut);
  return nb::dispatch(info, nb::boolean(info, 9, "async"), [=] {
    qarvd::quantize_per_token(x, xt, rows, cols, qt, symmetric, out, scale, zp);
  });
}

void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("quantize", Napi::Function::New(env, nb::binding<Quantize, 11>, "quantize"));
  exports.Set("dequantize", Napi::Function::New(env, nb::binding<Dequantize, 10>, "dequantize"));
  exports.Set("chooseQParams", Napi::Function::New(env, nb::binding<ChooseQParams, 11>, "chooseQParams"));
  exports.Set("blockRange", Napi::Function::New(env, nb::binding<BlockRange, 9>, "blockRange"));
  exports.Set("quantizePerToken", Napi::Function::New(env, nb::binding<QuantizePerToken, 9>, "quantizePerToken"));
}

}  // namespace

QARVD_EXPORTS(Export);
