// CUDA quantize family: elementwise quantize / dequantize for every granularity, the block range
// reduction behind chooseQParams, and the fused dynamic per-token quantize. Integer results equal
// the CPU family's (quant_math.cuh mirrors quant_math.h operation for operation).
#include <climits>
#include <type_traits>

#include "quant_math.cuh"
#include "quantize.cuh"

namespace qarvd::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;
constexpr int kVec = 8;  // elements per thread: 32 bytes of float32, 8 bytes of int8, 4 bytes of int4

enum class Mode { kTensor, kChannel, kGroup };

// The tensor seen as [outer, groups * group, inner]: per channel is group 1, per tensor one group.
template <typename I>
struct Dims {
  I n, inner, group, groups;
};

// Where an element lies, advanced one element at a time so that a thread pays its divisions once
// for its eight elements rather than once per element.
template <typename I>
struct Cursor {
  I o, ag, ar, i;  // outer index, group along the axis, index inside the group, inner index

  __device__ __forceinline__ Cursor(I e, const Dims<I>& d) {
    i = e % d.inner;
    I t = e / d.inner;
    I axis_len = d.groups * d.group;
    I a = t % axis_len;
    o = t / axis_len;
    ag = a / d.group;
    ar = a % d.group;
  }
  __device__ __forceinline__ void next(const Dims<I>& d) {
    if (++i != d.inner) return;
    i = 0;
    if (++ar != d.group) return;
    ar = 0;
    if (++ag != d.groups) return;
    ag = 0;
    ++o;
  }
  template <Mode M>
  __device__ __forceinline__ I block(const Dims<I>& d) const {
    if constexpr (M == Mode::kChannel) return ag;
    return (o * d.groups + ag) * d.inner + i;
  }
};

template <typename I>
__device__ __forceinline__ I first_element() {
  return (static_cast<I>(blockIdx.x) * kThreads + threadIdx.x) * kVec;
}

template <FloatType XT, typename I>
__device__ __forceinline__ int load8(const void* x, I e0, I n, float v[kVec]) {
  if (e0 + kVec <= n) {
    load_x8<XT>(x, static_cast<int64_t>(e0), v);
    return kVec;
  }
  int count = static_cast<int>(n - e0);
  for (int k = 0; k < count; ++k) v[k] = load_x<XT>(x, static_cast<int64_t>(e0) + k);
  return count;
}

// Writes `count` quantized values of element e0 onwards (e0 a multiple of 8).
template <bool FOUR>
__device__ __forceinline__ void store_q(uint8_t* out, int64_t e0, const int q[kVec], int count) {
  if constexpr (FOUR) {
    uint8_t* o = out + e0 / 2;
    if (count == kVec) {
      uint32_t w = 0;
#pragma unroll
      for (int k = 0; k < kVec; k += 2) w |= static_cast<uint32_t>(pack4(q[k], q[k + 1])) << (4 * k);
      *reinterpret_cast<uint32_t*>(o) = w;
    } else {
      for (int k = 0; k < count; k += 2) o[k / 2] = pack4(q[k], k + 1 < count ? q[k + 1] : 0);
    }
  } else {
    uint8_t* o = out + e0;
    if (count == kVec) {
      uint2 w;
      w.x = (q[0] & 0xFF) | (q[1] & 0xFF) << 8 | (q[2] & 0xFF) << 16 | static_cast<uint32_t>(q[3] & 0xFF) << 24;
      w.y = (q[4] & 0xFF) | (q[5] & 0xFF) << 8 | (q[6] & 0xFF) << 16 | static_cast<uint32_t>(q[7] & 0xFF) << 24;
      *reinterpret_cast<uint2*>(o) = w;
    } else {
      for (int k = 0; k < count; ++k) o[k] = static_cast<uint8_t>(q[k] & 0xFF);
    }
  }
}

template <FloatType XT, bool FOUR, Mode M, typename I>
__global__ void __launch_bounds__(kThreads) quantize_kernel(const void* __restrict__ x, Dims<I> d,
                                                             const float* __restrict__ scale,
                                                             const int32_t* __restrict__ zero_point, QSpec s,
                                                             uint8_t* __restrict__ out) {
  const I e0 = first_element<I>();
  if (e0 >= d.n) return;
  float v[kVec];
  int q[kVec];
  const int count = load8<XT>(x, e0, d.n, v);
  if constexpr (M == Mode::kTensor) {
    const float sc = scale[0];
    const int zp = zero_point[0];
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      if (k < count) q[k] = quantize_value(v[k], sc, zp, s.qmin, s.qmax);
    }
  } else {
    Cursor<I> c(e0, d);
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      if (k < count) {
        const I b = c.template block<M>(d);
        q[k] = quantize_value(v[k], __ldg(scale + b), __ldg(zero_point + b), s.qmin, s.qmax);
        c.next(d);
      }
    }
  }
  store_q<FOUR>(out, static_cast<int64_t>(e0), q, count);
}

template <bool FOUR, Mode M, typename I>
__global__ void __launch_bounds__(kThreads) dequantize_kernel(const uint8_t* __restrict__ in, Dims<I> d,
                                                               const float* __restrict__ scale,
                                                               const int32_t* __restrict__ zero_point, QSpec s,
                                                               float* __restrict__ out) {
  const I e0 = first_element<I>();
  if (e0 >= d.n) return;
  const int count = e0 + kVec <= d.n ? kVec : static_cast<int>(d.n - e0);
  int q[kVec];
  if constexpr (FOUR) {
    const uint8_t* p = in + e0 / 2;
    if (count == kVec) {
      uint32_t w = __ldg(reinterpret_cast<const uint32_t*>(p));
#pragma unroll
      for (int k = 0; k < kVec; ++k) q[k] = unpack4(static_cast<uint8_t>(w >> (8 * (k / 2))), k & 1, s.is_signed);
    } else {
      for (int k = 0; k < count; ++k) q[k] = unpack4(p[k / 2], k & 1, s.is_signed);
    }
  } else {
    const uint8_t* p = in + e0;
    if (count == kVec) {
      uint2 w = __ldg(reinterpret_cast<const uint2*>(p));
#pragma unroll
      for (int k = 0; k < kVec; ++k) {
        uint32_t byte = ((k < 4 ? w.x : w.y) >> (8 * (k & 3))) & 0xFF;
        q[k] = s.is_signed ? static_cast<int>(static_cast<int8_t>(byte)) : static_cast<int>(byte);
      }
    } else {
      for (int k = 0; k < count; ++k) q[k] = s.is_signed ? static_cast<int>(static_cast<int8_t>(p[k])) : p[k];
    }
  }
  float v[kVec];
  if constexpr (M == Mode::kTensor) {
    const float sc = scale[0];
    const int zp = zero_point[0];
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      if (k < count) v[k] = dequantize_value(q[k], sc, zp);
    }
  } else {
    Cursor<I> c(e0, d);
#pragma unroll
    for (int k = 0; k < kVec; ++k) {
      if (k < count) {
        const I b = c.template block<M>(d);
        v[k] = dequantize_value(q[k], __ldg(scale + b), __ldg(zero_point + b));
        c.next(d);
      }
    }
  }
  float* o = out + e0;
  if (count == kVec) {
    reinterpret_cast<float4*>(o)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4*>(o)[1] = make_float4(v[4], v[5], v[6], v[7]);
  } else {
    for (int k = 0; k < count; ++k) o[k] = v[k];
  }
}

// Order-preserving atomics on finite floats (the sign bit picks the integer view in which the float
// order is the integer order; -0 goes with the negatives so that it is never taken for an extreme).
__device__ __forceinline__ void atomic_min_float(float* p, float v) {
  if (!signbit(v)) atomicMin(reinterpret_cast<int*>(p), __float_as_int(v));
  else atomicMax(reinterpret_cast<unsigned*>(p), __float_as_uint(v));
}
__device__ __forceinline__ void atomic_max_float(float* p, float v) {
  if (!signbit(v)) atomicMax(reinterpret_cast<int*>(p), __float_as_int(v));
  else atomicMin(reinterpret_cast<unsigned*>(p), __float_as_uint(v));
}

__device__ __forceinline__ void warp_min_max(float& lo, float& hi) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    lo = fminf(lo, __shfl_xor_sync(0xFFFFFFFFu, lo, o));
    hi = fmaxf(hi, __shfl_xor_sync(0xFFFFFFFFu, hi, o));
  }
}

__global__ void fill_range_kernel(float* lo, float* hi, int64_t n, int* bad) {
  int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b == 0) *bad = 0;
  if (b < n) {
    lo[b] = INFINITY;
    hi[b] = -INFINITY;
  }
}

// Min and max of every block of the granularity; each thread reduces its elements while they stay in
// one block and flushes with atomics (per tensor: one atomic per warp).
template <FloatType XT, Mode M, typename I>
__global__ void __launch_bounds__(kThreads) range_kernel(const void* __restrict__ x, Dims<I> d, float* lo, float* hi,
                                                          int* bad) {
  const I e0 = first_element<I>();
  float v[kVec];
  const int count = e0 < d.n ? load8<XT>(x, e0, d.n, v) : 0;
  bool finite = true;
  if constexpr (M == Mode::kTensor) {
    float l = INFINITY, h = -INFINITY;
    for (int k = 0; k < count; ++k) {
      finite &= isfinite(v[k]);
      l = fminf(l, v[k]);
      h = fmaxf(h, v[k]);
    }
    warp_min_max(l, h);
    if ((threadIdx.x & 31) == 0 && l <= h) {
      atomic_min_float(lo, l);
      atomic_max_float(hi, h);
    }
  } else {
    if (count == 0) return;
    Cursor<I> c(e0, d);
    I cur = c.template block<M>(d);
    float l = INFINITY, h = -INFINITY;
    for (int k = 0; k < count; ++k) {
      const I b = c.template block<M>(d);
      if (b != cur) {
        atomic_min_float(lo + cur, l);
        atomic_max_float(hi + cur, h);
        cur = b;
        l = INFINITY;
        h = -INFINITY;
      }
      finite &= isfinite(v[k]);
      l = fminf(l, v[k]);
      h = fmaxf(h, v[k]);
      c.next(d);
    }
    atomic_min_float(lo + cur, l);
    atomic_max_float(hi + cur, h);
  }
  if (!finite) atomicExch(bad, 1);
}

__global__ void qparams_kernel(const float* lo, const float* hi, int64_t n, QSpec s, bool symmetric, float* scale,
                               int32_t* zero_point) {
  int64_t b = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (b < n) choose_qparams(lo[b], hi[b], s, symmetric, scale + b, zero_point + b);
}

// Per token: ROWS rows per block (2 only for 4-bit outputs with odd rows, so that each block writes
// whole bytes). Pass 1 reduces each row's range and picks its parameters; pass 2 quantizes the rows
// (read again, from L2).
template <FloatType XT, bool FOUR, int ROWS>
__global__ void __launch_bounds__(kThreads) per_token_kernel(const void* __restrict__ x, int64_t rows, int64_t cols,
                                                              QSpec s, bool symmetric, uint8_t* __restrict__ out,
                                                              float* __restrict__ scale,
                                                              int32_t* __restrict__ zero_point, int* bad_row) {
  __shared__ float s_lo[kWarps], s_hi[kWarps];
  __shared__ int s_bad[kWarps];
  __shared__ float s_scale[ROWS];
  __shared__ int s_zp[ROWS];
  const int64_t r0 = static_cast<int64_t>(blockIdx.x) * ROWS;
  const int nrows = static_cast<int>(rows - r0 < ROWS ? rows - r0 : ROWS);
  const int warp = threadIdx.x / 32, lane = threadIdx.x & 31;
  const bool vec = cols % kVec == 0;

  for (int rr = 0; rr < nrows; ++rr) {
    const int64_t base = (r0 + rr) * cols;
    float l = INFINITY, h = -INFINITY;
    bool finite = true;
    float v[kVec];
    if (vec) {
      for (int64_t c = static_cast<int64_t>(threadIdx.x) * kVec; c < cols; c += kThreads * kVec) {
        load_x8<XT>(x, base + c, v);
#pragma unroll
        for (int k = 0; k < kVec; ++k) {
          finite &= isfinite(v[k]);
          l = fminf(l, v[k]);
          h = fmaxf(h, v[k]);
        }
      }
    } else {
      for (int64_t c = threadIdx.x; c < cols; c += kThreads) {
        float a = load_x<XT>(x, base + c);
        finite &= isfinite(a);
        l = fminf(l, a);
        h = fmaxf(h, a);
      }
    }
    warp_min_max(l, h);
    finite = __all_sync(0xFFFFFFFFu, finite);
    if (lane == 0) {
      s_lo[warp] = l;
      s_hi[warp] = h;
      s_bad[warp] = !finite;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      int any_bad = 0;
      for (int w = 0; w < kWarps; ++w) {
        l = fminf(l, s_lo[w]);
        h = fmaxf(h, s_hi[w]);
        any_bad |= s_bad[w];
      }
      if (any_bad) atomicMin(bad_row, static_cast<int>(r0 + rr < kNoBadRow ? r0 + rr : kNoBadRow - 1));
      float sc;
      int32_t zp;
      // Symmetric parameters depend only on max(|lo|, |hi|), the abs-max the CPU kernel reduces.
      choose_qparams(l, h, s, symmetric, &sc, &zp);
      scale[r0 + rr] = sc;
      zero_point[r0 + rr] = zp;
      s_scale[rr] = sc;
      s_zp[rr] = zp;
    }
    __syncthreads();
  }

  const int64_t start = r0 * cols, len = nrows * cols;
  if (vec) {
    // Rows are whole multiples of 8 elements: a chunk of 8 never straddles two rows.
    for (int64_t c = static_cast<int64_t>(threadIdx.x) * kVec; c < len; c += kThreads * kVec) {
      const int rr = ROWS == 1 ? 0 : static_cast<int>(c / cols);
      const float sc = s_scale[rr];
      const int zp = s_zp[rr];
      float v[kVec];
      int q[kVec];
      load_x8<XT>(x, start + c, v);
#pragma unroll
      for (int k = 0; k < kVec; ++k) q[k] = quantize_value(v[k], sc, zp, s.qmin, s.qmax);
      store_q<FOUR>(out, start + c, q, kVec);
    }
  } else if constexpr (FOUR) {
    // start is even (odd rows come in pairs): pair p is byte (start + 2p) / 2.
    for (int64_t c = 2 * static_cast<int64_t>(threadIdx.x); c < len; c += 2 * kThreads) {
      const int ra = ROWS == 1 ? 0 : static_cast<int>(c / cols);
      const int qa = quantize_value(load_x<XT>(x, start + c), s_scale[ra], s_zp[ra], s.qmin, s.qmax);
      int qb = 0;
      if (c + 1 < len) {
        const int rb = ROWS == 1 ? 0 : static_cast<int>((c + 1) / cols);
        qb = quantize_value(load_x<XT>(x, start + c + 1), s_scale[rb], s_zp[rb], s.qmin, s.qmax);
      }
      out[(start + c) / 2] = pack4(qa, qb);
    }
  } else {
    for (int64_t c = threadIdx.x; c < len; c += kThreads) {
      const int rr = ROWS == 1 ? 0 : static_cast<int>(c / cols);
      out[start + c] =
          static_cast<uint8_t>(quantize_value(load_x<XT>(x, start + c), s_scale[rr], s_zp[rr], s.qmin, s.qmax) & 0xFF);
    }
  }
}

// Template dispatch: calls f with the float type, the packing and the mode as compile-time values.
template <class F>
void with_float_type(FloatType xt, F&& f) {
  switch (xt) {
    case FloatType::kF32: f(std::integral_constant<FloatType, FloatType::kF32>{}); break;
    case FloatType::kF16: f(std::integral_constant<FloatType, FloatType::kF16>{}); break;
    case FloatType::kBF16: f(std::integral_constant<FloatType, FloatType::kBF16>{}); break;
  }
}

template <class F>
void with_bool(bool b, F&& f) {
  if (b) f(std::true_type{});
  else f(std::false_type{});
}

template <class F>
void with_mode(Granularity g, F&& f) {
  switch (g) {
    case Granularity::kPerTensor: f(std::integral_constant<Mode, Mode::kTensor>{}); break;
    case Granularity::kPerChannel: f(std::integral_constant<Mode, Mode::kChannel>{}); break;
    case Granularity::kPerGroup: f(std::integral_constant<Mode, Mode::kGroup>{}); break;
  }
}

// 32-bit index arithmetic when the tensor allows it (divisions are several times cheaper).
template <class F>
void with_dims(const BlockLayout& l, F&& f) {
  const int64_t n = l.size();
  int64_t group = 1, groups = l.axis_len, inner = l.inner;
  if (l.mode == Granularity::kPerTensor) {
    group = n;
    groups = 1;
    inner = 1;
  } else if (l.mode == Granularity::kPerGroup) {
    group = l.group;
    groups = l.axis_len / l.group;
  }
  if (n < (int64_t{1} << 31) - kVec) {
    f(Dims<uint32_t>{static_cast<uint32_t>(n), static_cast<uint32_t>(inner), static_cast<uint32_t>(group),
                     static_cast<uint32_t>(groups)});
  } else {
    f(Dims<uint64_t>{static_cast<uint64_t>(n), static_cast<uint64_t>(inner), static_cast<uint64_t>(group),
                     static_cast<uint64_t>(groups)});
  }
}

unsigned elementwise_blocks(int64_t n) {
  return static_cast<unsigned>((n + int64_t{kThreads} * kVec - 1) / (int64_t{kThreads} * kVec));
}

}  // namespace

void launch_quantize(const void* x, FloatType xt, const BlockLayout& l, const float* scale, const int32_t* zero_point,
                     QType qt, void* out, void* stream) {
  l.validate();
  if (l.size() == 0) return;
  const QSpec s = qspec(qt);
  auto st = static_cast<cudaStream_t>(stream);
  with_float_type(xt, [&](auto xtag) {
    with_bool(s.bits == 4, [&](auto four) {
      with_mode(l.mode, [&](auto mode) {
        with_dims(l, [&](auto d) {
          using I = decltype(d.n);
          quantize_kernel<decltype(xtag)::value, decltype(four)::value, decltype(mode)::value, I>
              <<<elementwise_blocks(l.size()), kThreads, 0, st>>>(x, d, scale, zero_point, s,
                                                                  static_cast<uint8_t*>(out));
        });
      });
    });
  });
}

void launch_dequantize(const void* q, QType qt, const BlockLayout& l, const float* scale, const int32_t* zero_point,
                       float* out, void* stream) {
  l.validate();
  if (l.size() == 0) return;
  const QSpec s = qspec(qt);
  auto st = static_cast<cudaStream_t>(stream);
  with_bool(s.bits == 4, [&](auto four) {
    with_mode(l.mode, [&](auto mode) {
      with_dims(l, [&](auto d) {
        using I = decltype(d.n);
        dequantize_kernel<decltype(four)::value, decltype(mode)::value, I>
            <<<elementwise_blocks(l.size()), kThreads, 0, st>>>(static_cast<const uint8_t*>(q), d, scale, zero_point,
                                                                s, out);
      });
    });
  });
}

void launch_choose_qparams(const void* x, FloatType xt, const BlockLayout& l, QType qt, bool symmetric, float* lo,
                           float* hi, int* bad, float* scale, int32_t* zero_point, void* stream) {
  l.validate();
  const int64_t nb = l.num_scales();
  auto st = static_cast<cudaStream_t>(stream);
  const unsigned small_blocks = static_cast<unsigned>((nb + kThreads - 1) / kThreads);
  fill_range_kernel<<<small_blocks > 0 ? small_blocks : 1, kThreads, 0, st>>>(lo, hi, nb, bad);
  if (l.size() > 0) {
    with_float_type(xt, [&](auto xtag) {
      with_mode(l.mode, [&](auto mode) {
        with_dims(l, [&](auto d) {
          using I = decltype(d.n);
          range_kernel<decltype(xtag)::value, decltype(mode)::value, I>
              <<<elementwise_blocks(l.size()), kThreads, 0, st>>>(x, d, lo, hi, bad);
        });
      });
    });
  } else {
    // An empty tensor takes the parameters of the range [0, 0], as on the CPU.
    cudaMemsetAsync(lo, 0, nb * sizeof(float), st);
    cudaMemsetAsync(hi, 0, nb * sizeof(float), st);
  }
  if (nb > 0) qparams_kernel<<<small_blocks, kThreads, 0, st>>>(lo, hi, nb, qspec(qt), symmetric, scale, zero_point);
}

void launch_quantize_per_token(const void* x, FloatType xt, int64_t rows, int64_t cols, QType qt, bool symmetric,
                               void* out, float* scale, int32_t* zero_point, int* bad_row, void* stream) {
  auto st = static_cast<cudaStream_t>(stream);
  cudaMemsetAsync(bad_row, kNoBadRowByte, sizeof(int), st);
  if (rows == 0 || cols == 0) return;
  const QSpec s = qspec(qt);
  const bool pair_rows = s.bits == 4 && (cols & 1);
  with_float_type(xt, [&](auto xtag) {
    with_bool(s.bits == 4, [&](auto four) {
      constexpr FloatType XT = decltype(xtag)::value;
      constexpr bool FOUR = decltype(four)::value;
      auto* o = static_cast<uint8_t*>(out);
      if (pair_rows) {
        per_token_kernel<XT, FOUR, 2><<<static_cast<unsigned>((rows + 1) / 2), kThreads, 0, st>>>(
            x, rows, cols, s, symmetric, o, scale, zero_point, bad_row);
      } else {
        per_token_kernel<XT, FOUR, 1><<<static_cast<unsigned>(rows), kThreads, 0, st>>>(
            x, rows, cols, s, symmetric, o, scale, zero_point, bad_row);
      }
    });
  });
}

}  // namespace qarvd::cuda
