// Helpers shared by the binding files: typed-array views, sync-or-async dispatch, errors.
//
// Binding functions take already-validated arguments from the TypeScript layer (lib/native), write
// their results into output arrays that TypeScript allocated, and either run now or return a
// Promise that resolves when the work, done on the libuv pool, is finished. Kernels report broken
// invariants by throwing; the exception type picks the JavaScript error class.
#pragma once
#include <napi.h>

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>

namespace qarvd::napi {

template <typename T> struct TypedArrayKind;
template <> struct TypedArrayKind<float> { static constexpr napi_typedarray_type value = napi_float32_array; };
template <> struct TypedArrayKind<double> { static constexpr napi_typedarray_type value = napi_float64_array; };
template <> struct TypedArrayKind<int8_t> { static constexpr napi_typedarray_type value = napi_int8_array; };
template <> struct TypedArrayKind<uint8_t> { static constexpr napi_typedarray_type value = napi_uint8_array; };
template <> struct TypedArrayKind<int16_t> { static constexpr napi_typedarray_type value = napi_int16_array; };
template <> struct TypedArrayKind<uint16_t> { static constexpr napi_typedarray_type value = napi_uint16_array; };
template <> struct TypedArrayKind<int32_t> { static constexpr napi_typedarray_type value = napi_int32_array; };
template <> struct TypedArrayKind<uint32_t> { static constexpr napi_typedarray_type value = napi_uint32_array; };
template <> struct TypedArrayKind<int64_t> { static constexpr napi_typedarray_type value = napi_bigint64_array; };

// A typed array argument seen as a pointer and a length (in elements).
template <typename T>
struct View {
  T* data;
  size_t length;
};

// Reads argument `index` as a typed array of element type T; throws a TypeError naming `name`
// otherwise. The view stays valid while the JS array is alive (dispatch() pins all arguments).
template <typename T>
View<T> typed_array(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = info[index];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != TypedArrayKind<T>::value) {
    throw Napi::TypeError::New(info.Env(), std::string("native: argument ") + name +
                                               " has the wrong typed-array type");
  }
  auto arr = v.As<Napi::TypedArray>();
  auto* base = static_cast<uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset();
  return View<T>{reinterpret_cast<T*>(base), arr.ElementLength()};
}

// Any typed array as raw bytes (for kernels that take a dtype argument).
View<uint8_t> bytes(const Napi::CallbackInfo& info, size_t index, const char* name);

// Throws a RangeError "native: <what>" unless ok: for invariants (lengths against shapes) that the
// TypeScript layer has already checked, re-checked here so that memory is never overrun.
inline void require(const Napi::CallbackInfo& info, bool ok, const std::string& what) {
  if (!ok) throw Napi::RangeError::New(info.Env(), "native: " + what);
}

int64_t integer(const Napi::CallbackInfo& info, size_t index, const char* name);
double number(const Napi::CallbackInfo& info, size_t index, const char* name);
bool boolean(const Napi::CallbackInfo& info, size_t index, const char* name);
std::string string(const Napi::CallbackInfo& info, size_t index, const char* name);

// Runs `work` on this thread (async == false, returns undefined) or on the libuv pool, returning a
// Promise. In the async case every argument of `info` is kept alive until the work is done.
Napi::Value dispatch(const Napi::CallbackInfo& info, bool async, std::function<void()> work);

// Converts the exception in flight (std::invalid_argument -> TypeError, std::out_of_range and
// std::range_error -> RangeError, others -> Error) into a JavaScript error object.
Napi::Error to_js_error(Napi::Env env, std::exception_ptr error);

// Wraps a binding so that standard exceptions thrown by its argument checks become JavaScript
// errors instead of reaching std::terminate (node-addon-api only converts Napi::Error).
template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  try {
    return F(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw to_js_error(info.Env(), std::current_exception());
  }
}

// Registration of binding files: each file calls QARVD_EXPORTS(fn) with a function that adds its
// exports; addon.cc calls every registered function once when the module loads.
using ExportFn = void (*)(Napi::Env env, Napi::Object exports);
struct Registration {
  Registration(const char* name, ExportFn fn);
};
void register_all(Napi::Env env, Napi::Object exports);

}  // namespace qarvd::napi

#define QARVD_EXPORTS_CAT2(a, b) a##b
#define QARVD_EXPORTS_CAT(a, b) QARVD_EXPORTS_CAT2(a, b)
#define QARVD_EXPORTS(fn) \
  static ::qarvd::napi::Registration QARVD_EXPORTS_CAT(qarvd_registration_, __LINE__)(#fn, fn)
