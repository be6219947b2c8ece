// Bindings of the GEMM family (csrc/kernels/gemm_f32.h, gemm_int.h). Packed weights live in native
// memory owned by type-tagged napi Externals (gemm_handles.h).
#include <memory>
#include <string>

#include "../kernels/gemm_f32.h"
#include "../kernels/gemm_int.h"
#include "gemm_handles.h"
#include "util.h"

namespace {

using qarvd::gemm::PackedF32;
using qarvd::gemm::PackedInt;
namespace qn = qarvd::napi;

using qn::Holder;
using qn::kF32Tag;
using qn::kIntTag;
using qn::unwrap;
using qn::wrap;

PackedF32& f32_layer(const Napi::CallbackInfo& info, size_t index) {
  return *unwrap<PackedF32>(info, index, kF32Tag, "float32 weights packed by gemmF32Pack").value;
}
Holder<PackedInt>& int_holder(const Napi::CallbackInfo& info, size_t index) {
  return unwrap<PackedInt>(info, index, kIntTag, "a quantized layer made by gemmIntCreate");
}

// Runs fn, turning C++ exceptions (bad_alloc, kernel invariant checks) into JS errors.
template <typename F>
auto guard(const Napi::CallbackInfo& info, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw qn::to_js_error(info.Env(), std::current_exception());
  }
}

bool is_null(const Napi::CallbackInfo& info, size_t index) { return info[index].IsNull() || info[index].IsUndefined(); }

template <typename T>
const T* optional_array(const Napi::CallbackInfo& info, size_t index, const char* name, size_t length) {
  if (is_null(info, index)) return nullptr;
  auto v = qn::typed_array<T>(info, index, name);
  if (v.length != length) {
    throw Napi::RangeError::New(info.Env(), std::string("native: ") + name + " has " + std::to_string(v.length) +
                                                " elements, expected " + std::to_string(length));
  }
  return v.data;
}

template <typename T>
T* array_of(const Napi::CallbackInfo& info, size_t index, const char* name, size_t length, qn::Access access = qn::Access::kIn) {
  auto v = qn::typed_array<T>(info, index, name, access);
  if (v.length != length) {
    throw Napi::RangeError::New(info.Env(), std::string("native: ") + name + " has " + std::to_string(v.length) +
                                                " elements, expected " + std::to_string(length));
  }
  return v.data;
}

int64_t nonneg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  int64_t v = qn::integer(info, index, name);
  if (v < 0) throw Napi::RangeError::New(info.Env(), std::string("native: ") + name + " must not be negative");
  return v;
}

// gemmF32Pack(w: Float32Array [n*k], n, k) -> handle
Napi::Value F32Pack(const Napi::CallbackInfo& info) {
  const int64_t n = nonneg(info, 1, "n"), k = nonneg(info, 2, "k");
  const float* w = array_of<float>(info, 0, "w", static_cast<size_t>(n * k));
  auto packed = guard(info, [&] { return std::make_unique<PackedF32>(qarvd::gemm::pack_f32(w, n, k)); });
  const int64_t bytes = static_cast<int64_t>(packed->panels.bytes());
  return wrap<PackedF32>(info.Env(), std::move(packed), kF32Tag, bytes);
}

// gemmF32Forward(handle, x: Float32Array [m*k], m, bias: Float32Array [n] | null, y: Float32Array [m*n], async)
Napi::Value F32Forward(const Napi::CallbackInfo& info) {
  const PackedF32& w = f32_layer(info, 0);
  const int64_t m = nonneg(info, 2, "m");
  const float* x = array_of<float>(info, 1, "x", static_cast<size_t>(m * w.k));
  const float* bias = optional_array<float>(info, 3, "bias", static_cast<size_t>(w.n));
  // y is a fresh array of the TypeScript layer that nobody else holds: written in place.
  float* y = array_of<float>(info, 4, "y", static_cast<size_t>(m * w.n), qn::Access::kShared);
  return qn::dispatch(info, qn::boolean(info, 5, "async"), [&w, x, m, bias, y] { qarvd::gemm::linear_f32(x, m, w, bias, y); });
}

// gemmIntCreate(n, k, perm: Int32Array [k] | null) -> handle
Napi::Value IntCreate(const Napi::CallbackInfo& info) {
  const int64_t n = nonneg(info, 0, "n"), k = nonneg(info, 1, "k");
  const int32_t* perm = optional_array<int32_t>(info, 2, "perm", static_cast<size_t>(k));
  auto layer = guard(info, [&] { return qarvd::gemm::make_int_layer(n, k, perm); });
  const int64_t bytes = static_cast<int64_t>(layer->weight_bytes());
  return wrap<PackedInt>(info.Env(), std::move(layer), kIntTag, bytes);
}

// gemmIntAddSegment(handle, spec: Int32Array [k0, len, bits, group, actDynamic, actDtype, actSymmetric,
//   actZeroPoint, weightSymmetric], actScale, w: Float32Array [n*k] | null, q: Int8Array [n*len] | null,
//   scaleIn | null, zeroIn | null, scaleOut | null, zeroOut | null)
// Exactly one of w (quantize from float) and q (already quantized, with scaleIn and zeroIn) is given.
Napi::Value IntAddSegment(const Napi::CallbackInfo& info) {
  Holder<PackedInt>& holder = int_holder(info, 0);
  PackedInt& layer = *holder.value;
  const int32_t* sp = array_of<int32_t>(info, 1, "spec", 9);
  qarvd::gemm::SegmentSpec spec;
  spec.k0 = sp[0];
  spec.len = sp[1];
  spec.bits = sp[2];
  spec.group = sp[3];
  spec.act.dynamic = sp[4] != 0;
  spec.act.dtype = static_cast<qarvd::QType>(sp[5]);
  spec.act.symmetric = sp[6] != 0;
  spec.act.zero_point = sp[7];
  spec.act.scale = static_cast<float>(qn::number(info, 2, "actScale"));
  const bool weight_symmetric = sp[8] != 0;
  if (spec.len <= 0 || spec.group < 0) throw Napi::RangeError::New(info.Env(), "native: bad segment spec");
  const int64_t n = layer.n;
  const int64_t ngroups = spec.group > 0 ? (spec.len + spec.group - 1) / spec.group : 1;
  const size_t meta = static_cast<size_t>(n * ngroups);
  const float* w = optional_array<float>(info, 3, "w", static_cast<size_t>(n * layer.k));
  const int8_t* q = optional_array<int8_t>(info, 4, "q", static_cast<size_t>(n * spec.len));
  const float* scale_in = optional_array<float>(info, 5, "scaleIn", meta);
  const int32_t* zero_in = optional_array<int32_t>(info, 6, "zeroIn", meta);
  float* scale_out = is_null(info, 7) ? nullptr : array_of<float>(info, 7, "scaleOut", meta);
  int32_t* zero_out = is_null(info, 8) ? nullptr : array_of<int32_t>(info, 8, "zeroOut", meta);
  if ((w == nullptr) == (q == nullptr) || (q && (!scale_in || !zero_in)) || ((scale_in == nullptr) != (zero_in == nullptr))) {
    throw Napi::TypeError::New(info.Env(), "native: give either w, or q with scaleIn and zeroIn");
  }
  guard(info, [&] {
    if (w) {
      qarvd::gemm::add_segment_float(layer, spec, w, weight_symmetric, scale_in, zero_in, scale_out, zero_out);
    } else {
      qarvd::gemm::add_segment_quantized(layer, spec, q, scale_in, zero_in);
    }
  });
  const int64_t bytes = static_cast<int64_t>(layer.weight_bytes());
  Napi::MemoryManagement::AdjustExternalMemory(info.Env(), bytes - holder.reported);
  holder.reported = bytes;
  return info.Env().Undefined();
}

// gemmIntInfo(handle) -> { bytes, groups: number[] (per segment) }
Napi::Value IntInfo(const Napi::CallbackInfo& info) {
  const PackedInt& layer = *int_holder(info, 0).value;
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("bytes", static_cast<double>(layer.weight_bytes()));
  Napi::Array groups = Napi::Array::New(info.Env(), layer.segs.size());
  for (size_t s = 0; s < layer.segs.size(); ++s) groups.Set(static_cast<uint32_t>(s), static_cast<double>(layer.segs[s].ngroups));
  out.Set("groups", groups);
  return out;
}

// gemmIntExport(handle, seg, q: Int8Array [n*len], scale: Float32Array [n*G], zero: Int32Array [n*G])
Napi::Value IntExport(const Napi::CallbackInfo& info) {
  const PackedInt& layer = *int_holder(info, 0).value;
  const int64_t s = nonneg(info, 1, "seg");
  if (s >= static_cast<int64_t>(layer.segs.size())) throw Napi::RangeError::New(info.Env(), "native: no such segment");
  const auto& seg = layer.segs[s];
  int8_t* q = array_of<int8_t>(info, 2, "q", static_cast<size_t>(layer.n * seg.spec.len));
  float* scale = array_of<float>(info, 3, "scale", static_cast<size_t>(layer.n * seg.ngroups));
  int32_t* zero = array_of<int32_t>(info, 4, "zero", static_cast<size_t>(layer.n * seg.ngroups));
  guard(info, [&] { qarvd::gemm::export_segment(layer, static_cast<int>(s), q, scale, zero); });
  return info.Env().Undefined();
}

const PackedInt& ready_layer(const Napi::CallbackInfo& info) {
  const PackedInt& layer = *int_holder(info, 0).value;
  if (layer.segs.empty() || layer.segs.back().spec.k0 + layer.segs.back().spec.len != layer.k) {
    throw Napi::Error::New(info.Env(), "native: the quantized layer's segments do not cover its inputs");
  }
  return layer;
}

// gemmIntForward(handle, x, m, bias | null, y, emulated, async)
Napi::Value IntForward(const Napi::CallbackInfo& info) {
  const PackedInt& layer = ready_layer(info);
  const int64_t m = nonneg(info, 2, "m");
  const float* x = array_of<float>(info, 1, "x", static_cast<size_t>(m * layer.k));
  const float* bias = optional_array<float>(info, 3, "bias", static_cast<size_t>(layer.n));
  float* y = array_of<float>(info, 4, "y", static_cast<size_t>(m * layer.n), qn::Access::kShared);  // fresh, unshared
  const bool emulated = qn::boolean(info, 5, "emulated");
  return qn::dispatch(info, qn::boolean(info, 6, "async"), [&layer, x, m, bias, y, emulated] {
    if (emulated) {
      qarvd::gemm::forward_int_emulated(layer, x, m, bias, y);
    } else {
      qarvd::gemm::forward_int(layer, x, m, bias, y, nullptr, nullptr, nullptr);
    }
  });
}

// gemmIntAccumulators(handle, x, m, acc: Int32Array [m*n*G], actScale: Float32Array [m*S], actZero: Int32Array [m*S])
Napi::Value IntAccumulators(const Napi::CallbackInfo& info) {
  const PackedInt& layer = ready_layer(info);
  const int64_t m = nonneg(info, 2, "m");
  const size_t segs = layer.segs.size();
  const float* x = array_of<float>(info, 1, "x", static_cast<size_t>(m * layer.k));
  int32_t* acc = array_of<int32_t>(info, 3, "acc", static_cast<size_t>(m * layer.n * layer.total_groups()));
  float* act_scale = array_of<float>(info, 4, "actScale", static_cast<size_t>(m) * segs);
  int32_t* act_zero = array_of<int32_t>(info, 5, "actZero", static_cast<size_t>(m) * segs);
  return qn::dispatch(info, false, [&layer, x, m, acc, act_scale, act_zero] {
    qarvd::gemm::forward_int(layer, x, m, nullptr, nullptr, acc, act_scale, act_zero);
  });
}

// gemmIntPeak(seconds, out: Float64Array [1], async) -> the best native int8 instruction's name; out[0]
// receives its operations per second on all threads.
Napi::Value IntPeak(const Napi::CallbackInfo& info) {
  const double seconds = qn::number(info, 0, "seconds");
  double* out = array_of<double>(info, 1, "out", 1, qn::Access::kOut);
  const char* isa = "none";
  if (qarvd::isa_native(qarvd::Isa::kAmx)) isa = "amx";
  else if (qarvd::isa_native(qarvd::Isa::kAvx512Vnni)) isa = "avx512vnni";
  Napi::Value done = qn::dispatch(info, qn::boolean(info, 2, "async"), [seconds, out] {
    const char* ignored;
    out[0] = qarvd::gemm::int_peak_ops_per_second(seconds, &ignored);
  });
  Napi::Object result = Napi::Object::New(info.Env());
  result.Set("isa", isa);
  result.Set("done", done);
  return result;
}

// gemmDispose(handle) -> true if it was a GEMM handle: frees its weights now (idempotent); using the
// handle afterwards is an Error. Async work in flight keeps its own reference until it is done.
Napi::Value Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool done = qn::dispose<PackedF32>(env, info[0], kF32Tag) || qn::dispose<PackedInt>(env, info[0], kIntTag);
  return Napi::Boolean::New(env, done);
}

void Export(Napi::Env env, Napi::Object exports) {
  using qn::binding;
  using qn::guarded;
  exports.Set("gemmIntPeak", Napi::Function::New(env, binding<IntPeak, 2>, "gemmIntPeak"));
  exports.Set("gemmF32Pack", Napi::Function::New(env, guarded<F32Pack>, "gemmF32Pack"));
  exports.Set("gemmF32Forward", Napi::Function::New(env, binding<F32Forward, 5>, "gemmF32Forward"));
  exports.Set("gemmIntCreate", Napi::Function::New(env, guarded<IntCreate>, "gemmIntCreate"));
  exports.Set("gemmIntAddSegment", Napi::Function::New(env, guarded<IntAddSegment>, "gemmIntAddSegment"));
  exports.Set("gemmIntInfo", Napi::Function::New(env, guarded<IntInfo>, "gemmIntInfo"));
  exports.Set("gemmIntExport", Napi::Function::New(env, guarded<IntExport>, "gemmIntExport"));
  exports.Set("gemmIntForward", Napi::Function::New(env, binding<IntForward, 6>, "gemmIntForward"));
  exports.Set("gemmIntAccumulators", Napi::Function::New(env, guarded<IntAccumulators>, "gemmIntAccumulators"));
  exports.Set("gemmDispose", Napi::Function::New(env, guarded<Dispose>, "gemmDispose"));
}

}  // namespace

QARVD_EXPORTS(Export);
