// Binding of the CUDA W8A8 GEMM (cuda/gemm_int.cu). Arguments arrive validated by
// lib/device/gemm.ts; sizes, devices and ranges that would corrupt memory are re-checked here.
// Without CUDA in the build the call rejects with "no CUDA device: built without CUDA".
#include <cmath>
#include <stdexcept>
#include <string>

#include "device_buffers.h"
#include "util.h"
#ifdef QARVD_WITH_CUDA
#include "../../cuda/gemm_int.cuh"
#endif

namespace {

namespace nb = qarvd::napi;
using qarvd::napi::device::guarded;

#ifdef QARVD_WITH_CUDA

using qarvd::napi::device::Alloc;
using qarvd::napi::device::buffer;
using qarvd::napi::device::mul;
using qarvd::napi::device::optional_buffer;
using qarvd::napi::device::require;
namespace cu = qarvd::cuda;

// cudaGemmW8A8(x, m, k, n, wq, wscale, wzero, wsum, bias, dynamic, unsigned, symmetric, scale,
//              zeroPoint, out, accumulators, actScale, actZeroPoint, simple, timing) -> Promise
// x float32 [m, k]; wq int8 [n_pad, k_pad]; wscale/wzero/wsum/bias [n] (bias may be null); out
// float32 [m, n] (int32 when `accumulators`); actScale/actZeroPoint [m] or null. `timing`: null, or
// a Float64Array [repeat, msOut]: the call then runs `repeat` times between CUDA events and writes
// the milliseconds per run to msOut (benchmarks).
Napi::Value GemmW8A8(const Napi::CallbackInfo& info) {
  const int64_t m = nb::integer(info, 1, "m"), k = nb::integer(info, 2, "k"), n = nb::integer(info, 3, "n");
  require(m > 0 && n > 0 && k > 0 && k <= cu::kGemmMaxK, "gemmW8A8 needs m, n > 0 and 0 < k <= 32768");
  Alloc x = buffer(info, 0, "x", mul(mul(m, k), 4));
  const int d = x->device();
  const int64_t n_pad = cu::gemm_round_up(n, cu::kGemmTileN), k_pad = cu::gemm_round_up(k, cu::kGemmTileK);
  Alloc wq = buffer(info, 4, "wq", mul(n_pad, k_pad), d);
  Alloc wscale = buffer(info, 5, "wscale", mul(n, 4), d);
  Alloc wzero = buffer(info, 6, "wzero", mul(n, 4), d);
  Alloc wsum = buffer(info, 7, "wsum", mul(n, 4), d);
  Alloc bias = optional_buffer(info, 8, "bias", mul(n, 4), d);
  cu::GemmActQuant act;
  act.dynamic = nb::boolean(info, 9, "dynamic");
  act.is_unsigned = nb::boolean(info, 10, "unsigned");
  act.symmetric = nb::boolean(info, 11, "symmetric");
  act.scale = static_cast<float>(nb::number(info, 12, "scale"));
  act.zero_point = static_cast<int32_t>(nb::integer(info, 13, "zeroPoint"));
  require(std::isfinite(act.scale) && act.scale > 0, "scale must be positive and finite");
  require(act.is_unsigned ? act.zero_point >= 0 && act.zero_point <= 255 : act.zero_point >= -128 && act.zero_point <= 127,
          "zeroPoint is out of the activation dtype's range");
  Alloc out = buffer(info, 14, "out", mul(mul(m, n), 4), d);
  const bool accumulators = nb::boolean(info, 15, "accumulators");
  Alloc act_scale = optional_buffer(info, 16, "actScale", mul(m, 4), d);
  Alloc act_zero = optional_buffer(info, 17, "actZeroPoint", mul(m, 4), d);
  const bool simple = nb::boolean(info, 18, "simple");
  double* timing = nullptr;
  int repeat = 0;
  if (!info[19].IsNull() && !info[19].IsUndefined()) {
    auto t = nb::typed_array<double>(info, 19, "timing", nb::Access::kOut);
    require(t.length == 2 && t.data[0] >= 1 && t.data[0] <= 1e6, "timing must be [repeat (1 to 1e6), msOut]");
    timing = t.data;
    repeat = static_cast<int>(t.data[0]);
  }
  return nb::dispatch(info, true, [=] {
    const char* op = "gemmW8A8";
    void* stream = cu::use_device(d, op);
    cu::Scratch scratch(d, stream, cu::gemm_w8a8_scratch_bytes(m, k), op);
    cu::GemmW8A8Args a;
    a.m = m;
    a.n = n;
    a.k = k;
    a.x = static_cast<const float*>(x->data());
    a.wq = static_cast<const int8_t*>(wq->data());
    a.wscale = static_cast<const float*>(wscale->data());
    a.wzero = static_cast<const int32_t*>(wzero->data());
    a.wsum = static_cast<const int32_t*>(wsum->data());
    a.bias = bias ? static_cast<const float*>(bias->data()) : nullptr;
    a.act = act;
    if (accumulators) a.acc = static_cast<int32_t*>(out->data());
    else a.y = static_cast<float*>(out->data());
    a.act_scale = act_scale ? static_cast<float*>(act_scale->data()) : nullptr;
    a.act_zero = act_zero ? static_cast<int32_t*>(act_zero->data()) : nullptr;
    a.simple = simple;
    if (timing) {
      timing[1] = cu::time_gemm_w8a8(a, scratch.data(), stream, d, repeat);
    } else {
      cu::launch_gemm_w8a8(a, scratch.data(), stream, d);
    }
    cu::synchronize(d, op);
  });
}

#else  // built without CUDA: fails as a machine without a device does.

Napi::Value GemmW8A8(const Napi::CallbackInfo& info) { throw std::runtime_error("no CUDA device: built without CUDA"); }

#endif

void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("cudaGemmW8A8", Napi::Function::New(env, nb::binding<GemmW8A8, nb::kAlways>, "cudaGemmW8A8"));
}

}  // namespace

QARVD_EXPORTS(Export);
