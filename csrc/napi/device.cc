// Bindings of device memory and the CUDA kernels (cuda/). A device buffer is a JS External that
// holds a shared reference to its Allocation: dispose drops the buffer's reference, the GC finalizer
// frees the holder, and every operation in flight holds its own reference, so memory is released
// only when nothing uses it any more. Every function but cudaHandle/cudaFree returns a Promise that
// resolves when the GPU work is done (stream synchronized on the libuv pool). Arguments arrive
// validated by lib/device/; what would corrupt memory (sizes, devices, disposed buffers) is
// re-checked here. Without CUDA in the build every call rejects with "no CUDA device: ...".
#include <memory>
#include <stdexcept>
#include <string>

#include "device_buffers.h"
#include "quantize_args.h"
#include "util.h"
#ifdef QARVD_WITH_CUDA
#include "../../cuda/context.cuh"
#include "../../cuda/quantize.cuh"
#include "../kernels/quantize.h"
#endif

namespace {

namespace nb = qarvd::napi;

#ifdef QARVD_WITH_CUDA

using qarvd::BlockLayout;
using qarvd::FloatType;
using qarvd::QType;
using qarvd::cuda::Allocation;
using qarvd::napi::device::Alloc;
using qarvd::napi::device::buffer;
using qarvd::napi::device::Holder;
using qarvd::napi::device::holder;
using qarvd::napi::device::mul;
using qarvd::napi::device::require;

using qarvd::napi::quantize_args::float_type;
using qarvd::napi::quantize_args::layout;
using qarvd::napi::quantize_args::quant_type;

int64_t float_bytes(FloatType t, int64_t n) { return mul(n, qarvd::float_type_size(t)); }

// Waits for the stream, then turns a set flag into the error the CPU kernels throw.
void finish(int device, const char* op) { qarvd::cuda::synchronize(device, op); }

int read_flag(int device, const int* flag, const char* op) {
  int value = 0;
  qarvd::cuda::copy(device, &value, flag, sizeof(int), qarvd::cuda::CopyKind::kDeviceToHost, op);
  return value;
}

// cudaHandle(): an empty buffer handle, filled by cudaAlloc.
Napi::Value Handle(const Napi::CallbackInfo& info) {
  return Napi::External<Holder>::New(info.Env(), new Holder{}, [](Napi::Env, Holder* h) { delete h; });
}

// cudaAlloc(handle, device, bytes) -> Promise
Napi::Value Alloc_(const Napi::CallbackInfo& info) {
  Holder* h = holder(info, 0, "handle");
  int device = static_cast<int>(nb::integer(info, 1, "device"));
  int64_t bytes = nb::integer(info, 2, "bytes");
  require(bytes >= 0, "negative size");
  require(!h->alloc, "handle is already allocated");
  return nb::dispatch(info, true, [=] { h->alloc = std::make_shared<Allocation>(device, static_cast<size_t>(bytes)); });
}

// cudaFree(handle): drops the buffer's reference now (idempotent).
Napi::Value Free(const Napi::CallbackInfo& info) {
  holder(info, 0, "handle")->alloc.reset();
  return info.Env().Undefined();
}

// cudaUpload(handle, host) / cudaDownload(handle, host) -> Promise: whole-buffer copies.
Napi::Value Upload(const Napi::CallbackInfo& info) {
  auto host = nb::bytes(info, 1, "host");
  Alloc a = buffer(info, 0, "buffer", static_cast<int64_t>(host.length));
  return nb::dispatch(info, true, [=] {
    qarvd::cuda::copy(a->device(), a->data(), host.data, host.length, qarvd::cuda::CopyKind::kHostToDevice, "upload");
  });
}

Napi::Value Download(const Napi::CallbackInfo& info) {
  auto host = nb::bytes(info, 1, "host", nb::Access::kOut);
  Alloc a = buffer(info, 0, "buffer", static_cast<int64_t>(host.length));
  return nb::dispatch(info, true, [=] {
    qarvd::cuda::copy(a->device(), host.data, a->data(), host.length, qarvd::cuda::CopyKind::kDeviceToHost, "download");
  });
}

// cudaCopy(dst, src) -> Promise: device-to-device copy of equal-sized buffers on one device.
Napi::Value Copy(const Napi::CallbackInfo& info) {
  Alloc src = buffer(info, 1, "src", -1);
  Alloc dst = buffer(info, 0, "dst", static_cast<int64_t>(src->bytes()), src->device());
  return nb::dispatch(info, true, [=] {
    qarvd::cuda::copy(src->device(), dst->data(), src->data(), src->bytes(), qarvd::cuda::CopyKind::kDeviceToDevice, "copy");
  });
}

// cudaQuantize(x, xType, outer, axisLen, inner, mode, groupSize, scale, zeroPoint, qType, out) -> Promise
Napi::Value Quantize(const Napi::CallbackInfo& info) {
  FloatType xt = float_type(info, 1);
  BlockLayout l = layout(info, 2);
  Alloc x = buffer(info, 0, "x", float_bytes(xt, l.size()));
  const int d = x->device();
  Alloc scale = buffer(info, 7, "scale", mul(l.num_scales(), 4), d);
  Alloc zp = buffer(info, 8, "zeroPoint", mul(l.num_scales(), 4), d);
  QType qt = quant_type(info, 9);
  Alloc out = buffer(info, 10, "out", qarvd::packed_bytes(qt, l.size()), d);
  return nb::dispatch(info, true, [=] {
    void* stream = qarvd::cuda::use_device(d, "quantize");
    qarvd::cuda::launch_quantize(x->data(), xt, l, static_cast<const float*>(scale->data()),
                                 static_cast<const int32_t*>(zp->data()), qt, out->data(), stream);
    qarvd::cuda::check_launch(d, "quantize");
    finish(d, "quantize");
  });
}

// cudaDequantize(q, qType, outer, axisLen, inner, mode, groupSize, scale, zeroPoint, out) -> Promise
Napi::Value Dequantize(const Napi::CallbackInfo& info) {
  QType qt = quant_type(info, 1);
  BlockLayout l = layout(info, 2);
  Alloc q = buffer(info, 0, "q", qarvd::packed_bytes(qt, l.size()));
  const int d = q->device();
  Alloc scale = buffer(info, 7, "scale", mul(l.num_scales(), 4), d);
  Alloc zp = buffer(info, 8, "zeroPoint", mul(l.num_scales(), 4), d);
  Alloc out = buffer(info, 9, "out", mul(l.size(), 4), d);
  return nb::dispatch(info, true, [=] {
    void* stream = qarvd::cuda::use_device(d, "dequantize");
    qarvd::cuda::launch_dequantize(q->data(), qt, l, static_cast<const float*>(scale->data()),
                                   static_cast<const int32_t*>(zp->data()), static_cast<float*>(out->data()), stream);
    qarvd::cuda::check_launch(d, "dequantize");
    finish(d, "dequantize");
  });
}

// cudaChooseQParams(x, xType, outer, axisLen, inner, mode, groupSize, qType, symmetric, scale, zeroPoint) -> Promise
Napi::Value ChooseQParams(const Napi::CallbackInfo& info) {
  FloatType xt = float_type(info, 1);
  BlockLayout l = layout(info, 2);
  Alloc x = buffer(info, 0, "x", float_bytes(xt, l.size()));
  const int d = x->device();
  QType qt = quant_type(info, 7);
  bool symmetric = nb::boolean(info, 8, "symmetric");
  const int64_t ns = l.num_scales();
  Alloc scale = buffer(info, 9, "scale", mul(ns, 4), d);
  Alloc zp = buffer(info, 10, "zeroPoint", mul(ns, 4), d);
  return nb::dispatch(info, true, [=] {
    const char* op = "chooseQParams";
    void* stream = qarvd::cuda::use_device(d, op);
    qarvd::cuda::Scratch range(d, stream, static_cast<size_t>(mul(ns, 8)), op);
    qarvd::cuda::Scratch bad(d, stream, sizeof(int), op);
    float* lo = static_cast<float*>(range.data());
    qarvd::cuda::launch_choose_qparams(x->data(), xt, l, qt, symmetric, lo, lo + ns, static_cast<int*>(bad.data()),
                                       static_cast<float*>(scale->data()), static_cast<int32_t*>(zp->data()), stream);
    qarvd::cuda::check_launch(d, op);
    if (read_flag(d, static_cast<const int*>(bad.data()), op)) {
      throw std::range_error("Expected finite values in x but it contains NaN or Infinity");
    }
  });
}

// cudaQuantizePerToken(x, xType, rows, cols, qType, symmetric, out, scale, zeroPoint) -> Promise
Napi::Value QuantizePerToken(const Napi::CallbackInfo& info) {
  FloatType xt = float_type(info, 1);
  int64_t rows = nb::integer(info, 2, "rows"), cols = nb::integer(info, 3, "cols");
  int64_t n = mul(rows, cols);
  require(rows < qarvd::cuda::kNoBadRow, "too many rows");
  Alloc x = buffer(info, 0, "x", float_bytes(xt, n));
  const int d = x->device();
  QType qt = quant_type(info, 4);
  bool symmetric = nb::boolean(info, 5, "symmetric");
  Alloc out = buffer(info, 6, "out", qarvd::packed_bytes(qt, n), d);
  Alloc scale = buffer(info, 7, "scale", mul(rows, 4), d);
  Alloc zp = buffer(info, 8, "zeroPoint", mul(rows, 4), d);
  return nb::dispatch(info, true, [=] {
    const char* op = "quantizePerToken";
    void* stream = qarvd::cuda::use_device(d, op);
    qarvd::cuda::Scratch bad(d, stream, sizeof(int), op);
    qarvd::cuda::launch_quantize_per_token(x->data(), xt, rows, cols, qt, symmetric, out->data(),
                                           static_cast<float*>(scale->data()), static_cast<int32_t*>(zp->data()),
                                           static_cast<int*>(bad.data()), stream);
    qarvd::cuda::check_launch(d, op);
    int row = read_flag(d, static_cast<const int*>(bad.data()), op);
    if (row != qarvd::cuda::kNoBadRow) {
      throw std::range_error("Expected finite values in x but row " + std::to_string(row) +
                             " contains NaN or Infinity");
    }
  });
}

#else  // built without CUDA: the same functions, each failing as a machine without a device does.

Napi::Value NoCuda(const Napi::CallbackInfo& info) {
  throw std::runtime_error("no CUDA device: built without CUDA");
}
Napi::Value Handle(const Napi::CallbackInfo& info) { return Napi::Object::New(info.Env()); }
Napi::Value Free(const Napi::CallbackInfo& info) { return info.Env().Undefined(); }
#define Alloc_ NoCuda
#define Upload NoCuda
#define Download NoCuda
#define Copy NoCuda
#define Quantize NoCuda
#define Dequantize NoCuda
#define ChooseQParams NoCuda
#define QuantizePerToken NoCuda

#endif

using qarvd::napi::device::guarded;

void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaHandle", Napi::Function::New(env, guarded<Handle>, "cudaHandle"));
  exports.Set("cudaAlloc", Napi::Function::New(env, nb::binding<Alloc_, nb::kAlways>, "cudaAlloc"));
  exports.Set("cudaFree", Napi::Function::New(env, guarded<Free>, "cudaFree"));
  exports.Set("cudaUpload", Napi::Function::New(env, nb::binding<Upload, nb::kAlways>, "cudaUpload"));
  exports.Set("cudaDownload", Napi::Function::New(env, nb::binding<Download, nb::kAlways>, "cudaDownload"));
  exports.Set("cudaCopy", Napi::Function::New(env, nb::binding<Copy, nb::kAlways>, "cudaCopy"));
  exports.Set("cudaQuantize", Napi::Function::New(env, nb::binding<Quantize, nb::kAlways>, "cudaQuantize"));
  exports.Set("cudaDequantize", Napi::Function::New(env, nb::binding<Dequantize, nb::kAlways>, "cudaDequantize"));
  exports.Set("cudaChooseQParams", Napi::Function::New(env, nb::binding<ChooseQParams, nb::kAlways>, "cudaChooseQParams"));
  exports.Set("cudaQuantizePerToken", Napi::Function::New(env, nb::binding<QuantizePerToken, nb::kAlways>, "cudaQuantizePerToken"));
}

}  // namespace

QARVD_EXPORTS(Export);
