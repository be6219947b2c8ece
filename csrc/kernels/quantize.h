// Quantize / dequantize for every granularity, the dynamic per-token quantize, and the per-block
// range reduction behind chooseQParams. Semantics are those of quant_math.h, bit for bit, on every
// code path (scalar and AVX2, chosen from active_isa()); work is split over the thread pool.
//
// A tensor is seen as [outer, axis_len, inner] around the quantization axis:
//   per tensor   one scale;
//   per channel  scale[a] for index a along the axis;
//   per group    scale[(o * (axis_len / group) + a / group) * inner + i], i.e. the scale tensor has the
//                input's shape with the axis divided by the group size.
// Quantized outputs are int8/uint8 bytes or 4-bit values packed two per byte (element 2k in the low
// nibble; an odd count leaves a zero high nibble in the last byte).
#pragma once
#include <cstdint>

#include "quant_math.h"

namespace qarvd {

// Input float types, numbered as the dtype codes of lib/tensor/dtype.ts.
enum class FloatType : int { kF32 = 0, kF16 = 1, kBF16 = 2 };

enum class Granularity : int { kPerTensor = 0, kPerChannel = 1, kPerGroup = 2 };

struct BlockLayout {
  int64_t outer = 1, axis_len = 0, inner = 1;
  Granularity mode = Granularity::kPerTensor;
  int64_t group = 1;  // per group only

  int64_t size() const { return outer * axis_len * inner; }
  int64_t num_scales() const;
  // Throws std::invalid_argument / std::out_of_range for negative dims, a bad mode or a group size
  // that does not divide axis_len.
  void validate() const;
};

inline int64_t float_type_size(FloatType t) { return t == FloatType::kF32 ? 4 : 2; }
inline int64_t packed_bytes(QType t, int64_t count) { return bits_of(t) == 4 ? (count + 1) / 2 : count; }

// out[e] = quantize_value(x[e], scale[b(e)], zero_point[b(e)]) with b(e) the block of element e.
void quantize(const void* x, FloatType xt, const BlockLayout& layout, const float* scale,
              const int32_t* zero_point, QType qt, void* out);

// out[e] = dequantize_value(q[e], scale[b(e)], zero_point[b(e)]).
void dequantize(const void* q, QType qt, const BlockLayout& layout, const float* scale,
                const int32_t* zero_point, float* out);

// lo[b], hi[b] = min and max of x over block b (blocks as for quantize). Throws std::range_error
// when x holds NaN or an infinity. An empty block gives lo = +inf, hi = -inf.
void block_range(const void* x, FloatType xt, const BlockLayout& layout, float* lo, float* hi);

// scale[b], zero_point[b] = choose_qparams(block_range(b)); empty blocks use the range [0, 0].
void choose_qparams_blocks(const void* x, FloatType xt, const BlockLayout& layout, QType qt,
                           bool symmetric, float* scale, int32_t* zero_point);

// Dynamic per-token quantize of x[rows, cols]: each row's range (min/max, or abs-max when symmetric)
// is reduced, choose_qparams gives its scale and zero point, and the row (still in cache) is
// quantized, in one pass over memory. Throws std::range_error naming the row on NaN or infinity.
void quantize_per_token(const void* x, FloatType xt, int64_t rows, int64_t cols, QType qt,
                        bool symmetric, void* out, float* scale, int32_t* zero_point);

}  // namespace qarvd
