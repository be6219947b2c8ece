// Reading a KV tensor argument (data, dtype code, scales) as a qarvd::KvView of dense tokens.
#pragma once
#include "../kernels/attention.h"
#include "util.h"

namespace qarvd::napi {

// data: Float32Array (dtype 0), Uint16Array of bfloat16 bits (1), Int8Array (2, with a Float32Array
// of scales [tokens][heads] at scale_index; null otherwise), holding at least `tokens` dense tokens.
inline KvView kv_view(const Napi::CallbackInfo& info, size_t data_index, size_t dtype_index, size_t scale_index,
                      const char* name, int64_t tokens, int64_t heads, int64_t head_dim,
                      Access access = Access::kIn) {
  const int64_t dtype = integer(info, dtype_index, "dtype");
  KvView view;
  view.stride = heads * head_dim;
  // Only the first `tokens` tokens are read: an async call stages just those (a cache passes its
  // whole preallocated buffer).
  const size_t used = tokens >= 0 && view.stride > 0 ? static_cast<size_t>(tokens * view.stride) : 0;
  size_t length = 0;
  if (dtype == 0) {
    auto a = typed_array<float>(info, data_index, name, access, used);
    view.data = a.data;
    length = a.length;
  } else if (dtype == 1) {
    auto a = typed_array<uint16_t>(info, data_index, name, access, used);
    view.data = a.data;
    length = a.length;
  } else if (dtype == 2) {
    auto a = typed_array<int8_t>(info, data_index, name, access, used);
    auto s = typed_array<float>(info, scale_index, "scale", access, static_cast<size_t>(tokens * heads));
    view.data = a.data;
    length = a.length;
    view.scale = s.data;
    view.scale_stride = heads;
    require(info, static_cast<int64_t>(s.length) >= tokens * heads, std::string(name) + " has too few scales");
  } else {
    require(info, false, std::string("bad dtype code for ") + name);
  }
  view.dtype = static_cast<KvDtype>(dtype);
  require(info, static_cast<int64_t>(length) >= tokens * view.stride, std::string(name) + " has too few tokens");
  return view;
}

}  // namespace qarvd::napi
