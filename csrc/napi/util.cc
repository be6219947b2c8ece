#include "util.h"

#include <exception>
#include <utility>
#include <vector>

namespace qarvd::napi {

View<uint8_t> bytes(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = info[index];
  if (!v.IsTypedArray()) {
    throw Napi::TypeError::New(info.Env(), std::string("native: argument ") + name + " must be a typed array");
  }
  auto arr = v.As<Napi::TypedArray>();
  auto* base = static_cast<uint8_t*>(arr.ArrayBuffer().Data()) + arr.ByteOffset();
  return View<uint8_t>{base, arr.ByteLength()};
}

int64_t integer(const Napi::CallbackInfo& info, size_t index, const char* name) {
  Napi::Value v = info[index];
  if (!v.IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string("native: argument ") + name + " must be a number");
  }
  return v.As<Napi::Number>().Int64Value();
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

class Worker : public Napi::AsyncWorker {
 public:
  Worker(Napi::Env env, std::function<void()> work)
      : Napi::AsyncWorker(env, "qarvd"), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)) {}

  void keep(Napi::Value v) {
    if (v.IsObject()) pinned_.push_back(Napi::Persistent(v.As<Napi::Object>()));
  }
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      work_();
    } catch (...) {
      error_ = std::current_exception();
    }
  }
  void OnOK() override {
    Napi::HandleScope scope(Env());
    if (error_) {
      deferred_.Reject(to_js_error(Env(), error_).Value());
    } else {
      deferred_.Resolve(Env().Undefined());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::vector<Napi::ObjectReference> pinned_;
  std::exception_ptr error_;
};

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
  auto* worker = new Worker(env, std::move(work));
  for (size_t i = 0; i < info.Length(); ++i) worker->keep(info[i]);
  Napi::Promise promise = worker->promise();
  worker->Queue();
  return promise;
}

Registration::Registration(const char* name, ExportFn fn) { registry().emplace_back(name, fn); }

void register_all(Napi::Env env, Napi::Object exports) {
  for (auto& entry : registry()) entry.second(env, exports);
}

}  // namespace qarvd::napi
