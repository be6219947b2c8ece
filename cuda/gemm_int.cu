// W8A8 GEMM on the int8 tensor cores (see gemm_int.cuh for the math and the layouts).
//
// Activations: one block per row quantizes the row (quant_math.cuh, the CPU's operations) into a
// zero-padded int8 buffer and sums it; this is a kernel of its own rather than quantize.cu's fused
// per-token kernel because the GEMM needs the row sums and the CPU layer's semantics for non-finite
// inputs (the range of the finite values; NaN -> zero point, infinities saturate), where the
// quantize primitive rejects them.
//
// GEMM: 128 x 128 output tiles, 8 warps of 64 x 32, K in steps of 64 through a 4-stage cp.async
// pipeline; fragments come from shared memory with ldmatrix (rows padded to 80 bytes: conflict-free)
// into mma.sync.m16n8k32 s8 x s8 -> s32. Operands are padded to whole tiles, so the main loop has no
// edge cases; the epilogue guards the edges and applies the zero-point identity and the scales.
#include <stdexcept>
#include <string>

#include "check.cuh"
#include "gemm_int.cuh"
#include "quant_math.cuh"

namespace qarvd::cuda {
namespace {

constexpr int kQuantThreads = 256;
constexpr int kQuantWarps = kQuantThreads / 32;

constexpr int kThreads = 256;            // 8 warps: 2 along M x 4 along N
constexpr int kWarpM = 64, kWarpN = 32;  // warp tile: 4 x 4 mma tiles of 16 x 8
constexpr int kStages = 4;
constexpr int kLds = kGemmTileK + 16;    // shared row stride in bytes (20 words: 8 rows hit 32 banks)
constexpr int kStageBytes = (kGemmTileM + kGemmTileN) * kLds;
constexpr int kSmemBytes = kStages * kStageBytes;  // 80 KiB: opted in above the 48 KiB default
constexpr int kSimple = 16;                        // the simple kernel's block is 16 x 16 outputs

static_assert(kGemmTileM == 2 * kWarpM && kGemmTileN == 4 * kWarpN, "8 warps tile the block");
static_assert(kGemmTileM * kGemmTileK / 16 == 2 * kThreads, "two 16-byte copies per thread per operand");

// Where the per-row activation parameters live in the scratch buffer (each part 256-byte aligned).
struct ScratchLayout {
  int64_t m_pad, k_pad;
  size_t xq, scale, zero, sum, bytes;
  ScratchLayout(int64_t m, int64_t k) {
    m_pad = gemm_round_up(m, kGemmTileM);
    k_pad = gemm_round_up(k, kGemmTileK);
    auto align = [](size_t v) { return (v + 255) / 256 * 256; };
    xq = 0;
    scale = align(static_cast<size_t>(m_pad * k_pad));
    zero = scale + align(static_cast<size_t>(m_pad) * 4);
    sum = zero + align(static_cast<size_t>(m_pad) * 4);
    bytes = sum + align(static_cast<size_t>(m_pad) * 4);
  }
};

// The epilogue's inputs: per row (activation scale, shifted zero point, sum of the stored xq) and
// per output channel (weight scale, zero point, sum of wq, bias).
struct Epilogue {
  int64_t m, n, k;
  const float* row_scale;
  const int32_t* row_zero;
  const int32_t* row_sum;
  const float* wscale;
  const int32_t* wzero;
  const int32_t* wsum;
  const float* bias;
  float* y;
  int32_t* acc;
};

__device__ __forceinline__ void block_min_max(float& lo, float& hi, float* s_lo, float* s_hi) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    lo = fminf(lo, __shfl_xor_sync(0xFFFFFFFFu, lo, o));
    hi = fmaxf(hi, __shfl_xor_sync(0xFFFFFFFFu, hi, o));
  }
  const int warp = threadIdx.x / 32;
  if ((threadIdx.x & 31) == 0) {
    s_lo[warp] = lo;
    s_hi[warp] = hi;
  }
  __syncthreads();
  lo = s_lo[0];
  hi = s_hi[0];
  for (int w = 1; w < kQuantWarps; ++w) {
    lo = fminf(lo, s_lo[w]);
    hi = fmaxf(hi, s_hi[w]);
  }
}

// One block per row of the padded activation buffer: rows past m are zeros.
__global__ void __launch_bounds__(kQuantThreads)
    quantize_rows_kernel(const float* __restrict__ x, int64_t m, int64_t k, int64_t k_pad, GemmActQuant act, QSpec s,
                         int8_t* __restrict__ xq, float* __restrict__ row_scale, int32_t* __restrict__ row_zero,
                         int32_t* __restrict__ row_sum, float* __restrict__ act_scale,
                         int32_t* __restrict__ act_zero) {
  __shared__ float s_lo[kQuantWarps], s_hi[kQuantWarps];
  __shared__ int s_sum[kQuantWarps];
  const int64_t row = blockIdx.x;
  uint32_t* out = reinterpret_cast<uint32_t*>(xq + row * k_pad);  // k_pad is a multiple of 64
  const int64_t words = k_pad / 4;
  if (row >= m) {
    for (int64_t t = threadIdx.x; t < words; t += kQuantThreads) out[t] = 0;
    if (threadIdx.x == 0) {
      row_scale[row] = 0.0f;
      row_zero[row] = 0;
      row_sum[row] = 0;
    }
    return;
  }
  const float* xr = x + row * k;
  float scale = act.scale;
  int zero = act.zero_point;
  if (act.dynamic) {
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t c = threadIdx.x; c < k; c += kQuantThreads) {
      const float v = xr[c];
      // NaN and infinities stay out of the range (they quantize to the zero point and saturate).
      if (isfinite(v)) {
        lo = fminf(lo, v);
        hi = fmaxf(hi, v);
      }
    }
    block_min_max(lo, hi, s_lo, s_hi);
    if (!(lo <= hi)) lo = hi = 0.0f;  // no number in the row: any scale will do (as the CPU)
    int32_t zp;
    choose_qparams(lo, hi, s, act.symmetric, &scale, &zp);
    zero = zp;
  }
  // Unsigned activations are stored as xq - 128 (int8 for the tensor cores), their zero point too.
  const int shift = s.is_signed ? 0 : 128;
  int sum = 0;
  for (int64_t t = threadIdx.x; t < words; t += kQuantThreads) {
    uint32_t w = 0;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int64_t c = 4 * t + e;
      const int q = c < k ? quantize_value(xr[c], scale, zero, s.qmin, s.qmax) - shift : 0;
      sum += q;
      w |= static_cast<uint32_t>(q & 0xFF) << (8 * e);
    }
    out[t] = w;
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xFFFFFFFFu, sum, o);
  if ((threadIdx.x & 31) == 0) s_sum[threadIdx.x / 32] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    int total = 0;
    for (int w = 0; w < kQuantWarps; ++w) total += s_sum[w];
    row_scale[row] = scale;
    row_zero[row] = zero - shift;
    row_sum[row] = total;
    if (act_scale) act_scale[row] = scale;
    if (act_zero) act_zero[row] = zero;
  }
}

// The corrected sum and the CPU's float operations for output (r, c) of raw dot product `dot`.
__device__ __forceinline__ void store_output(const Epilogue& e, int64_t r, int64_t c, int32_t dot) {
  if (r >= e.m || c >= e.n) return;
  const uint32_t za = static_cast<uint32_t>(__ldg(e.row_zero + r)), zw = static_cast<uint32_t>(__ldg(e.wzero + c));
  // Wrapping: only the final value must fit, and does for k <= kGemmMaxK.
  const uint32_t v = static_cast<uint32_t>(dot) - za * static_cast<uint32_t>(__ldg(e.wsum + c)) -
                     zw * static_cast<uint32_t>(__ldg(e.row_sum + r)) + static_cast<uint32_t>(e.k) * za * zw;
  const int32_t corrected = static_cast<int32_t>(v);
  if (e.acc) {
    e.acc[r * e.n + c] = corrected;
    return;
  }
  // fma(float(c), sa * sw, 0) then + bias on the CPU: the same two roundings.
  float f = __fmul_rn(__int2float_rn(corrected), __fmul_rn(__ldg(e.row_scale + r), __ldg(e.wscale + c)));
  if (e.bias) f = __fadd_rn(f, __ldg(e.bias + c));
  e.y[r * e.n + c] = f;
}

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

// Four 8 x 16-byte matrices; lane l gives the address of row l % 8 of matrix l / 8 and receives
// bytes 4 (l % 4) .. 4 (l % 4) + 3 of row l / 4 of each matrix: the mma fragment layout of int8.
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void* p) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s)
               : "memory");
}

__device__ __forceinline__ void mma_s8(int32_t c[4], const uint32_t a[4], const uint32_t b[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// xq [m_pad][k_pad] and wq [n_pad][k_pad], both int8 and zero padded; block (x, y) computes output
// channels x * 128.. and rows y * 128..
__global__ void __launch_bounds__(kThreads)
    gemm_mma_kernel(const int8_t* __restrict__ xq, const int8_t* __restrict__ wq, int64_t k_pad, Epilogue e) {
  extern __shared__ __align__(16) uint8_t smem[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int wm = (warp >> 2) * kWarpM, wn = (warp & 3) * kWarpN;
  const int64_t row0 = static_cast<int64_t>(blockIdx.y) * kGemmTileM;
  const int64_t col0 = static_cast<int64_t>(blockIdx.x) * kGemmTileN;
  const int8_t* ag = xq + row0 * k_pad;
  const int8_t* bg = wq + col0 * k_pad;
  const int ktiles = static_cast<int>(k_pad / kGemmTileK);

  // Copies k tile kt of both operands into a stage: 128 rows x 4 chunks of 16 bytes each.
  auto load_tile = [&](int stage, int kt) {
    uint8_t* sa = smem + stage * kStageBytes;
    uint8_t* sb = sa + kGemmTileM * kLds;
    const int64_t k0 = static_cast<int64_t>(kt) * kGemmTileK;
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int chunk = tid + i * kThreads;
      const int r = chunk >> 2, c = (chunk & 3) * 16;
      cp_async16(sa + r * kLds + c, ag + r * k_pad + k0 + c);
      cp_async16(sb + r * kLds + c, bg + r * k_pad + k0 + c);
    }
  };

  int32_t acc[4][4][4];
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int v = 0; v < 4; ++v) acc[i][j][v] = 0;

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < ktiles) load_tile(s, s);
    cp_async_commit();  // empty groups keep the count uniform
  }

  // Lane roles in ldmatrix: A matrices (rows 0-7 | 8-15) x (bytes 0-15 | 16-31), in fragment order;
  // B matrices (bytes 0-15 | 16-31) x (n tile j | j + 1).
  const int a_row = (lane & 7) + ((lane >> 3) & 1) * 8, a_col = (lane >> 4) * 16;
  const int b_row = (lane & 7) + (lane >> 4) * 8, b_col = ((lane >> 3) & 1) * 16;

  for (int kt = 0; kt < ktiles; ++kt) {
    cp_async_wait<kStages - 2>();
    __syncthreads();  // tile kt is in; every warp is done with the stage refilled below
    const int next = kt + kStages - 1;
    if (next < ktiles) load_tile(next % kStages, next);
    cp_async_commit();

    const uint8_t* sa = smem + (kt % kStages) * kStageBytes;
    const uint8_t* sb = sa + kGemmTileM * kLds;
#pragma unroll
    for (int kk = 0; kk < kGemmTileK; kk += 32) {
      uint32_t af[4][4], bf[4][2];
#pragma unroll
      for (int i = 0; i < 4; ++i) ldmatrix_x4(af[i], sa + (wm + i * 16 + a_row) * kLds + kk + a_col);
#pragma unroll
      for (int j = 0; j < 4; j += 2) {
        uint32_t r[4];
        ldmatrix_x4(r, sb + (wn + j * 8 + b_row) * kLds + kk + b_col);
        bf[j][0] = r[0];
        bf[j][1] = r[1];
        bf[j + 1][0] = r[2];
        bf[j + 1][1] = r[3];
      }
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) mma_s8(acc[i][j], af[i], bf[j]);
    }
  }
  cp_async_wait<0>();

  // Accumulator fragment: c0, c1 at row lane / 4, columns 2 (lane % 4) + {0, 1}; c2, c3 eight rows down.
  const int g = lane >> 2, t2 = (lane & 3) * 2;
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
      for (int v = 0; v < 4; ++v) {
        const int64_t r = row0 + wm + i * 16 + g + (v >> 1) * 8;
        const int64_t c = col0 + wn + j * 8 + t2 + (v & 1);
        store_output(e, r, c, acc[i][j][v]);
      }
}

// The reference: one thread per output, a plain loop over k. For diagnosing the tensor-core path.
__global__ void gemm_simple_kernel(const int8_t* __restrict__ xq, const int8_t* __restrict__ wq, int64_t k_pad,
                                   Epilogue e) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * kSimple + threadIdx.x;
  const int64_t r = static_cast<int64_t>(blockIdx.y) * kSimple + threadIdx.y;
  if (r >= e.m || c >= e.n) return;
  const int8_t* a = xq + r * k_pad;
  const int8_t* b = wq + c * k_pad;
  int32_t dot = 0;
  for (int64_t k = 0; k < e.k; ++k) dot += static_cast<int32_t>(a[k]) * static_cast<int32_t>(b[k]);
  store_output(e, r, c, dot);
}

}  // namespace

size_t gemm_w8a8_scratch_bytes(int64_t m, int64_t k) { return ScratchLayout(m, k).bytes; }

void launch_gemm_w8a8(const GemmW8A8Args& a, void* scratch, void* stream, int device) {
  const char* op = "gemmW8A8";
  if (a.m <= 0 || a.n <= 0 || a.k <= 0 || a.k > kGemmMaxK) {
    throw std::out_of_range("native: gemmW8A8 needs m, n > 0 and 0 < k <= " + std::to_string(kGemmMaxK));
  }
  const ScratchLayout l(a.m, a.k);
  const int64_t m_tiles = l.m_pad / kGemmTileM, n_tiles = gemm_round_up(a.n, kGemmTileN) / kGemmTileN;
  if (m_tiles > 65535 || (a.simple && (a.m + kSimple - 1) / kSimple > 65535) || l.m_pad > 0x7FFFFFFF) {
    throw std::out_of_range("native: gemmW8A8 has too many rows (" + std::to_string(a.m) + ")");
  }
  auto st = static_cast<cudaStream_t>(stream);
  auto* base = static_cast<uint8_t*>(scratch);
  auto* xq = reinterpret_cast<int8_t*>(base + l.xq);
  auto* row_scale = reinterpret_cast<float*>(base + l.scale);
  auto* row_zero = reinterpret_cast<int32_t*>(base + l.zero);
  auto* row_sum = reinterpret_cast<int32_t*>(base + l.sum);

  const QSpec s = qspec(a.act.is_unsigned ? QType::kUint8 : QType::kInt8);
  quantize_rows_kernel<<<static_cast<unsigned>(l.m_pad), kQuantThreads, 0, st>>>(
      a.x, a.m, a.k, l.k_pad, a.act, s, xq, row_scale, row_zero, row_sum, a.act_scale, a.act_zero);
  QARVD_CUDA_CHECK(cudaGetLastError(), op, device);

  const Epilogue e{a.m, a.n, a.k, row_scale, row_zero, row_sum, a.wscale, a.wzero, a.wsum, a.bias, a.y, a.acc};
  if (a.simple) {
    const dim3 grid(static_cast<unsigned>((a.n + kSimple - 1) / kSimple), static_cast<unsigned>((a.m + kSimple - 1) / kSimple));
    gemm_simple_kernel<<<grid, dim3(kSimple, kSimple), 0, st>>>(xq, a.wq, l.k_pad, e);
  } else {
    QARVD_CUDA_CHECK(cudaFuncSetAttribute(gemm_mma_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes),
                     op, device);
    const dim3 grid(static_cast<unsigned>(n_tiles), static_cast<unsigned>(m_tiles));
    gemm_mma_kernel<<<grid, kThreads, kSmemBytes, st>>>(xq, a.wq, l.k_pad, e);
  }
  QARVD_CUDA_CHECK(cudaGetLastError(), op, device);
}

float time_gemm_w8a8(const GemmW8A8Args& a, void* scratch, void* stream, int device, int repeat) {
  const char* op = "gemmW8A8 (timing)";
  auto st = static_cast<cudaStream_t>(stream);
  launch_gemm_w8a8(a, scratch, stream, device);
  cudaEvent_t start = nullptr, stop = nullptr;
  QARVD_CUDA_CHECK(cudaEventCreate(&start), op, device);
  cudaError_t err = cudaEventCreate(&stop);
  float ms = 0.0f;
  if (err == cudaSuccess) err = cudaEventRecord(start, st);
  if (err == cudaSuccess) {
    try {
      for (int i = 0; i < repeat; ++i) launch_gemm_w8a8(a, scratch, stream, device);
    } catch (...) {
      cudaStreamSynchronize(st);
      cudaEventDestroy(start);
      cudaEventDestroy(stop);
      throw;
    }
    err = cudaEventRecord(stop, st);
  }
  if (err == cudaSuccess) err = cudaEventSynchronize(stop);
  if (err == cudaSuccess) err = cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  if (stop) cudaEventDestroy(stop);
  if (err != cudaSuccess) fail(err, op, device, "timing with CUDA events");
  return repeat > 0 ? ms / static_cast<float>(repeat) : 0.0f;
}

}  // namespace qarvd::cuda
