// attention binding: (q, k, v, out, qLen, kvLen, heads, headDim, chunk, queryOffset, scale, async).
// q and out are densely packed [qLen, heads, headDim]; k and v hold at least kvLen such tokens (a
// KV cache passes its whole preallocated buffer).
#include "../kernels/attention.h"
#include "util.h"

namespace {

Napi::Value Attention(const Napi::CallbackInfo& info) {
  using qarvd::napi::integer;
  qarvd::AttentionParams p;
  p.q_len = integer(info, 4, "qLen");
  p.kv_len = integer(info, 5, "kvLen");
  p.heads = integer(info, 6, "heads");
  p.head_dim = integer(info, 7, "headDim");
  p.chunk = integer(info, 8, "chunk");
  p.query_offset = integer(info, 9, "queryOffset");
  p.scale = static_cast<float>(qarvd::napi::number(info, 10, "scale"));
  const bool async = qarvd::napi::boolean(info, 11, "async");
  if (p.q_len < 0 || p.kv_len < 1 || p.heads < 1 || p.head_dim < 1 || p.chunk < 0 || p.query_offset < 0) {
    throw Napi::RangeError::New(info.Env(), "native: bad attention sizes");
  }
  p.q_stride = p.k_stride = p.v_stride = p.out_stride = p.heads * p.head_dim;
  auto q = qarvd::napi::typed_array<float>(info, 0, "q");
  auto k = qarvd::napi::typed_array<float>(info, 1, "k");
  auto v = qarvd::napi::typed_array<float>(info, 2, "v");
  auto out = qarvd::napi::typed_array<float>(info, 3, "out");
  const int64_t qn = p.q_len * p.q_stride, kn = p.kv_len * p.k_stride;
  if (static_cast<int64_t>(q.length) != qn || static_cast<int64_t>(out.length) != qn ||
      static_cast<int64_t>(k.length) < kn || static_cast<int64_t>(v.length) < kn) {
    throw Napi::RangeError::New(info.Env(), "native: q, k, v or out has the wrong length");
  }
  const float *qp = q.data, *kp = k.data, *vp = v.data;
  float* op = out.data;
  return qarvd::napi::dispatch(info, async, [=] { qarvd::attention(qp, kp, vp, op, p); });
}

void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("attention", Napi::Function::New(env, Attention, "attention"));
}

}  // namespace

QARVD_EXPORTS(Export);
