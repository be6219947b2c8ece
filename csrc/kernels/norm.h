// Normalisations and the modulation of DiT blocks, on activations [rows, dim] (token-major).
//
// Modulation vectors come as [groups, dim]: group g applies to the rows_per_group = rows / groups
// consecutive rows g * rows_per_group ... (the causal DiT modulates each latent frame's tokens with
// that frame's time embedding). groups = 1 is one vector for all rows.
#pragma once
#include <cstdint>

#include "epilogue.h"

namespace qarvd {

struct NormShape {
  int64_t rows;
  int64_t dim;
};

// y = (x - mean) / sqrt(var + eps) over each row (biased variance), then optionally
// y = y * weight + bias (elementwise affine; bias may be null), then optionally
// y = y * (1 + scale[g]) + shift[g] (both given or both null; [groups, dim]). out may equal x.
void layer_norm(const float* x, float* out, NormShape s, float eps, const float* weight, const float* bias,
                const float* shift, const float* scale, int64_t groups);

// y = x / sqrt(mean(x^2) + eps) * weight (weight may be null). out may equal x.
void rms_norm(const float* x, float* out, NormShape s, float eps, const float* weight);

// One row of rms_norm (the same code path rms_norm takes), for kernels that fuse it.
void rms_norm_row(const float* x, float* out, int64_t dim, float eps, const float* weight);

// out = x + y * gate[g] (gate [groups, dim]). out may equal x or y.
void gated_residual(const float* x, const float* y, const float* gate, float* out, NormShape s, int64_t groups);

// The gated residual as a GEMM epilogue (epilogue.h): residual[i][j] += y[i][j] * gate[j] for each
// finished block of y (the GEMM's output, then scratch), with gated_residual's float operations.
Epilogue gated_residual_epilogue(const float* gate, float* residual, int64_t ld_residual);

}  // namespace qarvd
