// The causal DiT's forward pass (lib/model/dit.ts) as one native job: patch embedding, the time
// embedding and its six modulation vectors, every block (self-attention over the KV cache,
// cross-attention to the text context, feed-forward, gated residuals), the modulated head and the
// unpatchify, on buffers of a workspace that is reused from pass to pass. The same kernels in the
// same order as the TypeScript forward, so the two give the same floats, bit for bit; steps that
// share data are fused where that keeps them bit-identical (dit_pass.cc says which).
#pragma once
#include <cstdint>
#include <vector>

#include "../kernels/attention.h"
#include "../kernels/gemm_common.h"
#include "../kernels/gemm_f32.h"
#include "../kernels/gemm_int.h"

namespace qarvd::model {

// A linear layer of the model: FP32 or quantized packed weights, and its bias (may be null).
struct Linear {
  const gemm::PackedF32* f32 = nullptr;
  const gemm::PackedInt* q = nullptr;
  const float* bias = nullptr;
  int64_t in = 0, out = 0;
};

struct Dims {
  int64_t dim, ffn, heads, layers, in_channels, out_channels, freq_dim, latent_h, latent_w;
  float eps;
};

struct Block {
  Linear q, k, v, o, cross_q, cross_k, cross_v, cross_o, ffn0, ffn2;
  const float* modulation;  // [6, dim]
  const float *norm_q, *norm_k, *norm3_weight, *norm3_bias, *cross_norm_q, *cross_norm_k;  // [dim]
};

struct Weights {
  Dims d;
  Linear patch, time0, time2, projection, head;
  const float* head_modulation;  // [2, dim]
  std::vector<Block> blocks;
};

// Per video: each block's KV cache and the context's cross-attention keys/values. The caches are
// stored as kv_dtype (float32, bfloat16 or int8: kernels/kv_cache.h), int8 ones with a scale per
// token and head and their keys' smoothing vector.
struct State {
  std::vector<void*> cache_k, cache_v;   // [capacity, dim] each
  KvDtype kv_dtype = KvDtype::kFp32;
  std::vector<float*> scale_k, scale_v;  // int8: [capacity, heads] each
  std::vector<float*> smooth_k;          // int8: [dim] each, set by the first chunk of an empty cache
  int64_t capacity = 0;                  // tokens
  int64_t committed_tokens = 0, committed_frames = 0;
  std::vector<float*> cross_k, cross_v;  // [text_len, dim] each
  std::vector<uint8_t> cross_ready;      // 0: compute this pass (and keep)
};

struct Pass {
  const float* x;           // latents [frames, in_channels, latent_h, latent_w]
  int64_t frames;
  const float* sinusoid;    // the timestep's sinusoidal embedding [freq_dim]
  const float* context;     // the embedded text context [text_len, dim]
  int64_t text_len;
  float* out;               // the predicted flow [frames, out_channels, latent_h, latent_w]
  AttentionPrecision attention = AttentionPrecision::kFp32;  // of self- and cross-attention
};

// Where a pass's time went, in seconds (summed over passes), when asked for.
struct Profile {
  double linears = 0, attention = 0, norms = 0, activations = 0, copies = 0, total = 0;
  int64_t passes = 0;
};

// Buffers of a pass, grown on first use and then reused (no allocation in the steady state).
struct Workspace {
  gemm::AlignedBuffer<float> h, y, q, att, u, patches, head_out, vec;
  gemm::AlignedBuffer<float> k, v;  // a chunk's keys and values on their way into a bfloat16 or int8 cache
  AttentionWorkspace attention;
  void reserve(const Dims& d, int64_t tokens, int64_t text_len);
};

void forward(const Weights& w, State& s, Workspace& ws, const Pass& p, Profile* profile);

}  // namespace qarvd::model
