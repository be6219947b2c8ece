#include "gemm_f32.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>

#include "../common/cpu_features.h"
#include "../common/parallel.h"

namespace qarvd::gemm {
namespace {

// Cache blocking for Zen 3 class cores (32 KB L1d, 512 KB L2): a KC x 16 B panel (16 KB) stays in
// L1 while the MC x KC block of A (72 KB) it is multiplied with stays in L2.
constexpr int64_t kKc = 256;
constexpr int64_t kMc = 72;
// Column blocks of at most this many panels keep the C block a tile updates (kMc x 1024 floats)
// in L2 across the K blocks.
constexpr int64_t kMaxPanels = 64;

// Rows [r0, r0+mc) and columns [k0, k0+kc) of x, as panels of kF32Mr rows: panel p is [kc][kF32Mr].
// Rows past the end are zero so the micro-kernel never branches on them.
void pack_a(const float* x, int64_t ldx, int64_t r0, int64_t mc, int64_t k0, int64_t kc, float* out) {
  for (int64_t p = 0; p < mc; p += kF32Mr) {
    float* dst = out + p * kc;
    int rows = static_cast<int>(std::min<int64_t>(kF32Mr, mc - p));
    const float* src[kF32Mr];
    for (int i = 0; i < kF32Mr; ++i) src[i] = x + (r0 + p + std::min(i, rows - 1)) * ldx + k0;
    if (rows == kF32Mr) {
      for (int64_t k = 0; k < kc; ++k)
        for (int i = 0; i < kF32Mr; ++i) dst[k * kF32Mr + i] = src[i][k];
    } else {
      for (int64_t k = 0; k < kc; ++k)
        for (int i = 0; i < kF32Mr; ++i) dst[k * kF32Mr + i] = i < rows ? src[i][k] : 0.0f;
    }
  }
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

void f32_kernel_scalar(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int rows, int cols,
                       bool accumulate, const float* bias) {
  float acc[kF32Mr][kF32Nr] = {};
  for (int64_t k = 0; k < kc; ++k) {
    const float* ak = a + k * kF32Mr;
    const float* bk = b + k * kF32Nr;
    for (int i = 0; i < kF32Mr; ++i)
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

void linear_f32(const float* x, int64_t m, const PackedF32& w, const float* bias, float* y) {
  const int64_t n = w.n, k = w.k;
  if (m <= 0 || n <= 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) y[i * n + j] = bias ? bias[j] : 0.0f;
    return;
  }
  // AVX-512 machines run the AVX2 kernel for now; a 16-wide kernel would plug in here.
  F32Kernel kernel = active_isa() >= Isa::kAvx2 ? f32_kernel_avx2 : f32_kernel_scalar;

  const int64_t kc_max = w.kc;
  const int64_t mblocks = ceil_div(m, kMc);
  const int64_t npanels = ceil_div(n, kF32Nr);
  // Split N too when there are few row blocks, so that every thread has several tiles.
  const int threads = num_threads();
  int64_t nblocks = ceil_div(npanels, kMaxPanels);
  while (mblocks * nblocks < 4 * threads && nblocks * 2 <= npanels) nblocks *= 2;
  const int64_t panels_per_block = ceil_div(npanels, nblocks);
  nblocks = ceil_div(npanels, panels_per_block);
  const int64_t tiles = mblocks * nblocks;

  std::atomic<int64_t> next{0};
  parallel_for(std::min<int64_t>(threads, tiles), 1, [&](int64_t, int64_t, int) {
    AlignedBuffer<float>& abuf = a_scratch;
    abuf.reserve(static_cast<size_t>(round_up(kMc, kF32Mr) * kc_max));
    for (int64_t t = next.fetch_add(1); t < tiles; t = next.fetch_add(1)) {
      // Consecutive tiles share a column block, so concurrent threads read the same B from L3.
      const int64_t jb = t / mblocks, ib = t % mblocks;
      const int64_t i0 = ib * kMc, mc = std::min(kMc, m - i0);
      const int64_t p0 = jb * panels_per_block, p1 = std::min(npanels, p0 + panels_per_block);
      for (int64_t k0 = 0; k0 < k; k0 += kc_max) {
        const int64_t kc = std::min(kc_max, k - k0);
        pack_a(x, k, i0, mc, k0, kc, abuf.data());
        for (int64_t p = p0; p < p1; ++p) {
          const float* bp = w.panel(k0 / kc_max, p);
          const int64_t j0 = p * kF32Nr;
          const int cols = static_cast<int>(std::min<int64_t>(kF32Nr, n - j0));
          const float* bias_j = (k0 == 0 && bias) ? bias + j0 : nullptr;
          for (int64_t r = 0; r < mc; r += kF32Mr) {
            const int rows = static_cast<int>(std::min<int64_t>(kF32Mr, mc - r));
            kernel(kc, abuf.data() + r * kc, bp, y + (i0 + r) * n + j0, n, rows, cols, k0 > 0, bias_j);
          }
        }
      }
    }
  });
}

}  // namespace qarvd::gemm
