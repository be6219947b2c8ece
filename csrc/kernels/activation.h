// Pointwise activations of the DiT feed-forward and time embedding: GELU (tanh form) and SiLU.
#pragma once
#include <cstdint>

#include "epilogue.h"

namespace qarvd {

enum class Activation { kGeluTanh, kSilu };

// out[i] = f(x[i]) for i < n; out may equal x (in place).
//   GELU (tanh): 0.5 x (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3), computed as the identical
//                x / (1 + exp(-2u)), which has no cancellation for negative x;
//   SiLU:        x / (1 + exp(-x)).
void activation(Activation kind, const float* x, float* out, int64_t n);

// The activation as a GEMM epilogue (epilogue.h): y = f(y) on each finished block.
Epilogue activation_epilogue(Activation kind);

// exp(x) elementwise with the vectorised exp the kernels use (for tests of its accuracy).
void exp_vector(const float* x, float* out, int64_t n);

}  // namespace qarvd
