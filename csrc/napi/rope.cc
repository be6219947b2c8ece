// rope3d binding: (x, out, tokens, heads, headDim, frames, height, width, startFrame, theta, async).
#include "../kernels/rope.h"
#include "util.h"

namespace {

Napi::Value Rope3d(const Napi::CallbackInfo& info) {
  using qarvd::napi::integer;
  qarvd::RopeShape s;
  s.tokens = integer(info, 2, "tokens");
  s.heads = integer(info, 3, "heads");
  s.head_dim = integer(info, 4, "headDim");
  s.frames = integer(info, 5, "frames");
  s.height = integer(info, 6, "height");
  s.width = integer(info, 7, "width");
  s.start_frame = integer(info, 8, "startFrame");
  s.theta = qarvd::napi::number(info, 9, "theta");
  const bool async = qarvd::napi::boolean(info, 10, "async");
  auto x = qarvd::napi::typed_array<float>(info, 0, "x");
  auto out = qarvd::napi::typed_array<float>(info, 1, "out", qarvd::napi::Access::kOut);
  if (s.tokens < 0 || s.heads < 1 || s.head_dim < 6 || s.head_dim % 2 || s.frames < 0 || s.height < 0 || s.width < 0 ||
      s.start_frame < 0 || s.tokens != s.frames * s.height * s.width || !(s.theta > 0)) {
    throw Napi::RangeError::New(info.Env(), "native: bad rope3d sizes");
  }
  const int64_t n = s.tokens * s.heads * s.head_dim;
  if (static_cast<int64_t>(x.length) != n || static_cast<int64_t>(out.length) != n) {
    throw Napi::RangeError::New(info.Env(), "native: x or out has the wrong length");
  }
  const float* xp = x.data;
  float* op = out.data;
  return qarvd::napi::dispatch(info, async, [=] { qarvd::rope_3d(xp, op, s); });
}

void Export(Napi::Env env, Napi::Object exports) { exports.Set("rope3d", Napi::Function::New(env, qarvd::napi::binding<Rope3d, 10>, "rope3d")); }

}  // namespace

QARVD_EXPORTS(Export);
