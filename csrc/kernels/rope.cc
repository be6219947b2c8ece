#include "rope.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "../common/cpu_features.h"
#include "../common/parallel.h"
#include "norm.h"
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

// Pairs never straddle the masked tail (d is even, vectors hold four pairs), so the in-pair swap
// works the same on the tail.
QARVD_AVX2 void rotate_avx2(const float* x, float* y, const float* c, const float* s, int64_t d) {
  int64_t j = 0;
  for (; j + 8 <= d; j += 8) {
    const __m256 v = _mm256_loadu_ps(x + j);
    const __m256 sw = _mm256_permute_ps(v, 0xB1);  // (x1, x0) in every pair
    _mm256_storeu_ps(y + j, _mm256_fmadd_ps(v, _mm256_loadu_ps(c + j), _mm256_mul_ps(sw, _mm256_loadu_ps(s + j))));
  }
  if (j < d) {
    const __m256i m = simd::tail_mask_avx2(static_cast<int>(d - j));
    const __m256 v = _mm256_maskload_ps(x + j, m);
    const __m256 sw = _mm256_permute_ps(v, 0xB1);
    _mm256_maskstore_ps(y + j, m, _mm256_fmadd_ps(v, _mm256_maskload_ps(c + j, m), _mm256_mul_ps(sw, _mm256_maskload_ps(s + j, m))));
  }
}

struct Tables {
  PartTable part[3];  // frame, height, width
};

// Rotates tokens [b, e). The token's cos/sin row (shared by its heads) is kept assembled and only
// the parts whose position changed are refreshed: the width part every token, the height part every
// row, the frame part every frame.
// Not itself compiled for AVX2: the scalar instantiation must run on any x86-64.
// An RMSNorm of each token's row before the rotation (rms_norm_rope_3d), or none.
struct RmsBefore {
  bool on = false;
  float eps = 0;
  const float* weight = nullptr;
};

template <bool kAvx2>
void rope_range(const float* x, float* out, const RopeShape& s, const Tables& t, int64_t b, int64_t e,
                RmsBefore rms = {}) {
  const int64_t d = s.head_dim, row = s.heads * d, hw = s.height * s.width;
  const int64_t p0 = t.part[0].size, p1 = t.part[1].size, p2 = t.part[2].size;
  std::vector<float> c(d), sn(d);
  int64_t f = b / hw, r = (b % hw) / s.width, w = b % s.width;
  int64_t have_f = -1, have_r = -1;
  for (int64_t tok = b; tok < e; ++tok) {
    if (f != have_f) {
      std::copy_n(&t.part[0].c[f * p0], p0, c.data());
      std::copy_n(&t.part[0].s[f * p0], p0, sn.data());
      have_f = f;
    }
    if (r != have_r) {
      std::copy_n(&t.part[1].c[r * p1], p1, c.data() + p0);
      std::copy_n(&t.part[1].s[r * p1], p1, sn.data() + p0);
      have_r = r;
    }
    const float* wc = &t.part[2].c[w * p2];
    const float* ws = &t.part[2].s[w * p2];
    for (int64_t j = 0; j < p2; ++j) {
      c[p0 + p1 + j] = wc[j];
      sn[p0 + p1 + j] = ws[j];
    }
    if (rms.on) rms_norm_row(x + tok * row, out + tok * row, row, rms.eps, rms.weight);
    const float* xt = rms.on ? out : x;
    for (int64_t h = 0; h < s.heads; ++h) {
      const float* xi = xt + tok * row + h * d;
      float* yi = out + tok * row + h * d;
      if (kAvx2) {
        rotate_avx2(xi, yi, c.data(), sn.data(), d);
      } else {
        rotate_scalar(xi, yi, c.data(), sn.data(), d);
      }
    }
    if (++w == s.width) {
      w = 0;
      if (++r == s.height) {
        r = 0;
        ++f;
        have_r = -1;
      }
    }
  }
}

// Splits n tokens into at most this many ranges of at least `grain` tokens.
int64_t ceil_tokens(int64_t n, int64_t grain) { return std::max<int64_t>(1, n / std::max<int64_t>(grain, 1)); }

}  // namespace

void rope_split(int64_t head_dim, int64_t parts[3]) {
  const int64_t sixth = head_dim / 6;
  parts[0] = head_dim - 4 * sixth;
  parts[1] = 2 * sixth;
  parts[2] = 2 * sixth;
}

namespace {

Tables tables_for(const RopeShape& s) {
  if (s.head_dim < 6 || s.head_dim % 2 != 0) throw std::range_error("rope_3d: head_dim must be even and >= 6");
  if (s.tokens != s.frames * s.height * s.width) throw std::range_error("rope_3d: tokens != frames * height * width");
  int64_t parts[3];
  rope_split(s.head_dim, parts);
  return Tables{{make_table(parts[0], s.start_frame, s.frames, s.theta), make_table(parts[1], 0, s.height, s.theta),
                 make_table(parts[2], 0, s.width, s.theta)}};
}

int64_t token_grain(const RopeShape& s) { return std::max<int64_t>(1, (1 << 13) / std::max<int64_t>(s.heads * s.head_dim, 1)); }

}  // namespace

void rope_3d(const float* x, float* out, const RopeShape& s) {
  const Tables t = tables_for(s);
  const bool avx2 = active_isa() >= Isa::kAvx2;
  parallel_for(s.tokens, token_grain(s), [&](int64_t b, int64_t e, int) {
    if (avx2) {
      rope_range<true>(x, out, s, t, b, e);
    } else {
      rope_range<false>(x, out, s, t, b, e);
    }
  });
}

void rms_norm_rope_3d(const RmsRopeTarget* targets, int count, float eps, const RopeShape& s) {
  const Tables t = tables_for(s);
  const bool avx2 = active_isa() >= Isa::kAvx2;
  // Ranges of tokens of every target, so that both tensors share the threads.
  const int64_t per = ceil_tokens(s.tokens, token_grain(s));
  parallel_for(count * per, 1, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      const RmsRopeTarget& tg = targets[r / per];
      const int64_t t0 = (r % per) * s.tokens / per, t1 = (r % per + 1) * s.tokens / per;
      const RmsBefore rms{true, eps, tg.weight};
      if (avx2) {
        rope_range<true>(tg.x, tg.x, s, t, t0, t1, rms);
      } else {
        rope_range<false>(tg.x, tg.x, s, t, t0, t1, rms);
      }
    }
  });
}

}  // namespace qarvd
