#include "rope.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "../common/cpu_features.h"
#include "../common/parallel.h"
#include "simd_math.h"

namespace qarvd {
namespace {

// cos and signed sin of every (position, pair) of one part, duplicated per element of the pair so
// that a rotation is out = x * c + swap_pairs(x) * s with c = (cos, cos), s = (-sin, sin). Angles in
// double as Wan does (its tables are complex128), rounded to float once.
struct PartTable {
  int64_t size;  // elements of the part (pairs * 2)
  std::vector<float> c, s;  // [positions][size]
};

PartTable make_table(int64_t part, int64_t first_pos, int64_t positions, double theta) {
  PartTable t{part, std::vector<float>(positions * part), std::vector<float>(positions * part)};
  for (int64_t p = 0; p < positions; ++p) {
    for (int64_t i = 0; i < part / 2; ++i) {
      const double freq = 1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(part));
      const double angle = static_cast<double>(first_pos + p) * freq;
      const float c = static_cast<float>(std::cos(angle)), s = static_cast<float>(std::sin(angle));
      float* cr = &t.c[p * part + 2 * i];
      float* sr = &t.s[p * part + 2 * i];
      cr[0] = c;
      cr[1] = c;
      sr[0] = -s;
      sr[1] = s;
    }
  }
  return t;
}

void rotate_scalar(const float* x, float* y, const float* c, const float* s, int64_t d) {
  for (int64_t j = 0; j < d; j += 2) {
    const float x0 = x[j], x1 = x[j + 1];
    y[j] = x0 * c[j] + x1 * s[j];
    y[j + 1] = x1 * c[j + 1] + x0 * s[j + 1];
  }
}

QARVD_AVX2 void rotate_avx2(const float* x, float* y, const float* c, const float* s, int64_t d) {
  int64_t j = 0;
  for (; j + 8 <= d; j += 8) {
    __m256 v = _mm256_loadu_ps(x + j);
    __m256 sw = _mm256_permute_ps(v, 0xB1);  // (x1, x0) in every pair
    _mm256_storeu_ps(y + j, _mm256_fmadd_ps(v, _mm256_loadu_ps(c + j), _mm256_mul_ps(sw, _mm256_loadu_ps(s + j))));
  }
  if (j < d) rotate_scalar(x + j, y + j, c + j, s + j, d - j);
}

}  // namespace

void rope_split(int64_t head_dim, int64_t parts[3]) {
  const int64_t sixth = head_dim / 6;
  parts[0] = head_dim - 4 * sixth;
  parts[1] = 2 * sixth;
  parts[2] = 2 * sixth;
}

void rope_3d(const float* x, float* out, const RopeShape& s) {
  if (s.head_dim < 6 || s.head_dim % 2 != 0) throw std::range_error("rope_3d: head_dim must be even and >= 6");
  if (s.tokens != s.frames * s.height * s.width) throw std::range_error("rope_3d: tokens != frames * height * width");
  int64_t parts[3];
  rope_split(s.head_dim, parts);
  const PartTable tf = make_table(parts[0], s.start_frame, s.frames, s.theta);
  const PartTable th = make_table(parts[1], 0, s.height, s.theta);
  const PartTable tw = make_table(parts[2], 0, s.width, s.theta);
  const int64_t d = s.head_dim, row = s.heads * d, hw = s.height * s.width;
  const bool avx2 = active_isa() >= Isa::kAvx2;
  const int64_t grain = std::max<int64_t>(1, (1 << 13) / std::max<int64_t>(row, 1));
  parallel_for(s.tokens, grain, [&](int64_t b, int64_t e, int) {
    // The cos/sin row of a token is shared by all its heads: assemble it once from the three parts.
    std::vector<float> c(d), sn(d);
    for (int64_t t = b; t < e; ++t) {
      const int64_t f = t / hw, r = (t % hw) / s.width, w = t % s.width;
      const PartTable* tables[3] = {&tf, &th, &tw};
      const int64_t pos[3] = {f, r, w};
      int64_t off = 0;
      for (int k = 0; k < 3; ++k) {
        const int64_t p = tables[k]->size;
        std::copy_n(&tables[k]->c[pos[k] * p], p, c.data() + off);
        std::copy_n(&tables[k]->s[pos[k] * p], p, sn.data() + off);
        off += p;
      }
      for (int64_t h = 0; h < s.heads; ++h) {
        const float* xi = x + t * row + h * d;
        float* yi = out + t * row + h * d;
        if (avx2) {
          rotate_avx2(xi, yi, c.data(), sn.data(), d);
        } else {
          rotate_scalar(xi, yi, c.data(), sn.data(), d);
        }
      }
    }
  });
}

}  // namespace qarvd
