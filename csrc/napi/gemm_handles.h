// The native handles of packed GEMM weights (napi Externals, type-tagged with their kind), shared by
// the GEMM bindings and the model pass that runs them. The garbage collector frees the weights with
// the JS object that holds the handle; V8 is told their size so that it collects under memory
// pressure. A handle of one kind passed where another is expected is a TypeError, not a misread buffer.
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "../kernels/gemm_f32.h"
#include "../kernels/gemm_int.h"
#include "util.h"

namespace qarvd::napi {

constexpr napi_type_tag kF32Tag = {0x7161727664663332ULL, 0x67656d6d5f663332ULL};  // "qarvdf32", "gemm_f32"
constexpr napi_type_tag kIntTag = {0x7161727664696e74ULL, 0x67656d6d5f696e74ULL};  // "qarvdint", "gemm_int"

// The handle's payload: the packed weights and the bytes reported to V8 for them. The weights are
// shared with async work in flight (keep_alive), so that dispose() or the finalizer only drops the
// handle's reference; an async call keeps the weights until its work is done.
template <typename T>
struct Holder {
  std::shared_ptr<T> value;
  int64_t reported = 0;
};

template <typename T>
Napi::External<Holder<T>> wrap(Napi::Env env, std::shared_ptr<T> value, const napi_type_tag& tag, int64_t bytes) {
  auto* holder = new Holder<T>{std::move(value), bytes};
  auto ext = Napi::External<Holder<T>>::New(env, holder, [](Napi::Env env, Holder<T>* h) {
    Napi::MemoryManagement::AdjustExternalMemory(env, -h->reported);
    delete h;
  });
  ext.TypeTag(&tag);
  Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
  return ext;
}

// The holder behind `v` if it is a handle of this kind, else null.
template <typename T>
Holder<T>* raw_holder_of(Napi::Value v, const napi_type_tag& tag) {
  if (!v.IsExternal() || !v.As<Napi::External<Holder<T>>>().CheckTypeTag(&tag)) return nullptr;
  return v.As<Napi::External<Holder<T>>>().Data();
}

// As raw_holder_of, for a handle that is used now: a disposed one is an Error, and an async call
// keeps the weights alive until its work is done.
template <typename T>
Holder<T>* holder_of(Napi::Value v, const napi_type_tag& tag) {
  Holder<T>* h = raw_holder_of<T>(v, tag);
  if (!h) return nullptr;
  if (!h->value) throw Napi::Error::New(v.Env(), "native: the layer was disposed");
  keep_alive(h->value);
  return h;
}

template <typename T>
Holder<T>& unwrap(const Napi::CallbackInfo& info, size_t index, const napi_type_tag& tag, const char* what) {
  Holder<T>* h = holder_of<T>(info[index], tag);
  if (!h) {
    throw Napi::TypeError::New(info.Env(), std::string("native: argument ") + std::to_string(index) + " is not " + what);
  }
  return *h;
}

// Drops the handle's weights now (idempotent) and tells V8 that their memory is gone.
template <typename T>
bool dispose(Napi::Env env, Napi::Value v, const napi_type_tag& tag) {
  Holder<T>* h = raw_holder_of<T>(v, tag);
  if (!h) return false;
  h->value.reset();
  if (h->reported) Napi::MemoryManagement::AdjustExternalMemory(env, -h->reported);
  h->reported = 0;
  return true;
}

}  // namespace qarvd::napi
