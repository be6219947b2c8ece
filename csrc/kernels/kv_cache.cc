#include "kv_cache.h"

#include <stdexcept>
#include <vector>

#include "../common/parallel.h"
#include "attention_internal.h"

namespace qarvd {

void kv_store(const KvStoreArgs& a) {
  const int64_t d = a.head_dim, width = a.heads * d;
  if (a.tokens < 0 || a.heads < 1 || d < 1 || a.at < 0) throw std::range_error("kv_store: bad sizes");
  if (a.x_stride < width || a.stride < width) throw std::range_error("kv_store: token stride smaller than heads * head_dim");
  if (a.dtype == KvDtype::kInt8 && (a.scale == nullptr || a.scale_stride < a.heads)) throw std::range_error("kv_store: int8 needs scales");
  const attn::RowQuantizer quantize = attn::path_row_quantizer();
  parallel_for(a.tokens, 16, [&](int64_t t0, int64_t t1, int) {
    std::vector<float> row(static_cast<size_t>(d));
    for (int64_t t = t0; t < t1; ++t) {
      const float* x = a.x + t * a.x_stride;
      const int64_t dst = (a.at + t) * a.stride;
      switch (a.dtype) {
        case KvDtype::kFp32:
          std::copy(x, x + width, static_cast<float*>(a.data) + dst);
          break;
        case KvDtype::kBf16: {
          uint16_t* out = static_cast<uint16_t*>(a.data) + dst;
          for (int64_t c = 0; c < width; ++c) out[c] = attn::bf16_bits(x[c]);
          break;
        }
        case KvDtype::kInt8: {
          int8_t* out = static_cast<int8_t*>(a.data) + dst;
          for (int64_t h = 0; h < a.heads; ++h) {
            for (int64_t c = 0; c < d; ++c) row[c] = a.smooth ? x[h * d + c] - a.smooth[h * d + c] : x[h * d + c];
            a.scale[(a.at + t) * a.scale_stride + h] = quantize(row.data(), d, out + h * d);
          }
          break;
        }
      }
    }
  });
}

void kv_channel_mean(const float* x, int64_t tokens, int64_t width, int64_t x_stride, float* mean) {
  if (tokens < 1 || width < 1 || x_stride < width) throw std::range_error("kv_channel_mean: bad sizes");
  constexpr int64_t kColumns = 64;
  parallel_for((width + kColumns - 1) / kColumns, 1, [&](int64_t b0, int64_t b1, int) {
    std::vector<double> acc(kColumns);
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t c0 = b * kColumns, n = std::min(kColumns, width - c0);
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t t = 0; t < tokens; ++t)
        for (int64_t c = 0; c < n; ++c) acc[c] += x[t * x_stride + c0 + c];
      for (int64_t c = 0; c < n; ++c) mean[c0 + c] = static_cast<float>(acc[c] / static_cast<double>(tokens));
    }
  });
}

}  // namespace qarvd
