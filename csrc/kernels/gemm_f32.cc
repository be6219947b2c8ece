#include "gemm_f32.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>

#include "../common/cpu_features.h"
#include "../common/parallel.h"

namespace qarvd::gemm {
namespace {

// Cache blocking: a KC x 16 B panel (16 KB; 32 KB for the two panels of an AVX-512 tile) stays in
// L1 while the block of A it is multiplied with (12 register tiles of rows: 72 KB with AVX2, 144 KB
// with AVX-512) stays in L2.
constexpr int64_t kKc = 256;
constexpr int64_t kMcTiles = 12;
// Column blocks of at most this many panels keep the C block a tile updates (a row block x 1024 floats)
// in L2 across the K blocks.
constexpr int64_t kMaxPanels = 64;

// Rows [r0, r0+mc) and columns [k0, k0+kc) of x, as panels of mr rows: panel p is [kc][mr]. Rows
// past the end are zero so the micro-kernel never branches on them.
template <int MR>
void pack_a_panels(const float* x, int64_t ldx, int64_t r0, int64_t mc, int64_t k0, int64_t kc, float* out) {
  for (int64_t p = 0; p < mc; p += MR) {
    float* dst = out + p * kc;
    int rows = static_cast<int>(std::min<int64_t>(MR, mc - p));
    const float* src[MR];
    for (int i = 0; i < MR; ++i) src[i] = x + (r0 + p + std::min(i, rows - 1)) * ldx + k0;
    if (rows == MR) {
      for (int64_t k = 0; k < kc; ++k)
        for (int i = 0; i < MR; ++i) dst[k * MR + i] = src[i][k];
    } else {
      for (int64_t k = 0; k < kc; ++k)
        for (int i = 0; i < MR; ++i) dst[k * MR + i] = i < rows ? src[i][k] : 0.0f;
    }
  }
}

void pack_a(int mr, const float* x, int64_t ldx, int64_t r0, int64_t mc, int64_t k0, int64_t kc, float* out) {
  switch (mr) {
    case 6: return pack_a_panels<6>(x, ldx, r0, mc, k0, kc, out);
    case 12: return pack_a_panels<12>(x, ldx, r0, mc, k0, kc, out);
  }
  throw std::logic_error("native: no A packing for this register tile");
}

thread_local AlignedBuffer<float> a_scratch;

}  // namespace

PackedF32 pack_f32(const float* w, int64_t n, int64_t k) {
  PackedF32 out;
  out.n = n;
  out.k = k;
  // Even K blocks, so that no block is a tiny remainder.
  out.kc = k > 0 ? ceil_div(k, ceil_div(k, kKc)) : 1;
  const int64_t panels = out.npanels();
  out.panels.resize(static_cast<size_t>(panels * k * kF32Nr));
  const int64_t kblocks = ceil_div(k, out.kc);
  parallel_for(panels, 4, [&](int64_t begin, int64_t end, int) {
    for (int64_t p = begin; p < end; ++p) {
      const int cols = static_cast<int>(std::min<int64_t>(kF32Nr, n - p * kF32Nr));
      for (int64_t b = 0; b < kblocks; ++b) {
        const int64_t k0 = b * out.kc, kcb = std::min(out.kc, k - k0);
        float* dst = const_cast<float*>(out.panel(b, p));
        for (int j = 0; j < cols; ++j) {
          const float* src = w + (p * kF32Nr + j) * k + k0;
          for (int64_t kk = 0; kk < kcb; ++kk) dst[kk * kF32Nr + j] = src[kk];
        }
      }
    }
  });
  return out;
}

namespace {

constexpr int kScalarMr = 6;

void f32_kernel_scalar(int64_t kc, const float* a, const float* b, int panels, float* c, int64_t ldc, int rows,
                       int cols, bool accumulate, const float* bias) {
  float acc[kScalarMr][kF32Nr] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const float* ak = a + k * kScalarMr;
    const float* bk = b + k * kF32Nr;
    for (int i = 0; i < kScalarMr; ++i)
      for (int j = 0; j < kF32Nr; ++j) acc[i][j] += ak[i] * bk[j];
  }
  for (int i = 0; i < rows; ++i) {
    float* ci = c + i * ldc;
    for (int j = 0; j < cols; ++j) {
      if (accumulate) ci[j] += acc[i][j];
      else ci[j] = bias ? acc[i][j] + bias[j] : acc[i][j];
    }
  }
}

}  // namespace

const F32Path kF32Scalar = {kScalarMr, 1, f32_kernel_scalar};

KernelPath f32_path() {
#ifdef QARVD_WITH_SIMDE
  return pick_path({Isa::kScalar, Isa::kAvx2, Isa::kAvx512}, {Isa::kAvx512});
#else
  return pick_path({Isa::kScalar, Isa::kAvx2, Isa::kAvx512}, {});
#endif
}

namespace {

const F32Path& f32_kernels() {
  const KernelPath p = f32_path();
  if (p.isa == Isa::kAvx512) {
#ifdef QARVD_WITH_SIMDE
    if (p.emulated) return emulated::kF32Avx512;
#endif
    return native::kF32Avx512;
  }
  return p.isa == Isa::kAvx2 ? kF32Avx2 : kF32Scalar;
}

}  // namespace

void linear_f32(const float* x, int64_t m, const PackedF32& w, const float* bias, float* y) {
  const int64_t n = w.n, k = w.k;
  if (m <= 0 || n <= 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) y[i * n + j] = bias ? bias[j] : 0.0f;
    return;
  }
  const F32Path& path = f32_kernels();
  const int64_t mc_max = kMcTiles * path.mr;

  const int64_t kc_max = w.kc;
  const int64_t mblocks = ceil_div(m, mc_max);
  const int64_t npanels = ceil_div(n, kF32Nr);
  // Split N too when there are few row blocks, so that every thread has several tiles.
  const int threads = num_threads();
  int64_t nblocks = ceil_div(npanels, kMaxPanels);
  while (mblocks * nblocks < 4 * threads && nblocks * 2 <= npanels) nblocks *= 2;
  // Column blocks hold whole register tiles of panels.
  const int64_t panels_per_block = round_up(ceil_div(npanels, nblocks), path.max_panels);
  nblocks = ceil_div(npanels, panels_per_block);
  const int64_t tiles = mblocks * nblocks;

  std::atomic<int64_t> next{0};
  parallel_for(std::min<int64_t>(threads, tiles), 1, [&](int64_t, int64_t, int) {
    AlignedBuffer<float>& abuf = a_scratch;
    abuf.reserve(static_cast<size_t>(round_up(mc_max, path.mr) * kc_max));
    for (int64_t t = next.fetch_add(1); t < tiles; t = next.fetch_add(1)) {
      // Consecutive tiles share a column block, so concurrent threads read the same B from L3.
      const int64_t jb = t / mblocks, ib = t % mblocks;
      const int64_t i0 = ib * mc_max, mc = std::min(mc_max, m - i0);
      const int64_t p0 = jb * panels_per_block, p1 = std::min(npanels, p0 + panels_per_block);
      for (int64_t k0 = 0; k0 < k; k0 += kc_max) {
        const int64_t kc = std::min(kc_max, k - k0);
        pack_a(path.mr, x, k, i0, mc, k0, kc, abuf.data());
        for (int64_t p = p0; p < p1; p += path.max_panels) {
          const int panels = static_cast<int>(std::min<int64_t>(path.max_panels, p1 - p));
          const float* bp = w.panel(k0 / kc_max, p);
          const int64_t j0 = p * kF32Nr;
          const int cols = static_cast<int>(std::min<int64_t>(panels * kF32Nr, n - j0));
          const float* bias_j = (k0 == 0 && bias) ? bias + j0 : nullptr;
          for (int64_t r = 0; r < mc; r += path.mr) {
            const int rows = static_cast<int>(std::min<int64_t>(path.mr, mc - r));
            path.kernel(kc, abuf.data() + r * kc, bp, panels, y + (i0 + r) * n + j0, n, rows, cols, k0 > 0, bias_j);
          }
        }
      }
    }
  });
}

}  // namespace qarvd::gemm
