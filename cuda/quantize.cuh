// Launchers of the CUDA quantize family (quantize.cu): the same semantics and layouts as the CPU
// family (csrc/kernels/quantize.h), bit for bit. Pointers are device pointers from cudaMalloc (256-byte
// aligned, which the vector loads rely on); `stream` is a cudaStream_t. The launchers only enqueue:
// the caller synchronizes and checks for errors (context.cuh).
#pragma once
#include <cstdint>

#include "../csrc/kernels/quantize.h"

namespace qarvd::cuda {

constexpr int kNoBadRowByte = 0x7F;
constexpr int kNoBadRow = 0x7F7F7F7F;

// out[e] = quantize_value(x[e], scale[b(e)], zero_point[b(e)]), 4-bit outputs packed (an odd count
// leaves a zero high nibble in the last byte).
void launch_quantize(const void* x, FloatType xt, const BlockLayout& layout, const float* scale,
                     const int32_t* zero_point, QType qt, void* out, void* stream);

// out[e] = dequantize_value(q[e], scale[b(e)], zero_point[b(e)]).
void launch_dequantize(const void* q, QType qt, const BlockLayout& layout, const float* scale,
                       const int32_t* zero_point, float* out, void* stream);

// scale[b], zero_point[b] = choose_qparams(min, max of block b). `lo`, `hi` (num_scales floats each)
// and `bad` (one int, set non-zero when x holds NaN or an infinity) are scratch.
void launch_choose_qparams(const void* x, FloatType xt, const BlockLayout& layout, QType qt, bool symmetric,
                           float* lo, float* hi, int* bad, float* scale, int32_t* zero_point, void* stream);

// Dynamic per-token quantize of x[rows, cols], one thread block per row (two rows per block for
// 4-bit outputs with an odd row length, so that no byte is shared between blocks): the row's range,
// its scale and zero point, and its quantization in one kernel. `bad_row` (one int) receives the
// smallest row holding NaN or an infinity, and stays kNoBadRow otherwise (the launcher sets it with a
// memset of kNoBadRowByte, which needs no host memory).
void launch_quantize_per_token(const void* x, FloatType xt, int64_t rows, int64_t cols, QType qt, bool symmetric,
                               void* out, float* scale, int32_t* zero_point, int* bad_row, void* stream);

}  // namespace qarvd::cuda
