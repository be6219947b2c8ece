// The driver of the integer GEMM: per block of rows, one pass permutes, quantizes and packs the
// activations of every segment (with their per-group row sums); then each 4x16 output tile runs the
// segment kernels group by group and combines them in one fp32 epilogue.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "../common/cpu_features.h"
#include "../common/parallel.h"
#include "gemm_int_kernels.h"

namespace qarvd::gemm {
namespace {

// Rows per block: the block's packed activations (64 x K int16, 1.1 MB at K = 8960) are reused for
// every weight panel while each panel (16 x K bytes) stays in L2.
constexpr int64_t kIntMc = 64;

// The kernel table for the active ISA. AVX-512 and AMX machines run the AVX2 table for now; a VNNI
// (vpdpbusd) or AMX table plugs in here. One that wants another weight layout (AMX tiles) adds its
// own packing to PackedInt, built on first use as the emulated weights are.
const IntKernels& kernels() { return active_isa() >= Isa::kAvx2 ? kIntKernelsAvx2 : kIntKernelsScalar; }

int64_t elem_bytes(const PackedSegment& s) { return s.spec.bits == 8 ? 2 : 1; }

// Where each segment's data lives in a block of packed activations.
struct Layout {
  std::vector<int64_t> a_off, a_stride, sum_off;  // per segment (bytes; bytes per row panel; int32 index)
  int64_t a_bytes = 0, sums = 0, panels = 0;
  int64_t max_len_pad = 0, max_groups = 0;

  Layout(const PackedInt& layer, int64_t rows) {
    panels = ceil_div(rows, kIntMr);
    for (const auto& s : layer.segs) {
      a_off.push_back(a_bytes);
      a_stride.push_back(s.len_pad * kIntMr * elem_bytes(s));
      a_bytes += panels * a_stride.back();
      sum_off.push_back(sums);
      sums += panels * s.ngroups * kIntMr;
      max_len_pad = std::max(max_len_pad, s.len_pad);
      max_groups = std::max(max_groups, s.ngroups);
    }
  }
};

// Packed activations of a block of rows: the data, per-group row sums, and per (segment, row) the
// scale, zero point and the zero point of the packed bytes.
struct ABlock {
  AlignedBuffer<uint8_t> data;
  AlignedBuffer<int32_t> sums;
  AlignedBuffer<float> scale;
  AlignedBuffer<int32_t> zero, zc;

  void reserve(const PackedInt& layer, const Layout& lay, int64_t rows_pad) {
    data.reserve(static_cast<size_t>(lay.a_bytes));
    sums.reserve(static_cast<size_t>(lay.sums));
    const size_t per_row = static_cast<size_t>(rows_pad * layer.segs.size());
    scale.reserve(per_row);
    zero.reserve(per_row);
    zc.reserve(per_row);
  }
};

// Per-thread working space of the packing.
struct Scratch {
  AlignedBuffer<float> row;       // kIntMr permuted input rows
  AlignedBuffer<uint8_t> tmp;     // kIntMr quantized rows before interleaving
  AlignedBuffer<int32_t> rowsum;  // one row's group sums

  void reserve(const PackedInt& layer, const Layout& lay) {
    if (!layer.perm.empty()) row.reserve(static_cast<size_t>(kIntMr * layer.k));
    tmp.reserve(static_cast<size_t>(kIntMr * lay.max_len_pad * 2));
    rowsum.reserve(static_cast<size_t>(lay.max_groups));
  }
};

thread_local ABlock t_block;
thread_local Scratch t_scratch;

// The quantization parameters of one row segment (the same for the fast and the emulated path).
QParams segment_params(const IntKernels& kern, const float* xs, int64_t len, const ActQuant& act) {
  if (!act.dynamic) return {act.scale, act.zero_point};
  float lo, hi;
  kern.minmax(xs, len, &lo, &hi);
  if (!(lo <= hi)) lo = hi = 0.0f;  // no number in the row: any scale will do
  return choose_qparams(lo, hi, act.dtype, act.symmetric);
}

// Row r of x in the layer's column order: x itself, or gathered into dst.
const float* input_row(const PackedInt& layer, const float* x, int64_t r, float* dst) {
  const float* src = x + r * layer.k;
  if (layer.perm.empty()) return src;
  for (int64_t j = 0; j < layer.k; ++j) dst[j] = src[layer.perm[j]];
  return dst;
}

// Quantizes and packs rows [r0, r0 + rows) of x (block-local rows from `first`) into blk.
void pack_rows(const PackedInt& layer, const IntKernels& kern, const Layout& lay, const float* x, int64_t m,
               int64_t r0, int64_t first, int64_t rows, int64_t rows_pad, ABlock& blk, Scratch& sc) {
  const int nseg = static_cast<int>(layer.segs.size());
  for (int64_t pr = first; pr < first + rows; pr += kIntMr) {
    const int64_t rp = pr / kIntMr;
    // The panel's input rows, permuted once for all segments.
    const float* xrows[kIntMr];
    for (int i = 0; i < kIntMr; ++i) {
      const int64_t r = r0 + pr + i;
      xrows[i] = r < m ? input_row(layer, x, r, sc.row.data() + i * layer.k) : nullptr;
    }
    for (int s = 0; s < nseg; ++s) {
      const PackedSegment& seg = layer.segs[s];
      const int64_t eb = elem_bytes(seg), row_bytes = seg.len_pad * eb;
      std::memset(sc.tmp.data(), 0, static_cast<size_t>(kIntMr * row_bytes));
      int32_t* sums = blk.sums.data() + lay.sum_off[s] + rp * seg.ngroups * kIntMr;
      for (int i = 0; i < kIntMr; ++i) {
        const int64_t lr = pr + i, r = r0 + lr;
        const size_t pi = static_cast<size_t>(s * rows_pad + lr);
        if (r >= m) {
          blk.scale[pi] = 0.0f;
          blk.zero[pi] = blk.zc[pi] = 0;
          for (int64_t g = 0; g < seg.ngroups; ++g) sums[g * kIntMr + i] = 0;
          continue;
        }
        const float* xs = xrows[i] + seg.spec.k0;
        const QParams qp = segment_params(kern, xs, seg.spec.len, seg.spec.act);
        const QRange qr = qrange(seg.spec.act.dtype);
        const float lo = static_cast<float>(qr.qmin - qp.zero_point), hi = static_cast<float>(qr.qmax - qp.zero_point);
        uint8_t* dst = sc.tmp.data() + i * row_bytes;
        int32_t zc = 0;
        if (seg.spec.bits == 8) {
          kern.quant16(xs, seg.spec.len, qp.scale, lo, hi, reinterpret_cast<int16_t*>(dst), seg.group, sc.rowsum.data());
        } else {
          zc = qp.zero_point - (seg.spec.act.dtype == QType::kUint8 ? 128 : 0);
          kern.quant8(xs, seg.spec.len, qp.scale, lo, hi, zc, reinterpret_cast<int8_t*>(dst), seg.group,
                      sc.rowsum.data());
        }
        for (int64_t g = 0; g < seg.ngroups; ++g) sums[g * kIntMr + i] = sc.rowsum[g];
        blk.scale[pi] = qp.scale;
        blk.zero[pi] = qp.zero_point;
        blk.zc[pi] = zc;
      }
      // Interleave the kIntMr rows dword by dword: [k dword][row].
      const int64_t dwords = row_bytes / 4;
      const uint32_t* src = reinterpret_cast<const uint32_t*>(sc.tmp.data());
      uint32_t* out = reinterpret_cast<uint32_t*>(blk.data.data() + lay.a_off[s] + rp * lay.a_stride[s]);
      for (int64_t t = 0; t < dwords; ++t)
        for (int i = 0; i < kIntMr; ++i) out[t * kIntMr + i] = src[i * dwords + t];
    }
  }
}

// Output tiles of block rows [first, first + rows) (block-local) against weight panels [p0, p1).
void compute_tiles(const PackedInt& layer, const IntKernels& kern, const Layout& lay, const ABlock& blk, int64_t m,
                   int64_t r0, int64_t first, int64_t rows, int64_t rows_pad, int64_t p0, int64_t p1, const float* bias,
                   float* y, int32_t* dbg) {
  const int64_t n = layer.n, total_groups = layer.total_groups();
  alignas(64) float ftile[kIntMr * kIntNr];
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t j0 = p * kIntNr;
    const int cols = static_cast<int>(std::min<int64_t>(kIntNr, n - j0));
    for (int64_t pr = first; pr < first + rows; pr += kIntMr) {
      const int64_t rp = pr / kIntMr, row0 = r0 + pr;
      const int trows = static_cast<int>(std::min<int64_t>(kIntMr, m - row0));
      int64_t gidx = 0;
      for (size_t s = 0; s < layer.segs.size(); ++s) {
        const PackedSegment& seg = layer.segs[s];
        const size_t pi = static_cast<size_t>(s * rows_pad + pr);
        SegmentArgs sa;
        sa.seg = &seg;
        sa.a = blk.data.data() + lay.a_off[s] + rp * lay.a_stride[s];
        sa.panel = p;
        sa.row_sums = blk.sums.data() + lay.sum_off[s] + rp * seg.ngroups * kIntMr;
        sa.row_zc = seg.spec.bits == 4 ? blk.zc.data() + pi : nullptr;
        sa.row_scale = blk.scale.data() + pi;
        sa.ftile = ftile;
        sa.first = s == 0;
        sa.dbg = dbg ? dbg + (row0 * n + j0) * total_groups + gidx : nullptr;
        sa.dbg_row = n * total_groups;
        sa.dbg_col = total_groups;
        sa.rows = trows;
        sa.cols = cols;
        kern.segment(sa);
        gidx += seg.ngroups;
      }
      if (!dbg) kern.store(ftile, bias ? bias + j0 : nullptr, y + row0 * n + j0, n, trows, cols);
    }
  }
}

void export_params(const PackedInt& layer, const ABlock& blk, int64_t r0, int64_t first, int64_t rows,
                   int64_t rows_pad, int64_t m, float* act_scale, int32_t* act_zero) {
  const int64_t nseg = static_cast<int64_t>(layer.segs.size());
  for (int64_t lr = first; lr < first + rows && r0 + lr < m; ++lr) {
    for (int64_t s = 0; s < nseg; ++s) {
      if (act_scale) act_scale[(r0 + lr) * nseg + s] = blk.scale[s * rows_pad + lr];
      if (act_zero) act_zero[(r0 + lr) * nseg + s] = blk.zero[s * rows_pad + lr];
    }
  }
}

}  // namespace

void forward_int(const PackedInt& layer, const float* x, int64_t m, const float* bias, float* y, int32_t* acc,
                 float* act_scale, int32_t* act_zero) {
  if (m <= 0) return;
  if (layer.segs.empty() || layer.segs.back().spec.k0 + layer.segs.back().spec.len != layer.k) {
    throw std::logic_error("native: the quantized layer's segments do not cover its inputs");
  }
  const IntKernels& kern = kernels();
  const int threads = num_threads();
  const int64_t npanels = ceil_div(layer.n, kIntNr);
  const int64_t mblocks = ceil_div(m, kIntMc);

  if (mblocks >= 2 * threads || npanels == 1) {
    // Fused: each block of rows is quantized and packed by the thread that multiplies it, so the
    // quantized activations never leave that core's caches.
    const Layout lay(layer, kIntMc);
    std::atomic<int64_t> next{0};
    parallel_for(std::min<int64_t>(threads, mblocks), 1, [&](int64_t, int64_t, int) {
      ABlock& blk = t_block;
      Scratch& sc = t_scratch;
      blk.reserve(layer, lay, kIntMc);
      sc.reserve(layer, lay);
      for (int64_t b = next.fetch_add(1); b < mblocks; b = next.fetch_add(1)) {
        const int64_t r0 = b * kIntMc, rows = std::min(kIntMc, m - r0);
        pack_rows(layer, kern, lay, x, m, r0, 0, rows, kIntMc, blk, sc);
        export_params(layer, blk, r0, 0, rows, kIntMc, m, act_scale, act_zero);
        compute_tiles(layer, kern, lay, blk, m, r0, 0, rows, kIntMc, 0, npanels, bias, y, acc);
      }
    });
    return;
  }

  // Few rows: pack all of them first (in parallel over row panels), then share the output tiles,
  // split over the weight panels as well, among the threads.
  const int64_t rows_pad = round_up(m, kIntMr);
  const Layout lay(layer, rows_pad);
  ABlock blk;
  blk.reserve(layer, lay, rows_pad);
  const int64_t rpanels = rows_pad / kIntMr;
  parallel_for(rpanels, 1, [&](int64_t begin, int64_t end, int) {
    Scratch& sc = t_scratch;
    sc.reserve(layer, lay);
    pack_rows(layer, kern, lay, x, m, 0, begin * kIntMr, (end - begin) * kIntMr, rows_pad, blk, sc);
  });
  export_params(layer, blk, 0, 0, m, rows_pad, m, act_scale, act_zero);
  const int64_t pchunk = std::max<int64_t>(1, ceil_div(npanels, 4 * threads));
  const int64_t pchunks = ceil_div(npanels, pchunk);
  const int64_t tiles = pchunks * mblocks;
  std::atomic<int64_t> next{0};
  parallel_for(std::min<int64_t>(threads, tiles), 1, [&](int64_t, int64_t, int) {
    for (int64_t t = next.fetch_add(1); t < tiles; t = next.fetch_add(1)) {
      const int64_t first = (t % mblocks) * kIntMc, rows = std::min(kIntMc, m - first);
      const int64_t p0 = (t / mblocks) * pchunk, p1 = std::min(npanels, p0 + pchunk);
      compute_tiles(layer, kern, lay, blk, m, 0, first, rows, rows_pad, p0, p1, bias, y, acc);
    }
  });
}

void forward_int_emulated(const PackedInt& layer, const float* x, int64_t m, const float* bias, float* y) {
  if (m <= 0) return;
  const int64_t n = layer.n, k = layer.k;
  auto column = [&](int64_t j) { return layer.perm.empty() ? j : static_cast<int64_t>(layer.perm[j]); };
  std::call_once(layer.emulated_once, [&] {
    std::vector<float> w(static_cast<size_t>(n * k));
    for (size_t s = 0; s < layer.segs.size(); ++s) {
      const PackedSegment& seg = layer.segs[s];
      const int64_t len = seg.spec.len, ng = seg.ngroups;
      std::vector<int8_t> q(static_cast<size_t>(n * len));
      std::vector<float> scale(static_cast<size_t>(n * ng));
      std::vector<int32_t> zero(static_cast<size_t>(n * ng));
      export_segment(layer, static_cast<int>(s), q.data(), scale.data(), zero.data());
      for (int64_t row = 0; row < n; ++row)
        for (int64_t j = 0; j < len; ++j) {
          const int64_t g = row * ng + j / seg.group;
          w[row * k + column(seg.spec.k0 + j)] = dequantize_value(q[row * len + j], scale[g], zero[g]);
        }
    }
    layer.emulated = std::make_unique<PackedF32>(pack_f32(w.data(), n, k));
  });
  const IntKernels& kern = kernels();
  AlignedBuffer<float> xq(static_cast<size_t>(m * k));
  parallel_for(m, 16, [&](int64_t begin, int64_t end, int) {
    Scratch& sc = t_scratch;
    if (!layer.perm.empty()) sc.row.reserve(static_cast<size_t>(k));
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = input_row(layer, x, r, sc.row.data());
      for (const PackedSegment& seg : layer.segs) {
        const QParams qp = segment_params(kern, xr + seg.spec.k0, seg.spec.len, seg.spec.act);
        const QRange qr = qrange(seg.spec.act.dtype);
        for (int64_t j = seg.spec.k0; j < seg.spec.k0 + seg.spec.len; ++j) {
          const int32_t q = quantize_value(xr[j], qp.scale, qp.zero_point, qr);
          xq[static_cast<size_t>(r * k + column(j))] = dequantize_value(q, qp.scale, qp.zero_point);
        }
      }
    }
  });
  linear_f32(xq.data(), m, *layer.emulated, bias, y);
}

}  // namespace qarvd::gemm
