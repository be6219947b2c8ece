// W8A8 linear layer on the int8 tensor cores (gemm_int.cu): the CPU layer's (csrc/kernels/gemm_int.h,
// one int8 per-channel segment) integers and floats, for x[M, K] float32 in device memory:
//
//   acc[m,n] = sum_k (xq[m,k] - za[m]) * (wq[n,k] - zw[n])                     (exact, int32)
//   y[m,n]   = fl(fl(float(acc[m,n]) * fl(sa[m] * sw[n])) + b[n])             (the CPU's epilogue)
//
// The tensor cores see the raw int8 operands; the zero points enter through the identity
//   acc = sum xq wq - za sum_k wq - zw sum_k xq + K za zw
// in wrapping 32-bit arithmetic (only the final value is guaranteed to fit, and it does for
// K <= kMaxK). Two kernels: the activations are quantized per row first (dynamic: the range of the
// row's finite values through choose_qparams, as the CPU; or static), into a zero-padded int8 copy with
// each row's sum; then the GEMM. Unsigned activations are stored shifted by -128 (with their zero
// point), which leaves every difference xq - za unchanged.
//
// Layouts: weights wq[n_pad][k_pad] (zero padded to whole tiles, uploaded once), wsum[n] = sum_k wq;
// n_pad = round_up(N, kTileN), k_pad = round_up(K, kTileK).
#pragma once
#include <cstdint>

namespace qarvd::cuda {

constexpr int kGemmTileM = 128;
constexpr int kGemmTileN = 128;
constexpr int kGemmTileK = 64;
constexpr int64_t kGemmMaxK = 32768;  // 255 * 255 * 32768 < 2^31 (csrc/kernels/gemm_int.h: kMaxIntK)

inline int64_t gemm_round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// How the activations are quantized (csrc/kernels/gemm_int.h: ActQuant).
struct GemmActQuant {
  bool dynamic = true;
  bool is_unsigned = false;  // uint8 activations (else int8)
  bool symmetric = false;    // dynamic only
  float scale = 1.0f;        // static only
  int32_t zero_point = 0;    // static only
};

struct GemmW8A8Args {
  int64_t m = 0, n = 0, k = 0;
  const float* x = nullptr;          // [m][k]
  const int8_t* wq = nullptr;        // [n_pad][k_pad]
  const float* wscale = nullptr;     // [n]
  const int32_t* wzero = nullptr;    // [n]
  const int32_t* wsum = nullptr;     // [n]
  const float* bias = nullptr;       // [n] or null
  GemmActQuant act;
  float* y = nullptr;                // [m][n], or
  int32_t* acc = nullptr;            // [m][n]: the corrected int32 sums instead of y (debugging)
  float* act_scale = nullptr;        // [m] or null: the activation scale of each row
  int32_t* act_zero = nullptr;       // [m] or null: its zero point (in the activation dtype's range)
  bool simple = false;               // a plain int32 dot-product kernel instead of the tensor cores
};

// Scratch bytes the caller provides (stream-ordered, e.g. context.cuh's Scratch).
size_t gemm_w8a8_scratch_bytes(int64_t m, int64_t k);

// Enqueues the activation quantization and the GEMM on `stream` (a cudaStream_t); the caller
// synchronizes and checks for errors (context.cuh). `device` names the device in launch errors.
void launch_gemm_w8a8(const GemmW8A8Args& a, void* scratch, void* stream, int device);

// For benchmarks: one warm-up run, then `repeat` runs back to back between two CUDA events; returns
// the milliseconds per run (activation quantization, GEMM and epilogue). Synchronizes the stream.
float time_gemm_w8a8(const GemmW8A8Args& a, void* scratch, void* stream, int device, int repeat);

}  // namespace qarvd::cuda
