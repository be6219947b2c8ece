// Device twins of csrc/kernels/quant_math.h, operation for operation, so that the GPU gives the same
// integers and scales as the CPU. Every float operation is an explicitly rounded intrinsic
// (__fdiv_rn, __fsub_rn, __fmul_rn): nvcc would otherwise be free to contract or approximate them.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "../csrc/kernels/quantize.h"

namespace qarvd::cuda {

constexpr float kMinScaleDev = 1.1920928955078125e-7f;  // kMinScale of quant_math.h

// The quantized range and packing of a dtype, passed to kernels by value.
struct QSpec {
  int qmin, qmax;
  int bits;
  bool is_signed;
};

inline QSpec qspec(QType t) {
  QRange r = qrange(t);
  return {r.qmin, r.qmax, bits_of(t), is_signed(t)};
}

template <FloatType XT>
__device__ __forceinline__ float load_x(const void* x, int64_t i) {
  if constexpr (XT == FloatType::kF32) {
    return static_cast<const float*>(x)[i];
  } else if constexpr (XT == FloatType::kF16) {
    return __half2float(__ushort_as_half(static_cast<const uint16_t*>(x)[i]));
  } else {
    return __uint_as_float(static_cast<uint32_t>(static_cast<const uint16_t*>(x)[i]) << 16);
  }
}

// Eight consecutive elements starting at i (a multiple of 8 from a 256-byte aligned base).
template <FloatType XT>
__device__ __forceinline__ void load_x8(const void* x, int64_t i, float v[8]) {
  if constexpr (XT == FloatType::kF32) {
    const float4* p = reinterpret_cast<const float4*>(static_cast<const float*>(x) + i);
    float4 a = __ldg(p), b = __ldg(p + 1);
    v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
    v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
  } else {
    uint4 raw = __ldg(reinterpret_cast<const uint4*>(static_cast<const uint16_t*>(x) + i));
    const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      uint16_t lo = static_cast<uint16_t>(w[k] & 0xFFFFu), hi = static_cast<uint16_t>(w[k] >> 16);
      if constexpr (XT == FloatType::kF16) {
        v[2 * k] = __half2float(__ushort_as_half(lo));
        v[2 * k + 1] = __half2float(__ushort_as_half(hi));
      } else {
        v[2 * k] = __uint_as_float(static_cast<uint32_t>(lo) << 16);
        v[2 * k + 1] = __uint_as_float(static_cast<uint32_t>(hi) << 16);
      }
    }
  }
}

// quantize_value of quant_math.h: divide, NaN -> zero point, round half to even, clamp in float.
__device__ __forceinline__ int quantize_value(float x, float scale, int zero_point, int qmin, int qmax) {
  float v = __fdiv_rn(x, scale);
  if (isnan(v)) return zero_point;
  v = rintf(v);
  v = fminf(fmaxf(v, static_cast<float>(qmin - zero_point)), static_cast<float>(qmax - zero_point));
  return static_cast<int>(v) + zero_point;
}

__device__ __forceinline__ float dequantize_value(int q, float scale, int zero_point) {
  return __fmul_rn(static_cast<float>(q - zero_point), scale);
}

// choose_qparams of quant_math.h, step by step.
__device__ __forceinline__ void choose_qparams(float lo, float hi, QSpec s, bool symmetric, float* scale,
                                               int32_t* zero_point) {
  if (symmetric) {
    float amax = fmaxf(fabsf(lo), fabsf(hi));
    float half = static_cast<float>((1 << (s.bits - 1)) - 1);
    *scale = fmaxf(__fdiv_rn(amax, half), kMinScaleDev);
    *zero_point = s.is_signed ? 0 : (1 << (s.bits - 1));
    return;
  }
  lo = fminf(lo, 0.0f);
  hi = fmaxf(hi, 0.0f);
  float sc = fmaxf(__fdiv_rn(__fsub_rn(hi, lo), static_cast<float>(s.qmax - s.qmin)), kMinScaleDev);
  float zp = __fsub_rn(static_cast<float>(s.qmin), rintf(__fdiv_rn(lo, sc)));
  zp = fminf(fmaxf(zp, static_cast<float>(s.qmin)), static_cast<float>(s.qmax));
  *scale = sc;
  *zero_point = static_cast<int32_t>(zp);
}

// Two quantized values in one byte, element 2k in the low nibble.
__device__ __forceinline__ uint8_t pack4(int lo, int hi) {
  return static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
}

__device__ __forceinline__ int unpack4(uint8_t b, bool high, bool is_signed) {
  int n = high ? (b >> 4) : (b & 0xF);
  return is_signed ? ((n ^ 8) - 8) : n;
}

}  // namespace qarvd::cuda
