#include "util.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <utility>
#include <vector>

namespace qarvd::napi {

namespace {

// Native memory for a staged array (64-byte aligned, as the kernels' own buffers). Freed blocks of
// 1 MiB to 64 MiB are kept in a small cache for the next call (an async GEMM stages inputs of tens of
// megabytes on every call; fresh pages would be faulted in and zeroed by the kernel each time).
constexpr size_t kCacheMin = size_t(1) << 20, kCacheMax = size_t(64) << 20, kCacheTotal = size_t(160) << 20;
constexpr int kCacheBlocks = 4;
std::mutex cache_mutex;
std::vector<std::pair<void*, size_t>> cache;  // (pointer, capacity)
size_t cached_bytes = 0;

struct Block {
  void* p = nullptr;
  size_t capacity = 0;
  explicit Block(size_t bytes) {
    if (bytes == 0) return;
    capacity = (bytes + 63) / 64 * 64;
    if (capacity >= kCacheMin && capacity <= kCacheMax) {
      std::lock_guard<std::mutex> lock(cache_mutex);
      size_t best = cache.size();
      for (size_t i = 0; i < cache.size(); ++i) {
        if (cache[i].second >= capacity && cache[i].second <= 2 * capacity && (best == cache.size() || cache[i].second < cache[best].second)) best = i;
      }
      if (best < cache.size()) {
        p = cache[best].first;
        capacity = cache[best].second;
        cached_bytes -= capacity;
        cache.erase(cache.begin() + static_cast<std::ptrdiff_t>(best));
        return;
      }
    }
    p = std::aligned_alloc(64, capacity);
    if (!p) throw std::bad_alloc();
  }
  ~Block() {
    if (!p) return;
    if (capacity >= kCacheMin && capacity <= kCacheMax) {
      std::lock_guard<std::mutex> lock(cache_mutex);
      if (static_cast<int>(cache.size()) < kCacheBlocks && cached_bytes + capacity <= kCacheTotal) {
        cache.emplace_back(p, capacity);
        cached_bytes += capacity;
        return;
      }
    }
    std::free(p);
  }
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;
};

// One typed array of an async call: the copy the work uses, and where the result goes back.
struct Staged {
  std::string name;
  Access access;
  std::unique_ptr<Block> copy;  // null for kShared
  napi_ref array = nullptr;     // kOut and kShared: the typed array, to copy back into / keep alive
  size_t bytes = 0;
};

// The state of one async call: built while the binding reads its arguments, then owned by the work.
struct Pending {
  std::vector<Staged> arrays;
  std::vector<std::shared_ptr<void>> keep;
  std::vector<napi_ref> pinned;  // the call's object and External arguments, kept from collection
};

struct Frame {
  napi_env env;
  bool async;
  std::unique_ptr<Pending> pending;
};

thread_local Frame* current = nullptr;

void release(napi_env env, Pending& p) {
  for (auto& s : p.arrays) {
    if (s.array) napi_delete_reference(env, s.array);
    s.array = nullptr;
  }
  for (napi_ref r : p.pinned) napi_delete_reference(env, r);
  p.pinned.clear();
}

}  // namespace

CallScope::CallScope(Napi::Env env, bool async) {
  auto* f = new Frame{env, async, async ? std::make_unique<Pending>() : nullptr};
  current = f;
}

CallScope::~CallScope() {
  Frame* f = current;
  current = nullptr;
  if (f && f->pending) release(f->env, *f->pending);  // not handed to a work: an argument check threw
  delete f;
}

View<uint8_t> stage(Napi::Env env, Napi::Value v, napi_typedarray_type type, size_t element_bytes, const std::string& name,
                    Access access, size_t limit) {
  const bool any = type == static_cast<napi_typedarray_type>(-1);
  if (!v.IsTypedArray()) {
    throw Napi::TypeError::New(env, "native: argument " + name + (any ? " must be a typed array" : " has the wrong typed-array type"));
  }
  napi_typedarray_type actual;
  size_t length = 0, offset = 0;
  void* data = nullptr;
  napi_value buffer;
  if (napi_get_typedarray_info(env, v, &actual, &length, &data, &buffer, &offset) != napi_ok) {
    throw Napi::TypeError::New(env, "native: argument " + name + " is not a readable typed array");
  }
  if (!any && actual != type) throw Napi::TypeError::New(env, "native: argument " + name + " has the wrong typed-array type");
  bool detached = false;
  if (napi_is_detached_arraybuffer(env, buffer, &detached) != napi_ok || detached) {
    throw Napi::TypeError::New(env, "native: argument " + name + " is detached (its ArrayBuffer was transferred)");
  }
  size_t elem = element_bytes;
  if (any) {
    switch (actual) {
      case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: elem = 1; break;
      case napi_int16_array: case napi_uint16_array: elem = 2; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
      default: elem = 4;
    }
  }
  if (limit < length && access == Access::kIn) length = limit;  // only a prefix is read
  const size_t nbytes = length * elem;
  if (any) length = nbytes;
  if (nbytes > 0 && data == nullptr) throw Napi::TypeError::New(env, "native: argument " + name + " has no data");
  Frame* f = current;
  if (!f || !f->async) return View<uint8_t>{static_cast<uint8_t*>(data), length};

  Staged s;
  s.name = name;
  s.access = access;
  s.bytes = nbytes;
  uint8_t* use = static_cast<uint8_t*>(data);
  if (access != Access::kShared) {
    s.copy = std::make_unique<Block>(nbytes);
    if (nbytes) std::memcpy(s.copy->p, data, nbytes);
    use = static_cast<uint8_t*>(s.copy->p);
  }
  if (access != Access::kIn) {
    if (napi_create_reference(env, v, 1, &s.array) != napi_ok) throw Napi::Error::New(env, "native: cannot reference " + name);
  }
  f->pending->arrays.push_back(std::move(s));
  return View<uint8_t>{use, length};
}

View<uint8_t> bytes(const Napi::CallbackInfo& info, size_t index, const char* name, Access access) {
  return stage(info.Env(), info[index], static_cast<napi_typedarray_type>(-1), 1, name, access);
}

void keep_alive(std::shared_ptr<void> p) {
  Frame* f = current;
  if (f && f->async && p) f->pending->keep.push_back(std::move(p));
}

int64_t integer(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = info[index];
  if (!v.IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string("native: argument ") + name + " must be a number");
  }
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!(std::fabs(d) < 9007199254740992.0) || d != std::floor(d)) {
    throw Napi::RangeError::New(info.Env(), std::string("native: argument ") + name + " must be an integer");
  }
  return static_cast<int64_t>(d);
}

double number(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = info[index];
  if (!v.IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string("native: argument ") + name + " must be a number");
  }
  return v.As<Napi::Number>().DoubleValue();
}

bool boolean(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = info[index];
  if (!v.IsBoolean()) {
    throw Napi::TypeError::New(info.Env(), std::string("native: argument ") + name + " must be a boolean");
  }
  return v.As<Napi::Boolean>().Value();
}

std::string string(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = info[index];
  if (!v.IsString()) {
    throw Napi::TypeError::New(info.Env(), std::string("native: argument ") + name + " must be a string");
  }
  return v.As<Napi::String>().Utf8Value();
}

Napi::Error to_js_error(Napi::Env env, std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::invalid_argument& e) {
    return Napi::TypeError::New(env, e.what());
  } catch (const std::out_of_range& e) {
    return Napi::RangeError::New(env, e.what());
  } catch (const std::range_error& e) {
    return Napi::RangeError::New(env, e.what());
  } catch (const std::bad_alloc&) {
    return Napi::RangeError::New(env, "native: out of memory");
  } catch (const std::exception& e) {
    return Napi::Error::New(env, e.what());
  } catch (...) {
    return Napi::Error::New(env, "native: unknown error");
  }
}

namespace {

// The message of an exception, for a rejection built with the C API.
void error_of(std::exception_ptr error, const char** kind, std::string* message) {
  try {
    std::rethrow_exception(error);
  } catch (const std::invalid_argument& e) {
    *kind = "type", *message = e.what();
  } catch (const std::out_of_range& e) {
    *kind = "range", *message = e.what();
  } catch (const std::range_error& e) {
    *kind = "range", *message = e.what();
  } catch (const std::bad_alloc&) {
    *kind = "range", *message = "native: out of memory";
  } catch (const std::exception& e) {
    *kind = "error", *message = e.what();
  } catch (...) {
    *kind = "error", *message = "native: unknown error";
  }
}

// An async call on the libuv pool, driven by the raw napi C API so that its completion never throws
// (node-addon-api's AsyncWorker rethrows a failed Resolve as a C++ exception, which reaches
// std::terminate when a worker thread's environment is being torn down).
struct Work {
  napi_async_work work = nullptr;
  napi_deferred deferred = nullptr;
  std::function<void()> fn;
  std::exception_ptr error;
  std::unique_ptr<Pending> pending;
};

void execute(napi_env, void* data) {
  auto* w = static_cast<Work*>(data);
  try {
    w->fn();
  } catch (...) {
    w->error = std::current_exception();
  }
}

napi_value make_error(napi_env env, const char* kind, const std::string& message) {
  napi_value msg = nullptr, err = nullptr;
  if (napi_create_string_utf8(env, message.c_str(), message.size(), &msg) != napi_ok) return nullptr;
  napi_status st = std::strcmp(kind, "type") == 0    ? napi_create_type_error(env, nullptr, msg, &err)
                   : std::strcmp(kind, "range") == 0 ? napi_create_range_error(env, nullptr, msg, &err)
                                                     : napi_create_error(env, nullptr, msg, &err);
  return st == napi_ok ? err : nullptr;
}

void complete(napi_env env, napi_status status, void* data) {
  std::unique_ptr<Work> w(static_cast<Work*>(data));
  napi_handle_scope scope = nullptr;
  const bool scoped = napi_open_handle_scope(env, &scope) == napi_ok;
  const char* kind = "error";
  std::string message;
  bool failed = false;
  if (status != napi_ok) {
    failed = true, message = "native: the async call was cancelled";
  } else if (w->error) {
    failed = true;
    error_of(w->error, &kind, &message);
  }
  // Results go back into the caller's arrays (those still attached and of the same size).
  for (auto& s : w->pending->arrays) {
    if (!s.array) continue;
    napi_value v = nullptr;
    napi_typedarray_type t;
    size_t length = 0, offset = 0;
    void* dst = nullptr;
    napi_value buffer = nullptr;
    bool detached = true;
    const bool ok = napi_get_reference_value(env, s.array, &v) == napi_ok && v != nullptr &&
                    napi_get_typedarray_info(env, v, &t, &length, &dst, &buffer, &offset) == napi_ok &&
                    napi_is_detached_arraybuffer(env, buffer, &detached) == napi_ok && !detached;
    size_t now = 0;
    if (ok) {
      size_t elem = 1;
      switch (t) {
        case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: elem = 1; break;
        case napi_int16_array: case napi_uint16_array: elem = 2; break;
        case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
        default: elem = 4;
      }
      now = length * elem;
    }
    if (!ok || now != s.bytes) {
      if (!failed) {
        failed = true, kind = "error";
        message = "native: " + s.name + " was detached or resized while the async call ran";
      }
    } else if (s.copy && s.bytes && !failed) {
      std::memcpy(dst, s.copy->p, s.bytes);
    }
  }
  release(env, *w->pending);
  if (failed) {
    napi_value err = make_error(env, kind, message);
    if (err) napi_reject_deferred(env, w->deferred, err);
  } else {
    napi_value undefined = nullptr;
    if (napi_get_undefined(env, &undefined) == napi_ok) napi_resolve_deferred(env, w->deferred, undefined);
  }
  napi_delete_async_work(env, w->work);
  if (scoped) napi_close_handle_scope(env, scope);
  // Anything left pending (an environment that cannot run JavaScript any more) is dropped here.
  bool pending_exception = false;
  if (napi_is_exception_pending(env, &pending_exception) == napi_ok && pending_exception) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
}

}  // namespace

void throw_in_flight(napi_env env, std::exception_ptr error) noexcept {
  try {
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;  // already thrown
    napi_value err = nullptr;
    try {
      std::rethrow_exception(error);
    } catch (const Napi::Error& e) {
      // An error object made by the binding (a TypeError naming an argument, say), or the empty one
      // node-addon-api makes for a failed napi call (then the environment is going away).
      try {
        if (!e.IsEmpty()) err = e.Value();
      } catch (...) {
        err = nullptr;
      }
      if (!err) {
        const char* what = e.what();
        if (!what || !*what) return;
        err = make_error(env, "error", what);
      }
    } catch (...) {
      const char* kind = "error";
      std::string message;
      error_of(std::current_exception(), &kind, &message);
      err = make_error(env, kind, message);
    }
    if (err) napi_throw(env, err);
  } catch (...) {
    // Nothing can be thrown any more; the call returns undefined.
  }
}

namespace {

std::vector<std::pair<const char*, ExportFn>>& registry() {
  static std::vector<std::pair<const char*, ExportFn>> entries;
  return entries;
}

}  // namespace

Napi::Value dispatch(const Napi::CallbackInfo& info, bool async, std::function<void()> work) {
  Napi::Env env = info.Env();
  if (!async) {
    try {
      work();
    } catch (...) {
      throw to_js_error(env, std::current_exception());
    }
    return env.Undefined();
  }
  Frame* f = current;
  if (!f || !f->async || !f->pending) {
    throw Napi::Error::New(env, "native: internal error: an async call whose binding was not registered as async");
  }
  auto w = std::make_unique<Work>();
  w->fn = std::move(work);
  napi_value promise = nullptr, name = nullptr;
  if (napi_create_promise(env, &w->deferred, &promise) != napi_ok) throw Napi::Error::New(env, "native: cannot create a Promise");
  if (napi_create_string_utf8(env, "qarvd", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, nullptr, name, execute, complete, w.get(), &w->work) != napi_ok) {
    napi_value err = make_error(env, "error", "native: cannot create the async work");
    if (err) napi_reject_deferred(env, w->deferred, err);
    return Napi::Value(env, promise);
  }
  w->pending = std::move(f->pending);
  f->pending = std::make_unique<Pending>();
  // The arguments that are objects or Externals (handles whose finalizers free native state, such
  // as device buffers) stay reachable until the work is done.
  for (size_t i = 0; i < info.Length(); ++i) {
    napi_valuetype type;
    if (napi_typeof(env, info[i], &type) != napi_ok || (type != napi_object && type != napi_external)) continue;
    napi_ref r = nullptr;
    if (napi_create_reference(env, info[i], 1, &r) == napi_ok) w->pending->pinned.push_back(r);
  }
  if (napi_queue_async_work(env, w->work) != napi_ok) {
    // Not queued: settle the Promise now and release what the work held.
    release(env, *w->pending);
    napi_delete_async_work(env, w->work);
    napi_value err = make_error(env, "error", "native: cannot queue the async work");
    if (err) napi_reject_deferred(env, w->deferred, err);
    return Napi::Value(env, promise);
  }
  w.release();
  return Napi::Value(env, promise);
}

Registration::Registration(const char* name, ExportFn fn) { registry().emplace_back(name, fn); }

void register_all(Napi::Env env, Napi::Object exports) {
  for (auto& entry : registry()) entry.second(env, exports);
}

}  // namespace qarvd::napi
