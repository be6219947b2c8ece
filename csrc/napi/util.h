// Helpers shared by the binding files: typed-array views, sync-or-async dispatch, errors.
//
// Binding functions take already-validated arguments from the TypeScript layer (lib/native), write
// their results into output arrays that TypeScript allocated, and either run now or return a
// Promise that resolves when the work, done on the libuv pool, is finished. Kernels report broken
// invariants by throwing; the exception type picks the JavaScript error class.
//
// Every binding is registered through binding<F, AsyncIndex> (or guarded<F>), which turns every C++
// exception into a JavaScript error, so that nothing a caller passes can reach std::terminate.
//
// Async calls never touch JavaScript memory from the libuv pool. A typed array read with
// typed_array() / bytes() during an async call is copied into native memory that the work owns
// (Access::kIn), and an output (Access::kOut) is also copied back into its typed array when the work
// completes, if that array is still attached and of the same size (else the Promise rejects). So a
// caller that transfers (detaches) an input's ArrayBuffer, or lets it be collected, while the work
// runs cannot make the work read freed memory. Native handles (packed weights, workspaces) are held
// by shared pointers that the work keeps, so dispose() or a finalizer during the work only drops the
// handle's reference. The completion runs through the raw napi C API and never throws: when the
// environment is shutting down (a worker ended mid-call), it releases what it holds and returns.
#pragma once
#include <napi.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

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

// How the work uses a typed array: read only (kIn), or written (kOut: copied in and, for async
// work, copied back when it completes). kShared: library-owned buffers too large to copy per call
// (the model's KV caches), used in place; the TypeScript layer marks them untransferable and keeps
// them alive, and the completion checks that they are still attached.
enum class Access { kIn, kOut, kShared };

// The array behind a napi value as raw bytes: checked to be a typed array of `type` (or any type when
// `type` is napi_typedarray_type(-1)) that is not detached; staged per the current call (see above).
// `length` is in elements (bytes for any type). With `limit`, only the first `limit` elements are
// used (and staged): the view's length is the smaller of the array's length and `limit`.
View<uint8_t> stage(Napi::Env env, Napi::Value v, napi_typedarray_type type, size_t element_bytes, const std::string& name,
                    Access access, size_t limit = SIZE_MAX);

// Reads argument `index` as a typed array of element type T; throws a TypeError naming `name`
// otherwise (or when its buffer is detached).
template <typename T>
View<T> typed_array(const Napi::CallbackInfo& info, size_t index, const char* name, Access access = Access::kIn,
                    size_t limit = SIZE_MAX) {
  View<uint8_t> b = stage(info.Env(), info[index], TypedArrayKind<T>::value, sizeof(T), name, access, limit);
  return View<T>{reinterpret_cast<T*>(b.data), b.length};
}
template <typename T>
View<T> typed_array_of(Napi::Env env, Napi::Value v, const std::string& name, Access access = Access::kIn) {
  View<uint8_t> b = stage(env, v, TypedArrayKind<T>::value, sizeof(T), name, access);
  return View<T>{reinterpret_cast<T*>(b.data), b.length};
}

// Any typed array as raw bytes (for kernels that take a dtype argument).
View<uint8_t> bytes(const Napi::CallbackInfo& info, size_t index, const char* name, Access access = Access::kIn);

// Keeps a native object alive until the current async call's work is done (no-op for sync calls).
void keep_alive(std::shared_ptr<void> p);

// Throws a RangeError "native: <what>" unless ok: for invariants (lengths against shapes) that the
// TypeScript layer has already checked, re-checked here so that memory is never overrun.
inline void require(const Napi::CallbackInfo& info, bool ok, const std::string& what) {
  if (!ok) throw Napi::RangeError::New(info.Env(), "native: " + what);
}

// Integer arguments must be numbers holding integers of magnitude below 2^53.
int64_t integer(const Napi::CallbackInfo& info, size_t index, const char* name);
double number(const Napi::CallbackInfo& info, size_t index, const char* name);
bool boolean(const Napi::CallbackInfo& info, size_t index, const char* name);
std::string string(const Napi::CallbackInfo& info, size_t index, const char* name);

// Runs `work` on this thread (async == false, returns undefined) or on the libuv pool, returning a
// Promise. The async case needs the call to have been registered with binding<F, AsyncIndex> naming
// that flag (or kAlways), so that its typed arrays were staged.
Napi::Value dispatch(const Napi::CallbackInfo& info, bool async, std::function<void()> work);

// Converts the exception in flight (std::invalid_argument -> TypeError, std::out_of_range and
// std::range_error -> RangeError, others -> Error) into a JavaScript error object.
Napi::Error to_js_error(Napi::Env env, std::exception_ptr error);

// The per-call state of a binding (the staged arrays of an async call); see binding().
class CallScope {
 public:
  CallScope(Napi::Env env, bool async);
  ~CallScope();
  CallScope(const CallScope&) = delete;
  CallScope& operator=(const CallScope&) = delete;
};

constexpr int kNever = -1;   // the binding never returns a Promise
constexpr int kAlways = -2;  // the binding always returns a Promise

// Registers F with a call scope (async when argument AsyncIndex is `true`, or always / never), and
// turns standard exceptions thrown by its argument checks or kernels into JavaScript errors instead
// of letting them reach std::terminate (node-addon-api only converts Napi::Error).
// Throws the exception in flight as a JavaScript error through the C API, never throwing itself:
// when the environment is being torn down (a worker terminated in the middle of a call) the napi
// calls fail, and rethrowing a Napi::Error from there would reach std::terminate.
void throw_in_flight(napi_env env, std::exception_ptr error) noexcept;

template <Napi::Value (*F)(const Napi::CallbackInfo&), int AsyncIndex = kNever>
Napi::Value binding(const Napi::CallbackInfo& info) {
  napi_env env = info.Env();
  try {
    bool async = AsyncIndex == kAlways;
    if constexpr (AsyncIndex >= 0) {
      Napi::Value flag = info[AsyncIndex];
      async = flag.IsBoolean() && flag.As<Napi::Boolean>().Value();
    }
    CallScope scope(env, async);
    return F(info);
  } catch (...) {
    throw_in_flight(env, std::current_exception());
  }
  return Napi::Value();
}

template <Napi::Value (*F)(const Napi::CallbackInfo&)>
Napi::Value guarded(const Napi::CallbackInfo& info) {
  return binding<F, kNever>(info);
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
