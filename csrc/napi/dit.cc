// The model pass binding (csrc/model/dit_pass.h): one call runs a whole forward pass of the causal
// DiT, sync or on the libuv pool. lib/model/native_pass.ts builds the arguments from a CausalDit and
// its DitState and validates them; lengths and handle kinds are re-checked here.
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../model/dit_pass.h"
#include "gemm_handles.h"
#include "util.h"

namespace {

namespace qn = qarvd::napi;
using qarvd::model::Workspace;

constexpr napi_type_tag kWorkspaceTag = {0x7161727664646974ULL, 0x776f726b73706163ULL};  // "qarvddit", "workspac"

Napi::Error range(Napi::Env env, const std::string& what) { return Napi::RangeError::New(env, "native: " + what); }

float* floats(Napi::Env env, Napi::Value v, const std::string& name, size_t length, qn::Access access = qn::Access::kIn) {
  auto a = qn::typed_array_of<float>(env, v, name, access);
  if (a.length != length) throw range(env, name + " has the wrong length");
  return a.data;
}

float* floats_at_least(Napi::Env env, Napi::Value v, const std::string& name, size_t length, qn::Access access) {
  auto a = qn::typed_array_of<float>(env, v, name, access);
  if (a.length < length) throw range(env, name + " is too short");
  return a.data;
}

// [handle, bias | null] of a linear with `in` inputs and `out` outputs.
qarvd::model::Linear linear_of(Napi::Env env, Napi::Value v, int64_t in, int64_t out, const std::string& name) {
  if (!v.IsArray() || v.As<Napi::Array>().Length() != 2) throw Napi::TypeError::New(env, "native: layer " + name + " is not [handle, bias]");
  auto pair = v.As<Napi::Array>();
  qarvd::model::Linear l;
  l.in = in;
  l.out = out;
  if (auto* h = qn::holder_of<qarvd::gemm::PackedF32>(pair.Get(0u), qn::kF32Tag)) {
    l.f32 = h->value.get();
    if (l.f32->n != out || l.f32->k != in) throw range(env, "layer " + name + " has the wrong shape");
  } else if (auto* h = qn::holder_of<qarvd::gemm::PackedInt>(pair.Get(0u), qn::kIntTag)) {
    l.q = h->value.get();
    if (l.q->n != out || l.q->k != in) throw range(env, "layer " + name + " has the wrong shape");
    if (l.q->segs.empty() || l.q->segs.back().spec.k0 + l.q->segs.back().spec.len != in) {
      throw range(env, "layer " + name + ": the quantized layer's segments do not cover its inputs");
    }
  } else {
    throw Napi::TypeError::New(env, "native: layer " + name + " has no packed weights");
  }
  Napi::Value bias = pair.Get(1u);
  if (!bias.IsNull() && !bias.IsUndefined()) l.bias = floats(env, bias, "bias of " + name, static_cast<size_t>(out));
  return l;
}

// The workspace of a model state, shared with the pass in flight (so that the state's collection
// during an async pass cannot free it), and locked by a pass (two passes on one state never share it).
struct SharedWorkspace {
  Workspace ws;
  std::mutex busy;
};
using WorkspaceHolder = std::shared_ptr<SharedWorkspace>;

// ditWorkspace() -> handle
Napi::Value NewWorkspace(const Napi::CallbackInfo& info) {
  auto ext = Napi::External<WorkspaceHolder>::New(info.Env(), new WorkspaceHolder(std::make_shared<SharedWorkspace>()),
                                                   [](Napi::Env, WorkspaceHolder* w) { delete w; });
  ext.TypeTag(&kWorkspaceTag);
  return ext;
}

// ditForward(layers: [handle, bias][] (patch, time0, time2, projection, head, then per block q k v o
//   cross_q cross_k cross_v cross_o ffn0 ffn2), params: Float32Array[] (head modulation, then per
//   block modulation norm_q norm_k norm3_weight norm3_bias cross_norm_q cross_norm_k), dims:
//   Float64Array [dim ffn heads layers inChannels outChannels freqDim latentH latentW eps],
//   caches: Float32Array[] (k0 v0 k1 v1 ...), capacity, committedTokens, committedFrames,
//   cross: Float32Array[] (k0 v0 ...), crossReady: Uint8Array [layers] (set to 1 when computed),
//   x, frames, sinusoid, context, textLen, out, workspace, profile: Float64Array [7] | null,
//   kvDtype (0 float32, 1 bfloat16, 2 int8: the caches are Float32Array, Uint16Array or Int8Array),
//   cacheScales: Float32Array[] (k0 v0 ...: [capacity, heads] each) | null and smoothing:
//   Float32Array[] ([dim] per block) | null for int8, attention precision (0 fp32, 1 bf16, 2 int8), async)
Napi::Value Forward(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto dims = qn::typed_array<double>(info, 2, "dims");
  if (dims.length != 10) throw range(env, "dims has the wrong length");
  qarvd::model::Weights w;
  auto& d = w.d;
  d.dim = static_cast<int64_t>(dims.data[0]);
  d.ffn = static_cast<int64_t>(dims.data[1]);
  d.heads = static_cast<int64_t>(dims.data[2]);
  d.layers = static_cast<int64_t>(dims.data[3]);
  d.in_channels = static_cast<int64_t>(dims.data[4]);
  d.out_channels = static_cast<int64_t>(dims.data[5]);
  d.freq_dim = static_cast<int64_t>(dims.data[6]);
  d.latent_h = static_cast<int64_t>(dims.data[7]);
  d.latent_w = static_cast<int64_t>(dims.data[8]);
  d.eps = static_cast<float>(dims.data[9]);
  if (d.dim < 1 || d.ffn < 1 || d.heads < 1 || d.dim % d.heads != 0 || d.layers < 1 || d.in_channels < 1 ||
      d.out_channels < 1 || d.freq_dim < 1 || d.latent_h < 2 || d.latent_w < 2 || d.latent_h % 2 || d.latent_w % 2) {
    throw range(env, "bad model dimensions");
  }
  const int64_t dim = d.dim, L = d.layers;
  const size_t D = static_cast<size_t>(dim);

  if (!info[0].IsArray() || info[0].As<Napi::Array>().Length() != static_cast<uint32_t>(5 + 10 * L)) {
    throw range(env, "layers has the wrong length");
  }
  auto layers = info[0].As<Napi::Array>();
  uint32_t li = 0;
  auto next_linear = [&](int64_t in, int64_t out, const std::string& name) { return linear_of(env, layers.Get(li++), in, out, name); };
  w.patch = next_linear(d.in_channels * 4, dim, "patch_embedding");
  w.time0 = next_linear(d.freq_dim, dim, "time_embedding.0");
  w.time2 = next_linear(dim, dim, "time_embedding.2");
  w.projection = next_linear(dim, 6 * dim, "time_projection.1");
  w.head = next_linear(dim, d.out_channels * 4, "head.head");
  if (!info[1].IsArray() || info[1].As<Napi::Array>().Length() != static_cast<uint32_t>(1 + 7 * L)) {
    throw range(env, "params has the wrong length");
  }
  auto params = info[1].As<Napi::Array>();
  w.head_modulation = floats(env, params.Get(0u), "head.modulation", 2 * D);
  w.blocks.resize(static_cast<size_t>(L));
  for (int64_t b = 0; b < L; ++b) {
    auto& blk = w.blocks[b];
    const std::string p = "blocks." + std::to_string(b) + ".";
    blk.q = next_linear(dim, dim, p + "self_attn.q");
    blk.k = next_linear(dim, dim, p + "self_attn.k");
    blk.v = next_linear(dim, dim, p + "self_attn.v");
    blk.o = next_linear(dim, dim, p + "self_attn.o");
    blk.cross_q = next_linear(dim, dim, p + "cross_attn.q");
    blk.cross_k = next_linear(dim, dim, p + "cross_attn.k");
    blk.cross_v = next_linear(dim, dim, p + "cross_attn.v");
    blk.cross_o = next_linear(dim, dim, p + "cross_attn.o");
    blk.ffn0 = next_linear(dim, d.ffn, p + "ffn.0");
    blk.ffn2 = next_linear(d.ffn, dim, p + "ffn.2");
    const uint32_t pi = static_cast<uint32_t>(1 + 7 * b);
    blk.modulation = floats(env, params.Get(pi), p + "modulation", 6 * D);
    blk.norm_q = floats(env, params.Get(pi + 1), p + "self_attn.norm_q", D);
    blk.norm_k = floats(env, params.Get(pi + 2), p + "self_attn.norm_k", D);
    blk.norm3_weight = floats(env, params.Get(pi + 3), p + "norm3.weight", D);
    blk.norm3_bias = floats(env, params.Get(pi + 4), p + "norm3.bias", D);
    blk.cross_norm_q = floats(env, params.Get(pi + 5), p + "cross_attn.norm_q", D);
    blk.cross_norm_k = floats(env, params.Get(pi + 6), p + "cross_attn.norm_k", D);
  }

  qarvd::model::State s;
  s.capacity = qn::integer(info, 4, "capacity");
  s.committed_tokens = qn::integer(info, 5, "committedTokens");
  s.committed_frames = qn::integer(info, 6, "committedFrames");
  const int64_t frames = qn::integer(info, 10, "frames");
  const int64_t text_len = qn::integer(info, 13, "textLen");
  const int64_t tokens = frames * (d.latent_h / 2) * (d.latent_w / 2);
  if (s.capacity < 1 || s.committed_tokens < 0 || s.committed_frames < 0 || frames < 1 || text_len < 1 ||
      s.committed_tokens + tokens > s.capacity) {
    throw range(env, "bad pass sizes");
  }
  if (!info[3].IsArray() || info[3].As<Napi::Array>().Length() != static_cast<uint32_t>(2 * L) || !info[7].IsArray() ||
      info[7].As<Napi::Array>().Length() != static_cast<uint32_t>(2 * L)) {
    throw range(env, "caches or cross has the wrong length");
  }
  auto caches = info[3].As<Napi::Array>();
  auto cross = info[7].As<Napi::Array>();
  auto ready = qn::typed_array<uint8_t>(info, 8, "crossReady", qn::Access::kOut);
  if (ready.length != static_cast<size_t>(L)) throw range(env, "crossReady has the wrong length");
  const int64_t kv_dtype = qn::integer(info, 17, "kvDtype"), precision = qn::integer(info, 20, "precision");
  if (kv_dtype < 0 || kv_dtype > 2 || precision < 0 || precision > 2) throw range(env, "bad kvDtype or precision");
  s.kv_dtype = static_cast<qarvd::KvDtype>(kv_dtype);
  const bool int8 = s.kv_dtype == qarvd::KvDtype::kInt8;
  const napi_typedarray_type cache_type = kv_dtype == 0 ? napi_float32_array : kv_dtype == 1 ? napi_uint16_array : napi_int8_array;
  if (int8 && (!info[18].IsArray() || info[18].As<Napi::Array>().Length() != static_cast<uint32_t>(2 * L) || !info[19].IsArray() ||
               info[19].As<Napi::Array>().Length() != static_cast<uint32_t>(L))) {
    throw range(env, "an int8 cache needs its scales and smoothing");
  }
  const size_t cache_elem = kv_dtype == 0 ? 4 : kv_dtype == 1 ? 2 : 1;
  auto cache_at = [&](uint32_t i) {
    auto a = qn::stage(env, caches.Get(i), cache_type, cache_elem, "cache", qn::Access::kShared);
    if (a.length < static_cast<size_t>(s.capacity * dim)) throw range(env, "a cache is too short");
    return static_cast<void*>(a.data);
  };
  for (int64_t b = 0; b < L; ++b) {
    const uint32_t i = static_cast<uint32_t>(2 * b);
    s.cache_k.push_back(cache_at(i));
    s.cache_v.push_back(cache_at(i + 1));
    if (int8) {
      auto scales = info[18].As<Napi::Array>();
      const size_t n = static_cast<size_t>(s.capacity * d.heads);
      s.scale_k.push_back(floats_at_least(env, scales.Get(i), "cache scales", n, qn::Access::kShared));
      s.scale_v.push_back(floats_at_least(env, scales.Get(i + 1), "cache scales", n, qn::Access::kShared));
      s.smooth_k.push_back(floats(env, info[19].As<Napi::Array>().Get(static_cast<uint32_t>(b)), "smoothing", D, qn::Access::kShared));
    }
    s.cross_k.push_back(floats(env, cross.Get(i), "cross keys", static_cast<size_t>(text_len * dim), qn::Access::kShared));
    s.cross_v.push_back(floats(env, cross.Get(i + 1), "cross values", static_cast<size_t>(text_len * dim), qn::Access::kShared));
  }
  s.cross_ready.assign(ready.data, ready.data + L);

  qarvd::model::Pass p;
  p.frames = frames;
  p.text_len = text_len;
  const size_t latents = static_cast<size_t>(frames * d.in_channels * d.latent_h * d.latent_w);
  p.x = floats(env, info[9], "x", latents);
  p.sinusoid = floats(env, info[11], "sinusoid", static_cast<size_t>(d.freq_dim));
  p.context = floats(env, info[12], "context", static_cast<size_t>(text_len * dim));
  // out is a fresh array of lib/model/native_pass.ts that nobody else holds: written in place.
  p.out = floats(env, info[14], "out", static_cast<size_t>(frames * d.out_channels * d.latent_h * d.latent_w), qn::Access::kShared);
  if (!info[15].IsExternal() || !info[15].As<Napi::External<WorkspaceHolder>>().CheckTypeTag(&kWorkspaceTag)) {
    throw Napi::TypeError::New(env, "native: workspace is not a handle from ditWorkspace");
  }
  WorkspaceHolder ws = *info[15].As<Napi::External<WorkspaceHolder>>().Data();
  if (!ws) throw Napi::Error::New(env, "native: the model state was disposed");
  double* profile = nullptr;
  if (!info[16].IsNull() && !info[16].IsUndefined()) {
    auto pv = qn::typed_array<double>(info, 16, "profile", qn::Access::kOut);
    if (pv.length != 7) throw range(env, "profile has the wrong length");
    profile = pv.data;
  }
  uint8_t* ready_out = ready.data;
  p.attention = static_cast<qarvd::AttentionPrecision>(precision);
  const bool async = qn::boolean(info, 21, "async");
  return qn::dispatch(info, async, [w = std::move(w), s = std::move(s), p, ws, profile, ready_out]() mutable {
    qarvd::model::Profile prof;
    std::lock_guard<std::mutex> lock(ws->busy);
    qarvd::model::forward(w, s, ws->ws, p, profile ? &prof : nullptr);
    for (size_t b = 0; b < s.cross_ready.size(); ++b) ready_out[b] = s.cross_ready[b];
    if (profile) {
      const double add[7] = {prof.linears, prof.attention, prof.norms, prof.activations, prof.copies, prof.total,
                             static_cast<double>(prof.passes)};
      for (int i = 0; i < 7; ++i) profile[i] += add[i];
    }
  });
}

// ditWorkspaceDispose(handle): frees the workspace's buffers now (a pass in flight keeps its own).
Napi::Value DisposeWorkspace(const Napi::CallbackInfo& info) {
  if (!info[0].IsExternal() || !info[0].As<Napi::External<WorkspaceHolder>>().CheckTypeTag(&kWorkspaceTag)) {
    throw Napi::TypeError::New(info.Env(), "native: workspace is not a handle from ditWorkspace");
  }
  info[0].As<Napi::External<WorkspaceHolder>>().Data()->reset();
  return info.Env().Undefined();
}

void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("ditWorkspaceDispose", Napi::Function::New(env, qn::guarded<DisposeWorkspace>, "ditWorkspaceDispose"));
  exports.Set("ditWorkspace", Napi::Function::New(env, qn::guarded<NewWorkspace>, "ditWorkspace"));
  exports.Set("ditForward", Napi::Function::New(env, qn::binding<Forward, 21>, "ditForward"));
}

}  // namespace

QARVD_EXPORTS(Export);
