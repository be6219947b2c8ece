// KV cache bindings:
//   kvStore(x, tokens, heads, headDim, dtype, data, scale, at, smooth, async): writes float32 x
//     [tokens, heads * headDim] as cache tokens [at, at + tokens) of `data` (see kv_cache.h);
//   kvChannelMean(x, tokens, width, mean): mean over the tokens of each of `width` channels.
#include "../kernels/kv_cache.h"
#include "kv_args.h"
#include "util.h"

namespace {

Napi::Value KvStore(const Napi::CallbackInfo& info) {
  using qarvd::napi::integer;
  qarvd::KvStoreArgs a;
  auto x = qarvd::napi::typed_array<float>(info, 0, "x");
  a.tokens = integer(info, 1, "tokens");
  a.heads = integer(info, 2, "heads");
  a.head_dim = integer(info, 3, "headDim");
  a.at = integer(info, 7, "at");
  const bool async = qarvd::napi::boolean(info, 9, "async");
  qarvd::napi::require(info, a.tokens >= 0 && a.heads >= 1 && a.head_dim >= 1 && a.at >= 0, "bad kvStore sizes");
  const int64_t width = a.heads * a.head_dim;
  a.x = x.data;
  a.x_stride = width;
  qarvd::napi::require(info, static_cast<int64_t>(x.length) == a.tokens * width, "x has the wrong length");
  const qarvd::KvView cache = qarvd::napi::kv_view(info, 5, 4, 6, "data", a.at + a.tokens, a.heads, a.head_dim,
                                                          qarvd::napi::Access::kShared);
  a.dtype = cache.dtype;
  a.data = const_cast<void*>(cache.data);
  a.stride = cache.stride;
  a.scale = const_cast<float*>(cache.scale);
  a.scale_stride = cache.scale_stride;
  if (!info[8].IsNull() && !info[8].IsUndefined()) {
    auto s = qarvd::napi::typed_array<float>(info, 8, "smooth");
    qarvd::napi::require(info, static_cast<int64_t>(s.length) == width, "smooth has the wrong length");
    a.smooth = s.data;
  }
  return qarvd::napi::dispatch(info, async, [=] { qarvd::kv_store(a); });
}

Napi::Value KvChannelMean(const Napi::CallbackInfo& info) {
  using qarvd::napi::integer;
  auto x = qarvd::napi::typed_array<float>(info, 0, "x");
  const int64_t tokens = integer(info, 1, "tokens"), width = integer(info, 2, "width");
  auto mean = qarvd::napi::typed_array<float>(info, 3, "mean", qarvd::napi::Access::kOut);
  qarvd::napi::require(info, tokens >= 1 && width >= 1 && static_cast<int64_t>(x.length) == tokens * width &&
                                 static_cast<int64_t>(mean.length) == width,
                       "bad kvChannelMean sizes");
  qarvd::kv_channel_mean(x.data, tokens, width, width, mean.data);
  return info.Env().Undefined();
}

void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("kvStore", Napi::Function::New(env, qarvd::napi::binding<KvStore, 9>, "kvStore"));
  exports.Set("kvChannelMean", Napi::Function::New(env, qarvd::napi::guarded<KvChannelMean>, "kvChannelMean"));
}

}  // namespace

QARVD_EXPORTS(Export);
