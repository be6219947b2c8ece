#include "gemm_f32.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <vector>

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
thread_local AlignedBuffer<float> t_packed_all;

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

void linear_f32(const float* x, int64_t m, const PackedF32& w, const float* bias, float* y, const Epilogue* post) {
  const F32Job job{&w, bias, y, post};
  linear_f32_multi(x, m, &job, 1);
}

namespace {

// One tile of work: rows [i0, i0 + mc) of a job against its panels [p0, p1), over all of K. The
// packed rows are packed here (per K block, into abuf) or taken from all of x packed up front
// (packed_all: K block by K block, block k0 at k0 * m_pad, its rows in panels of mr rows).
void run_tile(const F32Path& path, const float* x, int64_t k, const F32Job& job, int64_t i0, int64_t mc, int64_t p0,
              int64_t p1, const float* packed_all, int64_t m_pad, float* abuf) {
  const PackedF32& w = *job.w;
  const int64_t n = w.n, kc_max = w.kc;
  for (int64_t k0 = 0; k0 < k; k0 += kc_max) {
    const int64_t kc = std::min(kc_max, k - k0);
    if (!packed_all) pack_a(path.mr, x, k, i0, mc, k0, kc, abuf);
    const float* ablock = packed_all ? packed_all + k0 * m_pad + i0 * kc : abuf;
    for (int64_t p = p0; p < p1; p += path.max_panels) {
      const int panels = static_cast<int>(std::min<int64_t>(path.max_panels, p1 - p));
      const float* bp = w.panel(k0 / kc_max, p);
      const int64_t j0 = p * kF32Nr;
      const int cols = static_cast<int>(std::min<int64_t>(panels * kF32Nr, n - j0));
      const float* bias_j = (k0 == 0 && job.bias) ? job.bias + j0 : nullptr;
      for (int64_t r = 0; r < mc; r += path.mr) {
        const int rows = static_cast<int>(std::min<int64_t>(path.mr, mc - r));
        path.kernel(kc, ablock + r * kc, bp, panels, job.y + (i0 + r) * n + j0, n, rows, cols, k0 > 0, bias_j);
      }
    }
  }
  if (job.post) {
    const int64_t j0 = p0 * kF32Nr, j1 = std::min(n, p1 * kF32Nr);
    apply_epilogue(job.post, job.y + i0 * n + j0, n, i0, j0, mc, j1 - j0);
  }
}

}  // namespace

void linear_f32_multi(const float* x, int64_t m, const F32Job* jobs, int count) {
  if (m <= 0 || count <= 0) return;
  const int64_t k = jobs[0].w->k;
  for (int j = 0; j < count; ++j) {
    if (jobs[j].w->k != k) throw std::logic_error("native: linear_f32_multi layers must share K");
  }
  if (k == 0) {
    for (int j = 0; j < count; ++j) {
      const int64_t n = jobs[j].w->n;
      for (int64_t i = 0; i < m; ++i)
        for (int64_t c = 0; c < n; ++c) jobs[j].y[i * n + c] = jobs[j].bias ? jobs[j].bias[c] : 0.0f;
      apply_epilogue(jobs[j].post, jobs[j].y, n, 0, 0, m, n);
    }
    return;
  }
  const F32Path& path = f32_kernels();
  const int64_t mc_max = kMcTiles * path.mr;
  const int64_t kc_max = jobs[0].w->kc;
  const int64_t mblocks = ceil_div(m, mc_max);
  const int threads = num_threads();

  // Column blocks per job: split N when there are few row blocks, so that every thread has several
  // tiles; blocks hold whole register tiles of panels.
  struct Cols {
    int64_t panels_per_block, blocks;
  };
  std::vector<Cols> cols(static_cast<size_t>(count));
  int64_t col_blocks = 0;
  for (int j = 0; j < count; ++j) {
    const int64_t npanels = jobs[j].w->npanels();
    int64_t nb = ceil_div(npanels, kMaxPanels);
    while (mblocks * (col_blocks + nb) < 4 * threads && nb * 2 <= npanels) nb *= 2;
    const int64_t ppb = round_up(ceil_div(npanels, nb), path.max_panels);
    cols[j] = {ppb, ceil_div(npanels, ppb)};
    col_blocks += cols[j].blocks;
  }
  const int64_t tiles = mblocks * col_blocks;
  // Tile t: column block t / mblocks (counted over the jobs in order), row block t % mblocks.
  auto locate = [&](int64_t cb, int& job, int64_t& block) {
    job = 0;
    while (cb >= cols[job].blocks) cb -= cols[job++].blocks;
    block = cb;
  };

  // Few row blocks: x is packed once, K block by K block ([m_pad][kc] each, panels of mr rows), and
  // shared by every tile; with many, each tile packs its own rows.
  const bool shared = mblocks < 2 * threads && tiles > mblocks;
  const int64_t m_pad = round_up(m, path.mr);
  // The calling thread's buffer (the tiles only read it), reused from call to call.
  AlignedBuffer<float>& packed = t_packed_all;
  if (shared) {
    const int64_t kblocks = ceil_div(k, kc_max);
    packed.reserve(static_cast<size_t>(m_pad * k));
    parallel_for(kblocks * ceil_div(m, mc_max), 1, [&](int64_t begin, int64_t end, int) {
      for (int64_t t = begin; t < end; ++t) {
        const int64_t kb = t / mblocks, ib = t % mblocks;
        const int64_t k0 = kb * kc_max, kc = std::min(kc_max, k - k0);
        const int64_t i0 = ib * mc_max, mc = std::min(mc_max, m - i0);
        pack_a(path.mr, x, k, i0, mc, k0, kc, packed.data() + k0 * m_pad + i0 * kc);
      }
    });
  }

  std::atomic<int64_t> next{0};
  parallel_for(std::min<int64_t>(threads, tiles), 1, [&](int64_t, int64_t, int) {
    AlignedBuffer<float>& abuf = a_scratch;
    if (!shared) abuf.reserve(static_cast<size_t>(round_up(mc_max, path.mr) * kc_max));
    for (int64_t t = next.fetch_add(1); t < tiles; t = next.fetch_add(1)) {
      // Consecutive tiles share a column block, so concurrent threads read the same B from L3.
      int job;
      int64_t cb;
      locate(t / mblocks, job, cb);
      const int64_t ib = t % mblocks;
      const int64_t i0 = ib * mc_max, mc = std::min(mc_max, m - i0);
      const int64_t p0 = cb * cols[job].panels_per_block;
      const int64_t p1 = std::min(jobs[job].w->npanels(), p0 + cols[job].panels_per_block);
      run_tile(path, x, k, jobs[job], i0, mc, p0, p1, shared ? packed.data() : nullptr, m_pad, abuf.data());
    }
  });
}

}  // namespace qarvd::gemm
