// 3-D rotary position embedding of Wan2.1 on q or k laid out [tokens, heads, head_dim].
//
// The head dimension d splits into a frame part of d - 4 floor(d/6) elements, then a height part and
// a width part of 2 floor(d/6) each. In a part of size p, the pair (x[2i], x[2i+1]) is rotated as a
// complex number by the angle pos * theta^(-2i/p), pos being the token's frame index (plus
// start_frame: the causal model gives each chunk its absolute frame positions), its row or its column
// in the patched latent grid. Tokens are ordered frame-major, then row, then column.
#pragma once
#include <cstdint>

namespace qarvd {

struct RopeShape {
  int64_t tokens;
  int64_t heads;
  int64_t head_dim;  // even, >= 6
  int64_t frames, height, width;  // tokens == frames * height * width
  int64_t start_frame;
  double theta;  // 10000 in Wan
};

// Sizes of the frame, height and width parts of a head of head_dim elements.
void rope_split(int64_t head_dim, int64_t parts[3]);

// out = rotated x; out may equal x.
void rope_3d(const float* x, float* out, const RopeShape& s);

// RMSNorm over each token's row (heads * head_dim, with its weight), then the rotation, in place,
// for several tensors of the same shape (q and k) in one pass: the result of rms_norm then rope_3d.
struct RmsRopeTarget {
  float* x;
  const float* weight;  // may be null
};
void rms_norm_rope_3d(const RmsRopeTarget* targets, int count, float eps, const RopeShape& s);

}  // namespace qarvd
