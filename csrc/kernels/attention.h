// Multi-head scaled dot-product attention, softmax(Q K^T * scale) V, for q [q_len, heads, head_dim]
// against k, v [kv_len, heads, head_dim] (each token's heads contiguous; token strides given), with
// the keys and values stored in float32, bfloat16 or int8 (a KV cache of any of those, read in place),
// computed in one of three precisions.
//
// Masks: none (every query sees every key: cross-attention, or the current chunk against a KV cache
// holding past and current chunks), or chunk-causal for a whole video at once: key j is visible to
// query i iff floor(j / chunk) <= floor((i + query_offset) / chunk), i.e. a chunk sees itself and
// every earlier chunk. query_offset places the queries in the key sequence (0: queries and keys are
// the same tokens).
//
// The SIMD kernels never form the q_len x kv_len score matrix: per (head, block of queries) they
// walk blocks of keys with an online softmax (running max and sum per query, as flash attention);
// key blocks beyond a query block's causal limit are skipped.
//
// Precisions (what the products are computed on; sums are float32 throughout):
// - kFp32: float32 operands (the stored keys and values as they dequantize).
// - kBf16: q * scale, k, the probabilities p and v rounded to bfloat16 (round to nearest even),
//   products exact, float32 accumulation: vdpbf16ps (AVX512-BF16) or tdpbf16ps (AMX-BF16) where the
//   CPU has them, the same arithmetic in float32 FMAs elsewhere.
// - kInt8: Q.K^T in int8 with exact int32 sums, SageAttention's recipe: keys smoothed (the mean of
//   each channel over the kv_len keys, per head, subtracted: q.(k - m) differs from q.k by q.m, the
//   same for every key of a query, which softmax ignores), then q * scale and the smoothed keys
//   quantized symmetrically per token and head (scale = max|x| / 127, round to nearest even); P.V
//   as in kBf16. Keys stored in int8 (already smoothed and quantized per token, kv_cache.h) are
//   used as they are.
#pragma once
#include <cstdint>
#include <vector>

#include "../common/cpu_features.h"

namespace qarvd {

enum class AttentionPrecision : int { kFp32 = 0, kBf16 = 1, kInt8 = 2 };

// How keys or values are stored. Codes shared with lib/model/ops/kv-cache.ts.
enum class KvDtype : int { kFp32 = 0, kBf16 = 1, kInt8 = 2 };

// Keys or values, read in place: token t, head h, channel c is element t * stride + h * head_dim + c
// of `data` (float, bfloat16 bits as uint16_t, or int8). int8 values x' = q * scale[t * scale_stride + h]
// (symmetric, one scale per token and head).
struct KvView {
  KvDtype dtype = KvDtype::kFp32;
  const void* data = nullptr;
  int64_t stride = 0;             // elements between consecutive tokens (>= heads * head_dim)
  const float* scale = nullptr;   // int8 only
  int64_t scale_stride = 0;       // floats between consecutive tokens' scales (>= heads)

  static KvView fp32(const float* data, int64_t stride) { return {KvDtype::kFp32, data, stride, nullptr, 0}; }
};

struct AttentionParams {
  int64_t q_len = 0, kv_len = 0, heads = 0, head_dim = 0;
  // Floats between consecutive tokens of q and out (heads * head_dim when densely packed).
  int64_t q_stride = 0, out_stride = 0;
  int64_t chunk = 0;         // 0: no mask; > 0: chunk-causal with this many tokens per chunk
  int64_t query_offset = 0;  // position of query 0 among the keys, for the chunk-causal mask
  float scale = 0;           // usually 1 / sqrt(head_dim)
  AttentionPrecision precision = AttentionPrecision::kFp32;
};

// Buffers a call needs beyond its inputs: on the paths with bfloat16 and int8 dot products, the
// keys and values converted once per call to what the products read (int8 keys, a quarter of float32
// keys' bytes; bfloat16 keys and values in key pairs, half), never wider than float32. Keep one
// alive across calls to allocate nothing in the steady state; calls that share one must not run at
// the same time.
struct AttentionWorkspace {
  std::vector<int8_t> keys;
  std::vector<float> key_scale, mean;
  std::vector<int32_t> key_sum;
  std::vector<double> partial;
  std::vector<uint16_t> bf16_keys;
  std::vector<uint32_t> value_pairs;
};

// out may be q itself (each query block is copied before its output is written); it must not
// overlap k or v. Throws std::range_error on bad sizes or strides. workspace may be null.
void attention(const float* q, const KvView& k, const KvView& v, float* out, const AttentionParams& p,
               AttentionWorkspace* workspace = nullptr);

// Float32 keys and values `stride` floats apart per token.
inline void attention(const float* q, const float* k, const float* v, int64_t kv_stride, float* out,
                      const AttentionParams& p, AttentionWorkspace* workspace = nullptr) {
  attention(q, KvView::fp32(k, kv_stride), KvView::fp32(v, kv_stride), out, p, workspace);
}

// The path attention takes now (backends().cpu.paths.attention): scalar, avx2, avx512 (float32 FMAs
// for every precision), avx512vnni (with AVX512-BF16: bfloat16 and int8 dot products) or amx
// (AMX-BF16 and AMX-INT8 tiles).
KernelPath attention_path();

}  // namespace qarvd
