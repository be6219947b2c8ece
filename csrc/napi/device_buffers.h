// Shared by the CUDA bindings (device.cc, device_gemm.cc): device buffers as a JS External holding a
// shared reference to an Allocation (an operation in flight keeps its memory alive after dispose()).
#pragma once
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>

#include "util.h"
#ifdef QARVD_WITH_CUDA
#include "../../cuda/context.cuh"
#endif

namespace qarvd::napi::device {

using qarvd::napi::guarded;

#ifdef QARVD_WITH_CUDA

using Alloc = std::shared_ptr<qarvd::cuda::Allocation>;

struct Holder {
  Alloc alloc;
};

inline void require(bool ok, const std::string& what) {
  if (!ok) throw std::out_of_range("native: " + what);
}

inline Holder* holder(const Napi::CallbackInfo& info, size_t i, const char* name) {
  Napi::Value v = info[i];
  if (!v.IsExternal()) throw std::invalid_argument(std::string("native: argument ") + name + " must be a device buffer");
  return v.As<Napi::External<Holder>>().Data();
}

// The allocation behind argument i, which must hold `bytes` bytes (-1: any size) on `device` (-1: any).
inline Alloc buffer(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t bytes, int device = -1) {
  Alloc a = holder(info, i, name)->alloc;
  if (!a) throw std::runtime_error(std::string("native: ") + name + " is not allocated or was disposed");
  require(bytes < 0 || static_cast<int64_t>(a->bytes()) == bytes, std::string(name) + " has the wrong size");
  require(device < 0 || a->device() == device, std::string(name) + " is on another device");
  return a;
}

// buffer(), or null when argument i is null or undefined.
inline Alloc optional_buffer(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t bytes, int device) {
  if (info[i].IsNull() || info[i].IsUndefined()) return nullptr;
  return buffer(info, i, name, bytes, device);
}

inline int64_t mul(int64_t a, int64_t b) {
  int64_t r;
  require(a >= 0 && b >= 0 && !__builtin_mul_overflow(a, b, &r), "tensor size overflows");
  return r;
}

#endif  // QARVD_WITH_CUDA

}  // namespace qarvd::napi::device
