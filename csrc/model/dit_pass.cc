#include "dit_pass.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "../kernels/activation.h"
#include "../kernels/attention.h"
#include "../kernels/kv_cache.h"
#include "../kernels/norm.h"
#include "../kernels/rope.h"

namespace qarvd::model {
namespace {

using Clock = std::chrono::steady_clock;

// Adds the time between construction (or the last lap) and each lap to a profile field.
class Stopwatch {
 public:
  explicit Stopwatch(Profile* p) : p_(p), last_(p ? Clock::now() : Clock::time_point{}) {}
  void lap(double Profile::*field) {
    if (!p_) return;
    const auto now = Clock::now();
    p_->*field += std::chrono::duration<double>(now - last_).count();
    last_ = now;
  }

 private:
  Profile* p_;
  Clock::time_point last_;
};

void linear(const Linear& l, const float* x, int64_t m, float* y, const Epilogue* post = nullptr) {
  if (l.q) {
    gemm::forward_int(*l.q, x, m, l.bias, y, nullptr, nullptr, nullptr, post);
  } else {
    gemm::linear_f32(x, m, *l.f32, l.bias, y, post);
  }
}

// Layers over the same input (q, k, v): one job when they are all FP32 or all quantized.
void linears(const Linear* const* ls, float* const* ys, int count, const float* x, int64_t m) {
  bool all_f32 = true, all_q = true;
  for (int i = 0; i < count; ++i) {
    all_f32 = all_f32 && ls[i]->f32;
    all_q = all_q && ls[i]->q;
  }
  if (all_f32) {
    gemm::F32Job jobs[4];
    for (int i = 0; i < count; ++i) jobs[i] = {ls[i]->f32, ls[i]->bias, ys[i], nullptr};
    gemm::linear_f32_multi(x, m, jobs, count);
  } else if (all_q) {
    gemm::IntJob jobs[4];
    for (int i = 0; i < count; ++i) jobs[i] = {ls[i]->q, ls[i]->bias, ys[i], nullptr};
    gemm::forward_int_multi(x, m, jobs, count);
  } else {
    for (int i = 0; i < count; ++i) linear(*ls[i], x, m, ys[i]);
  }
}

// Latents [F, C, H, W] to tokens [F (H/2) (W/2), C 4], each patch ordered (channel, row, column) as
// Conv3d's weight (dit.ts: patchify).
void patchify(const float* x, int64_t frames, int64_t C, int64_t H, int64_t W, float* out) {
  const int64_t hp = H / 2, wp = W / 2;
  int64_t n = 0;
  for (int64_t f = 0; f < frames; ++f)
    for (int64_t i = 0; i < hp; ++i)
      for (int64_t j = 0; j < wp; ++j)
        for (int64_t ch = 0; ch < C; ++ch)
          for (int64_t kh = 0; kh < 2; ++kh)
            for (int64_t kw = 0; kw < 2; ++kw) out[n++] = x[((f * C + ch) * H + 2 * i + kh) * W + 2 * j + kw];
}

// Fused where the data flows, each bit-identical to the separate ops of dit.ts: q, k and v as one job
// over their shared input (quantized once when their activation quantizers agree); RMSNorm and RoPE
// of q and k in one pass; GELU in the first feed-forward linear's epilogue; the gated residuals in
// the epilogues of the output projections.

// Head output [tokens, 4 C] (row, column, channel as Wan's unpatchify) back to latents [F, C, H, W].
void unpatchify(const float* y, int64_t frames, int64_t C, int64_t H, int64_t W, float* out) {
  const int64_t hp = H / 2, wp = W / 2;
  for (int64_t f = 0; f < frames; ++f)
    for (int64_t i = 0; i < hp; ++i)
      for (int64_t j = 0; j < wp; ++j) {
        const int64_t t = (f * hp + i) * wp + j;
        for (int64_t kh = 0; kh < 2; ++kh)
          for (int64_t kw = 0; kw < 2; ++kw)
            for (int64_t ch = 0; ch < C; ++ch)
              out[((f * C + ch) * H + 2 * i + kh) * W + 2 * j + kw] = y[t * 4 * C + (kh * 2 + kw) * C + ch];
      }
}

}  // namespace

void Workspace::reserve(const Dims& d, int64_t tokens, int64_t text_len) {
  const size_t td = static_cast<size_t>(tokens * d.dim);
  h.reserve(td);
  y.reserve(td);
  q.reserve(td);
  att.reserve(td);
  u.reserve(static_cast<size_t>(tokens * d.ffn));
  patches.reserve(static_cast<size_t>(tokens * d.in_channels * 4));
  head_out.reserve(static_cast<size_t>(tokens * d.out_channels * 4));
  k.reserve(td);
  v.reserve(td);
  vec.reserve(static_cast<size_t>(17 * d.dim));
}

void forward(const Weights& w, State& s, Workspace& ws, const Pass& p, Profile* profile) {
  const Dims& d = w.d;
  const int64_t dim = d.dim, heads = d.heads, head_dim = dim / heads;
  const int64_t hp = d.latent_h / 2, wp = d.latent_w / 2, tokens = p.frames * hp * wp;
  const int64_t kv_len = s.committed_tokens + tokens;
  if (kv_len > s.capacity) throw std::out_of_range("native: the chunk does not fit in the KV cache");
  if (static_cast<int64_t>(w.blocks.size()) != d.layers || static_cast<int64_t>(s.cache_k.size()) != d.layers) {
    throw std::logic_error("native: the pass's blocks and caches do not match the model");
  }
  const auto t_start = Clock::now();
  Stopwatch sw(profile);
  ws.reserve(d, tokens, p.text_len);
  float* h = ws.h.data();
  float* y = ws.y.data();
  float* q = ws.q.data();
  float* att = ws.att.data();
  float* u = ws.u.data();
  // Small vectors: the time embedding before and after SiLU, the six projected vectors, a block's
  // modulation, the head's, and ones (the ungated residual of cross-attention).
  float* e = ws.vec.data();
  float* e_act = e + dim;
  float* e0 = e_act + dim;
  float* mod = e0 + 6 * dim;
  float* head_mod = mod + 6 * dim;
  float* ones = head_mod + 2 * dim;
  for (int64_t j = 0; j < dim; ++j) ones[j] = 1.0f;
  const NormShape rows{tokens, dim};
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(head_dim)));
  sw.lap(&Profile::copies);

  // Time embedding e [dim] and the six modulation vectors e0 [6 dim].
  linear(w.time0, p.sinusoid, 1, e_act);
  sw.lap(&Profile::linears);
  activation(Activation::kSilu, e_act, e_act, dim);
  sw.lap(&Profile::activations);
  linear(w.time2, e_act, 1, e);
  sw.lap(&Profile::linears);
  activation(Activation::kSilu, e, e_act, dim);
  sw.lap(&Profile::activations);
  linear(w.projection, e_act, 1, e0);
  patchify(p.x, p.frames, d.in_channels, d.latent_h, d.latent_w, ws.patches.data());
  sw.lap(&Profile::copies);
  linear(w.patch, ws.patches.data(), tokens, h);
  sw.lap(&Profile::linears);

  RopeShape rope{tokens, heads, head_dim, p.frames, hp, wp, s.committed_frames, 10000.0};
  for (int64_t b = 0; b < d.layers; ++b) {
    const Block& blk = w.blocks[b];
    for (int64_t j = 0; j < 6 * dim; ++j) mod[j] = blk.modulation[j] + e0[j];
    // Self-attention against the cache: this pass's keys and values go straight to their place
    // after the committed tokens (replacing an earlier step's).
    // A bfloat16 or int8 cache takes them once they are final (after RMSNorm and RoPE).
    const bool fp32_cache = s.kv_dtype == KvDtype::kFp32;
    float* ck = fp32_cache ? static_cast<float*>(s.cache_k[b]) + s.committed_tokens * dim : ws.k.data();
    float* cv = fp32_cache ? static_cast<float*>(s.cache_v[b]) + s.committed_tokens * dim : ws.v.data();
    layer_norm(h, y, rows, d.eps, nullptr, nullptr, mod, mod + dim, 1);
    sw.lap(&Profile::norms);
    {
      const Linear* ls[3] = {&blk.q, &blk.k, &blk.v};
      float* ys[3] = {q, ck, cv};
      linears(ls, ys, 3, y, tokens);
    }
    sw.lap(&Profile::linears);
    const RmsRopeTarget qk[2] = {{q, blk.norm_q}, {ck, blk.norm_k}};
    rms_norm_rope_3d(qk, 2, d.eps, rope);
    sw.lap(&Profile::norms);
    if (!fp32_cache) {
      // As KvCache.append: the first chunk of an empty int8 cache fixes its keys' smoothing.
      float* smooth = s.kv_dtype == KvDtype::kInt8 ? s.smooth_k[b] : nullptr;
      if (smooth && s.committed_tokens == 0) kv_channel_mean(ck, tokens, dim, dim, smooth);
      const bool int8 = s.kv_dtype == KvDtype::kInt8;
      kv_store({ck, tokens, dim, heads, head_dim, s.kv_dtype, s.cache_k[b], dim, int8 ? s.scale_k[b] : nullptr, heads, s.committed_tokens, smooth});
      kv_store({cv, tokens, dim, heads, head_dim, s.kv_dtype, s.cache_v[b], dim, int8 ? s.scale_v[b] : nullptr, heads, s.committed_tokens, nullptr});
      sw.lap(&Profile::copies);
    }
    AttentionParams ap;
    ap.q_len = tokens;
    ap.kv_len = kv_len;
    ap.heads = heads;
    ap.head_dim = head_dim;
    ap.q_stride = ap.out_stride = dim;
    ap.scale = scale;
    ap.precision = p.attention;
    const KvView kview{s.kv_dtype, s.cache_k[b], dim, s.kv_dtype == KvDtype::kInt8 ? s.scale_k[b] : nullptr, heads};
    const KvView vview{s.kv_dtype, s.cache_v[b], dim, s.kv_dtype == KvDtype::kInt8 ? s.scale_v[b] : nullptr, heads};
    attention(q, kview, vview, att, ap, &ws.attention);
    sw.lap(&Profile::attention);
    const Epilogue self_gate = gated_residual_epilogue(mod + 2 * dim, h, dim);
    linear(blk.o, att, tokens, y, &self_gate);
    sw.lap(&Profile::linears);
    // Cross-attention to the text context (its keys and values are computed once per video).
    layer_norm(h, y, rows, d.eps, blk.norm3_weight, blk.norm3_bias, nullptr, nullptr, 1);
    sw.lap(&Profile::norms);
    linear(blk.cross_q, y, tokens, q);
    sw.lap(&Profile::linears);
    rms_norm(q, q, rows, d.eps, blk.cross_norm_q);
    sw.lap(&Profile::norms);
    if (!s.cross_ready[b]) {
      const Linear* ls[2] = {&blk.cross_k, &blk.cross_v};
      float* ys[2] = {s.cross_k[b], s.cross_v[b]};
      linears(ls, ys, 2, p.context, p.text_len);
      sw.lap(&Profile::linears);
      rms_norm(s.cross_k[b], s.cross_k[b], NormShape{p.text_len, dim}, d.eps, blk.cross_norm_k);
      sw.lap(&Profile::norms);
      s.cross_ready[b] = 1;
    }
    ap.kv_len = p.text_len;
    attention(q, s.cross_k[b], s.cross_v[b], dim, att, ap, &ws.attention);
    sw.lap(&Profile::attention);
    const Epilogue cross_gate = gated_residual_epilogue(ones, h, dim);
    linear(blk.cross_o, att, tokens, y, &cross_gate);
    sw.lap(&Profile::linears);
    // Feed-forward.
    layer_norm(h, y, rows, d.eps, nullptr, nullptr, mod + 3 * dim, mod + 4 * dim, 1);
    sw.lap(&Profile::norms);
    const Epilogue gelu = activation_epilogue(Activation::kGeluTanh);
    linear(blk.ffn0, y, tokens, u, &gelu);
    const Epilogue ffn_gate = gated_residual_epilogue(mod + 5 * dim, h, dim);
    linear(blk.ffn2, u, tokens, y, &ffn_gate);
    sw.lap(&Profile::linears);
  }
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < dim; ++j) head_mod[i * dim + j] = w.head_modulation[i * dim + j] + e[j];
  layer_norm(h, y, rows, d.eps, nullptr, nullptr, head_mod, head_mod + dim, 1);
  sw.lap(&Profile::norms);
  linear(w.head, y, tokens, ws.head_out.data());
  sw.lap(&Profile::linears);
  unpatchify(ws.head_out.data(), p.frames, d.out_channels, d.latent_h, d.latent_w, p.out);
  sw.lap(&Profile::copies);
  if (profile) {
    profile->total += std::chrono::duration<double>(Clock::now() - t_start).count();
    profile->passes += 1;
  }
}

}  // namespace qarvd::model
