// attention binding: (q, k, kDtype, kScale, v, vDtype, vScale, out, qLen, kvLen, heads, headDim, chunk,
// queryOffset, scale, precision, async). q and out are densely packed float32 [qLen, heads, headDim];
// k and v hold at least kvLen such tokens (a KV cache passes its whole preallocated buffer) as
// Float32Array (dtype 0), Uint16Array of bfloat16 bits (1) or Int8Array with a Float32Array of scales
// per token and head (2); scales are null otherwise. precision: 0 float32, 1 bfloat16, 2 int8.
#include <mutex>

#include "../kernels/attention.h"
#include "kv_args.h"
#include "util.h"

namespace {

// One workspace for all calls (they run one at a time on the kernel threads anyway), so that a
// generation allocates its converted keys and values once rather than per call.
std::mutex workspace_mutex;
qarvd::AttentionWorkspace workspace;

Napi::Value Attention(const Napi::CallbackInfo& info) {
  using qarvd::napi::integer;
  qarvd::AttentionParams p;
  p.q_len = integer(info, 8, "qLen");
  p.kv_len = integer(info, 9, "kvLen");
  p.heads = integer(info, 10, "heads");
  p.head_dim = integer(info, 11, "headDim");
  p.chunk = integer(info, 12, "chunk");
  p.query_offset = integer(info, 13, "queryOffset");
  p.scale = static_cast<float>(qarvd::napi::number(info, 14, "scale"));
  const int64_t precision = integer(info, 15, "precision");
  const bool async = qarvd::napi::boolean(info, 16, "async");
  qarvd::napi::require(info, p.q_len >= 0 && p.kv_len >= 1 && p.heads >= 1 && p.head_dim >= 1 && p.chunk >= 0 && p.query_offset >= 0,
                       "bad attention sizes");
  qarvd::napi::require(info, precision >= 0 && precision <= 2, "bad attention precision");
  p.precision = static_cast<qarvd::AttentionPrecision>(precision);
  p.q_stride = p.out_stride = p.heads * p.head_dim;
  auto q = qarvd::napi::typed_array<float>(info, 0, "q");
  auto out = qarvd::napi::typed_array<float>(info, 7, "out", qarvd::napi::Access::kOut);
  const qarvd::KvView k = qarvd::napi::kv_view(info, 1, 2, 3, "k", p.kv_len, p.heads, p.head_dim);
  const qarvd::KvView v = qarvd::napi::kv_view(info, 4, 5, 6, "v", p.kv_len, p.heads, p.head_dim);
  const int64_t qn = p.q_len * p.q_stride;
  qarvd::napi::require(info, static_cast<int64_t>(q.length) == qn && static_cast<int64_t>(out.length) == qn,
                       "q or out has the wrong length");
  const float* qp = q.data;
  float* op = out.data;
  return qarvd::napi::dispatch(info, async, [=] {
    std::lock_guard<std::mutex> lock(workspace_mutex);
    qarvd::attention(qp, k, v, op, p, &workspace);
  });
}

void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("attention", Napi::Function::New(env, qarvd::napi::binding<Attention, 16>, "attention"));
}

}  // namespace

QARVD_EXPORTS(Export);
