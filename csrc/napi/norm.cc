// layerNorm / rmsNorm / gatedResidual bindings: (x, ..., out, sizes..., async). Shapes were validated
// in lib/model/ops/norm.ts; the lengths are re-checked here because a wrong one would write out of
// bounds.
#include <stdexcept>
#include <string>

#include "../kernels/norm.h"
#include "util.h"

namespace {

using qarvd::napi::typed_array;

// A float32 array of exactly `length` elements, or null/undefined for "absent".
const float* optional_floats(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t length) {
  if (info[index].IsNull() || info[index].IsUndefined()) return nullptr;
  auto view = typed_array<float>(info, index, name);
  if (static_cast<int64_t>(view.length) != length) throw std::out_of_range(std::string("native: ") + name + " has the wrong length");
  return view.data;
}

float* floats(const Napi::CallbackInfo& info, size_t index, const char* name, int64_t length,
             qarvd::napi::Access access = qarvd::napi::Access::kIn) {
  auto view = typed_array<float>(info, index, name, access);
  if (static_cast<int64_t>(view.length) != length) throw std::out_of_range(std::string("native: ") + name + " has the wrong length");
  return view.data;
}

// layerNorm(x, out, rows, dim, eps, weight|null, bias|null, shift|null, scale|null, groups, async)
Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  const qarvd::NormShape s{qarvd::napi::integer(info, 2, "rows"), qarvd::napi::integer(info, 3, "dim")};
  const float eps = static_cast<float>(qarvd::napi::number(info, 4, "eps"));
  const int64_t groups = qarvd::napi::integer(info, 9, "groups");
  const bool async = qarvd::napi::boolean(info, 10, "async");
  if (s.rows < 0 || s.dim < 1 || groups < 1 || s.rows % groups != 0) throw Napi::RangeError::New(info.Env(), "native: bad layerNorm sizes");
  const float* x = floats(info, 0, "x", s.rows * s.dim);
  float* out = floats(info, 1, "out", s.rows * s.dim, qarvd::napi::Access::kOut);
  const float* weight = optional_floats(info, 5, "weight", s.dim);
  const float* bias = optional_floats(info, 6, "bias", s.dim);
  const float* shift = optional_floats(info, 7, "shift", groups * s.dim);
  const float* scale = optional_floats(info, 8, "scale", groups * s.dim);
  return qarvd::napi::dispatch(info, async, [=] { qarvd::layer_norm(x, out, s, eps, weight, bias, shift, scale, groups); });
}

// rmsNorm(x, out, rows, dim, eps, weight|null, async)
Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  const qarvd::NormShape s{qarvd::napi::integer(info, 2, "rows"), qarvd::napi::integer(info, 3, "dim")};
  const float eps = static_cast<float>(qarvd::napi::number(info, 4, "eps"));
  const bool async = qarvd::napi::boolean(info, 6, "async");
  if (s.rows < 0 || s.dim < 1) throw Napi::RangeError::New(info.Env(), "native: bad rmsNorm sizes");
  const float* x = floats(info, 0, "x", s.rows * s.dim);
  float* out = floats(info, 1, "out", s.rows * s.dim, qarvd::napi::Access::kOut);
  const float* weight = optional_floats(info, 5, "weight", s.dim);
  return qarvd::napi::dispatch(info, async, [=] { qarvd::rms_norm(x, out, s, eps, weight); });
}

// gatedResidual(x, y, gate, out, rows, dim, groups, async)
Napi::Value GatedResidual(const Napi::CallbackInfo& info) {
  const qarvd::NormShape s{qarvd::napi::integer(info, 4, "rows"), qarvd::napi::integer(info, 5, "dim")};
  const int64_t groups = qarvd::napi::integer(info, 6, "groups");
  const bool async = qarvd::napi::boolean(info, 7, "async");
  if (s.rows < 0 || s.dim < 1 || groups < 1 || s.rows % groups != 0) throw Napi::RangeError::New(info.Env(), "native: bad gatedResidual sizes");
  const float* x = floats(info, 0, "x", s.rows * s.dim);
  const float* y = floats(info, 1, "y", s.rows * s.dim);
  const float* gate = floats(info, 2, "gate", groups * s.dim);
  float* out = floats(info, 3, "out", s.rows * s.dim, qarvd::napi::Access::kOut);
  return qarvd::napi::dispatch(info, async, [=] { qarvd::gated_residual(x, y, gate, out, s, groups); });
}

void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("layerNorm", Napi::Function::New(env, qarvd::napi::binding<LayerNorm, 10>, "layerNorm"));
  exports.Set("rmsNorm", Napi::Function::New(env, qarvd::napi::binding<RmsNorm, 6>, "rmsNorm"));
  exports.Set("gatedResidual", Napi::Function::New(env, qarvd::napi::binding<GatedResidual, 7>, "gatedResidual"));
}

}  // namespace

QARVD_EXPORTS(Export);
