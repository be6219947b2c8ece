// Multi-head scaled dot-product attention, softmax(Q K^T * scale) V, for q [q_len, heads, head_dim]
// against k, v [kv_len, heads, head_dim] (each token's heads contiguous; token strides given).
//
// Masks: none (every query sees every key: cross-attention, or the current chunk against a KV cache
// holding past and current chunks), or chunk-causal for a whole video at once: key j is visible to
// query i iff floor(j / chunk) <= floor((i + query_offset) / chunk), i.e. a chunk sees itself and
// every earlier chunk. query_offset places the queries in the key sequence (0: queries and keys are
// the same tokens).
//
// The AVX2 kernel never forms the q_len x kv_len score matrix: per (head, block of queries) it walks
// blocks of keys with an online softmax (running max and sum per query, as flash attention), with fp32
// accumulation throughout; key blocks beyond a query block's causal limit are skipped.
#pragma once
#include <cstdint>

namespace qarvd {

struct AttentionParams {
  int64_t q_len = 0, kv_len = 0, heads = 0, head_dim = 0;
  // Floats between consecutive tokens of each tensor (heads * head_dim when densely packed).
  int64_t q_stride = 0, k_stride = 0, v_stride = 0, out_stride = 0;
  int64_t chunk = 0;         // 0: no mask; > 0: chunk-causal with this many tokens per chunk
  int64_t query_offset = 0;  // position of query 0 among the keys, for the chunk-causal mask
  float scale = 0;           // usually 1 / sqrt(head_dim)
};

// out may be q itself (each query block is copied before its output is written); it must not
// overlap k or v.
void attention(const float* q, const float* k, const float* v, float* out, const AttentionParams& p);

}  // namespace qarvd
