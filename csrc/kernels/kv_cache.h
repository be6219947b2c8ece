// Writes into a KV cache stored in float32, bfloat16 or int8 (attention.h reads all three in place).
//
// - float32: copied.
// - bfloat16: rounded to nearest even (as VCVTNE2PS2BF16: zero and denormals to a signed zero).
// - int8: symmetric per token and head, x' = q * scale with scale = max(max|x - m| / 127, 2^-23)
//   and q = clamp(roundHalfToEven((x - m) / scale), -128, 127) (quant_math.h; NaN to 0 with a NaN
//   scale), where m is an optional smoothing vector per channel (heads * head_dim floats): keys
//   store k - m, which changes every score of a query by the same q.m and so leaves softmax as it
//   is, while the channel means no longer widen every token's range.
#pragma once
#include <cstdint>

#include "attention.h"

namespace qarvd {

struct KvStoreArgs {
  const float* x = nullptr;     // [tokens][x_stride] float32
  int64_t tokens = 0, x_stride = 0, heads = 0, head_dim = 0;
  KvDtype dtype = KvDtype::kFp32;
  void* data = nullptr;         // the cache, from token `at` on: [tokens][stride] elements of dtype
  int64_t stride = 0;
  float* scale = nullptr;       // int8: [tokens][scale_stride] from token `at` on
  int64_t scale_stride = 0;
  int64_t at = 0;
  const float* smooth = nullptr;  // int8 only, or null
};

void kv_store(const KvStoreArgs& a);

// mean[c] = sum over tokens of x[t * x_stride + c] / tokens, c < width, summed in double in token order.
void kv_channel_mean(const float* x, int64_t tokens, int64_t width, int64_t x_stride, float* mean);

}  // namespace qarvd
