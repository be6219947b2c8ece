// activation / expVector bindings: (kind, x, out, async). Lengths are re-checked here.
#include "../kernels/activation.h"
#include "util.h"

namespace {

// activation(kind: 'gelu_tanh' | 'silu', x, out, async)
Napi::Value Activation(const Napi::CallbackInfo& info) {
  const std::string kind = qarvd::napi::string(info, 0, "kind");
  auto x = qarvd::napi::typed_array<float>(info, 1, "x");
  auto out = qarvd::napi::typed_array<float>(info, 2, "out", qarvd::napi::Access::kOut);
  const bool async = qarvd::napi::boolean(info, 3, "async");
  qarvd::Activation k;
  if (kind == "gelu_tanh") {
    k = qarvd::Activation::kGeluTanh;
  } else if (kind == "silu") {
    k = qarvd::Activation::kSilu;
  } else {
    throw Napi::RangeError::New(info.Env(), "native: unknown activation " + kind);
  }
  if (x.length != out.length) throw Napi::RangeError::New(info.Env(), "native: x and out differ in length");
  const float* xp = x.data;
  float* op = out.data;
  const int64_t n = static_cast<int64_t>(x.length);
  return qarvd::napi::dispatch(info, async, [=] { qarvd::activation(k, xp, op, n); });
}

// expVector(x, out): the kernels' vectorised exp, exposed for its accuracy test.
Napi::Value ExpVector(const Napi::CallbackInfo& info) {
  auto x = qarvd::napi::typed_array<float>(info, 0, "x");
  auto out = qarvd::napi::typed_array<float>(info, 1, "out");
  if (x.length != out.length) throw Napi::RangeError::New(info.Env(), "native: x and out differ in length");
  qarvd::exp_vector(x.data, out.data, static_cast<int64_t>(x.length));
  return info.Env().Undefined();
}

void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("activation", Napi::Function::New(env, qarvd::napi::binding<Activation, 3>, "activation"));
  exports.Set("expVector", Napi::Function::New(env, qarvd::napi::guarded<ExpVector>, "expVector"));
}

}  // namespace

QARVD_EXPORTS(Export);
