// The driver of the integer GEMM: per block of rows, one pass permutes, quantizes and packs the
// activations of every segment (with their per-group row sums) in the format of the path in use;
// then each register tile of the output runs the path's segment routine, group by group, and
// combines the segments in one fp32 epilogue.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "../common/cpu_features.h"
#include "../common/parallel.h"
#include "gemm_int_kernels.h"

namespace qarvd::gemm {

KernelPath int_path() {
#ifdef QARVD_WITH_SIMDE
  return pick_path({Isa::kScalar, Isa::kAvx2, Isa::kAvxVnni, Isa::kAvx512Vnni, Isa::kAmx},
                   {Isa::kAvxVnni, Isa::kAvx512Vnni, Isa::kAmx});
#else
  return pick_path({Isa::kScalar, Isa::kAvx2, Isa::kAvxVnni, Isa::kAvx512Vnni, Isa::kAmx}, {});
#endif
}

namespace {

// Below this many rows the AMX path hands the call to the AVX-512 VNNI path (same weight layout):
// a 32-row tile would mostly multiply padding. At or below kFewRows, VNNI uses 4-row tiles.
constexpr int64_t kAmxMinRows = 32;
constexpr int64_t kFewRows = 16;

// The path's kernels for a call of m rows (m < 0: any, as for packing layouts).
const IntPath& path_of(KernelPath p, int64_t m = -1) {
  if (p.isa == Isa::kAmx && m >= 0 && m < kAmxMinRows) p.isa = Isa::kAvx512Vnni;
  const bool few = m >= 0 && m <= kFewRows;
  switch (p.isa) {
#ifdef QARVD_WITH_SIMDE
    case Isa::kAvxVnni: return p.emulated ? emulated::kIntAvxVnni : native::kIntAvxVnni;
    case Isa::kAvx512Vnni:
      if (p.emulated) return few ? emulated::kIntAvx512VnniFew : emulated::kIntAvx512Vnni;
      return few ? native::kIntAvx512VnniFew : native::kIntAvx512Vnni;
    case Isa::kAmx: return p.emulated ? emulated::kIntAmx : native::kIntAmx;
#else
    case Isa::kAvxVnni: return native::kIntAvxVnni;
    case Isa::kAvx512Vnni: return few ? native::kIntAvx512VnniFew : native::kIntAvx512Vnni;
    case Isa::kAmx: return native::kIntAmx;
#endif
    case Isa::kAvx2: return kIntAvx2;
    default: return kIntScalar;
  }
}

}  // namespace

const IntPath& current_int_path() { return path_of(int_path()); }

namespace {

// Where each segment's data lives in a block of packed activations.
struct Layout {
  std::vector<int64_t> a_off, a_stride, a_ld, sum_off;  // per segment (bytes; bytes per row panel; bytes per row; int32 index)
  int64_t a_bytes = 0, sums = 0, panels = 0;
  int64_t max_row_bytes = 0, max_groups = 0;

  Layout(const IntPath& path, const PackedInt& layer, int64_t rows) {
    panels = ceil_div(rows, path.mr);
    for (const auto& s : layer.segs) {
      // Row-major (AMX) rows are padded to whole tile steps; the others to the layout's steps.
      const int64_t len = path.row_major ? tile_padded_len(s) : s.panels(path.layout).len_pad;
      const int64_t row_bytes = len * (path.int16_pairs(s) ? 2 : 1);
      a_off.push_back(a_bytes);
      a_ld.push_back(row_bytes);
      a_stride.push_back(row_bytes * path.mr);
      a_bytes += panels * a_stride.back();
      sum_off.push_back(sums);
      sums += panels * s.ngroups * path.mr;
      max_row_bytes = std::max(max_row_bytes, row_bytes);
      max_groups = std::max(max_groups, s.ngroups);
    }
  }
};

// Packed activations of a block of rows: the data, per-group row sums, and per (segment, row) the
// scale, zero point and the zero point of the packed values.
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
  AlignedBuffer<float> row;       // the permuted input rows of a panel
  AlignedBuffer<uint8_t> tmp;     // a panel's quantized rows before interleaving
  AlignedBuffer<int32_t> rowsum;  // one row's group sums
  AlignedBuffer<float> ftile;     // the fp32 register tile

  void reserve(const IntPath& path, const PackedInt& layer, const Layout& lay) {
    if (!layer.perm.empty()) row.reserve(static_cast<size_t>(path.mr * layer.k));
    tmp.reserve(static_cast<size_t>(path.mr * lay.max_row_bytes));
    rowsum.reserve(static_cast<size_t>(lay.max_groups));
    ftile.reserve(static_cast<size_t>(path.mr * path.np * kIntNr));
  }
};

thread_local ABlock t_block;
thread_local Scratch t_scratch;

// The quantization parameters of one row segment (the same for the fast and the emulated path).
QParams segment_params(const RowKernels& kern, const float* xs, int64_t len, const ActQuant& act) {
  if (!act.dynamic) return {act.scale, act.zero_point};
  float lo, hi;
  kern.minmax(xs, len, &lo, &hi);
  if (!(lo <= hi)) lo = hi = 0.0f;  // no number in the row: any scale will do
  return choose_qparams(lo, hi, act.dtype, act.symmetric);
}

// Row r of x in the layer's column order: x itself, or gathered into dst.
const float* input_row(const RowKernels& kern, const PackedInt& layer, const float* x, int64_t r, float* dst) {
  const float* src = x + r * layer.k;
  if (layer.perm.empty()) return src;
  kern.gather(src, layer.perm.data(), layer.k, dst);
  return dst;
}

// Quantizes and packs rows [r0, r0 + rows) of x (block-local rows from `first`, a multiple of mr)
// into blk, in the path's activation format.
void pack_rows(const IntPath& path, const PackedInt& layer, const Layout& lay, const float* x, int64_t m, int64_t r0,
               int64_t first, int64_t rows, int64_t rows_pad, ABlock& blk, Scratch& sc) {
  const RowKernels& kern = *path.rows_kernels;
  const int nseg = static_cast<int>(layer.segs.size());
  const int mr = path.mr;
  for (int64_t pr = first; pr < first + rows; pr += mr) {
    const int64_t rp = pr / mr;
    // The panel's input rows, permuted once for all segments.
    const float* xrows[64];
    for (int i = 0; i < mr; ++i) {
      const int64_t r = r0 + pr + i;
      xrows[i] = r < m ? input_row(kern, layer, x, r, sc.row.data() + i * layer.k) : nullptr;
    }
    for (int s = 0; s < nseg; ++s) {
      const PackedSegment& seg = layer.segs[s];
      const bool pairs16 = path.int16_pairs(seg);
      const bool flip = !pairs16 && path.unsigned_bytes;  // u = s + 128: the sign bit flipped
      const int64_t row_bytes = lay.a_ld[s];
      std::memset(sc.tmp.data(), 0, static_cast<size_t>(mr * row_bytes));
      int32_t* sums = blk.sums.data() + lay.sum_off[s] + rp * seg.ngroups * mr;
      for (int i = 0; i < mr; ++i) {
        const int64_t lr = pr + i, r = r0 + lr;
        const size_t pi = static_cast<size_t>(s * rows_pad + lr);
        if (r >= m) {
          blk.scale[pi] = 0.0f;
          blk.zero[pi] = blk.zc[pi] = 0;
          for (int64_t g = 0; g < seg.ngroups; ++g) sums[g * mr + i] = 0;
          continue;
        }
        const float* xs = xrows[i] + seg.spec.k0;
        const QParams qp = segment_params(kern, xs, seg.spec.len, seg.spec.act);
        const QRange qr = qrange(seg.spec.act.dtype);
        const float lo = static_cast<float>(qr.qmin - qp.zero_point), hi = static_cast<float>(qr.qmax - qp.zero_point);
        uint8_t* dst = sc.tmp.data() + i * row_bytes;
        int32_t zc = 0;
        if (pairs16) {
          kern.quant16(xs, seg.spec.len, qp.scale, lo, hi, reinterpret_cast<int16_t*>(dst), seg.group, sc.rowsum.data());
        } else {
          // Signed bytes xq - 128 * (uint8 activations), whose zero point is zc.
          zc = qp.zero_point - (seg.spec.act.dtype == QType::kUint8 ? 128 : 0);
          kern.quant8(xs, seg.spec.len, qp.scale, lo, hi, zc, reinterpret_cast<int8_t*>(dst), seg.group,
                      sc.rowsum.data());
          if (flip) {
            zc += 128;
            for (int64_t g = 0; g < seg.ngroups; ++g) sc.rowsum[g] += 128 * static_cast<int32_t>(seg.group_len(g));
          }
        }
        for (int64_t g = 0; g < seg.ngroups; ++g) sums[g * mr + i] = sc.rowsum[g];
        blk.scale[pi] = qp.scale;
        blk.zero[pi] = qp.zero_point;
        blk.zc[pi] = zc;
      }
      uint8_t* out = blk.data.data() + lay.a_off[s] + rp * lay.a_stride[s];
      const uint32_t mask = flip ? 0x80808080u : 0u;
      if (path.row_major && !pairs16) {
        const uint32_t* src = reinterpret_cast<const uint32_t*>(sc.tmp.data());
        uint32_t* dst = reinterpret_cast<uint32_t*>(out);
        for (int64_t t = 0; t < mr * row_bytes / 4; ++t) dst[t] = src[t] ^ mask;
        continue;
      }
      // Interleave the rows dword by dword: [k dword][row].
      const int64_t dwords = row_bytes / 4;
      const uint32_t* src = reinterpret_cast<const uint32_t*>(sc.tmp.data());
      uint32_t* dst = reinterpret_cast<uint32_t*>(out);
      for (int64_t t = 0; t < dwords; ++t)
        for (int i = 0; i < mr; ++i) dst[t * mr + i] = src[i * dwords + t] ^ mask;
    }
  }
}

// Output tiles of block rows [first, first + rows) (block-local) against weight panels [p0, p1).
void compute_tiles(const IntPath& path, const PackedInt& layer, const Layout& lay, const ABlock& blk, int64_t m,
                   int64_t r0, int64_t first, int64_t rows, int64_t rows_pad, int64_t p0, int64_t p1, const float* bias,
                   float* y, int32_t* dbg, const Epilogue* post, Scratch& sc) {
  const int64_t n = layer.n, total_groups = layer.total_groups();
  const int mr = path.mr;
  const int64_t ldf = path.np * kIntNr;
  float* ftile = sc.ftile.data();
  for (int64_t p = p0; p < p1; p += path.np) {
    const int panels = static_cast<int>(std::min<int64_t>(path.np, p1 - p));
    const int64_t j0 = p * kIntNr;
    const int cols = static_cast<int>(std::min<int64_t>(panels * kIntNr, n - j0));
    for (int64_t pr = first; pr < first + rows; pr += mr) {
      const int64_t rp = pr / mr, row0 = r0 + pr;
      const int trows = static_cast<int>(std::min<int64_t>(mr, m - row0));
      int64_t gidx = 0;
      for (size_t s = 0; s < layer.segs.size(); ++s) {
        const PackedSegment& seg = layer.segs[s];
        const size_t pi = static_cast<size_t>(s * rows_pad + pr);
        SegmentArgs sa;
        sa.seg = &seg;
        sa.w = &seg.panels(path.layout);
        sa.a = blk.data.data() + lay.a_off[s] + rp * lay.a_stride[s];
        sa.a_ld = lay.a_ld[s];
        sa.panel = p;
        sa.panels = panels;
        sa.row_sums = blk.sums.data() + lay.sum_off[s] + rp * seg.ngroups * mr;
        sa.row_zc = path.int16_pairs(seg) ? nullptr : blk.zc.data() + pi;
        sa.row_scale = blk.scale.data() + pi;
        sa.ftile = ftile;
        sa.first = s == 0;
        sa.dbg = dbg ? dbg + (row0 * n + j0) * total_groups + gidx : nullptr;
        sa.dbg_row = n * total_groups;
        sa.dbg_col = total_groups;
        sa.rows = trows;
        sa.cols = cols;
        path.segment(sa);
        gidx += seg.ngroups;
      }
      if (dbg) continue;
      path.rows_kernels->store(ftile, ldf, bias ? bias + j0 : nullptr, y + row0 * n + j0, n, trows, cols);
      apply_epilogue(post, y + row0 * n + j0, n, row0, j0, trows, cols);
    }
  }
}

// Whether two layers quantize and pack x alike on this path (so that one packing serves both).
bool same_activations(const IntPath& path, const PackedInt& a, const PackedInt& b) {
  if (a.k != b.k || a.perm != b.perm || a.segs.size() != b.segs.size()) return false;
  for (size_t s = 0; s < a.segs.size(); ++s) {
    const PackedSegment &x = a.segs[s], &y = b.segs[s];
    const ActQuant &p = x.spec.act, &q = y.spec.act;
    if (x.spec.k0 != y.spec.k0 || x.spec.len != y.spec.len || x.group != y.group ||
        path.int16_pairs(x) != path.int16_pairs(y) || x.panels(path.layout).len_pad != y.panels(path.layout).len_pad ||
        tile_padded_len(x) != tile_padded_len(y) ||
        p.dynamic != q.dynamic || p.dtype != q.dtype || (p.dynamic && p.symmetric != q.symmetric) ||
        (!p.dynamic && (p.scale != q.scale || p.zero_point != q.zero_point))) {
      return false;
    }
  }
  return true;
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

namespace {

// The jobs (all alike in their activations) run as one: per block of rows, x is packed once, then
// every job's tiles. acc, act_scale and act_zero (debug outputs) only with a single job.
void run_jobs(const IntPath& path, const float* x, int64_t m, const IntJob* jobs, int count, int32_t* acc,
              float* act_scale, int32_t* act_zero) {
  const PackedInt& first_layer = *jobs[0].layer;
  for (int j = 0; j < count; ++j) jobs[j].layer->ensure_layout(path.layout);
  const int threads = num_threads();
  int64_t npanels = 0;  // of all jobs
  for (int j = 0; j < count; ++j) npanels += ceil_div(jobs[j].layer->n, kIntNr);
  const int64_t block = path.block_rows;
  const int64_t mblocks = ceil_div(m, block);

  if (mblocks >= 2 * threads || npanels <= path.np) {
    // Fused: each block of rows is quantized and packed by the thread that multiplies it, so the
    // quantized activations never leave that core's caches.
    const Layout lay(path, first_layer, block);
    std::atomic<int64_t> next{0};
    parallel_for(std::min<int64_t>(threads, mblocks), 1, [&](int64_t, int64_t, int) {
      ABlock& blk = t_block;
      Scratch& sc = t_scratch;
      blk.reserve(first_layer, lay, block);
      sc.reserve(path, first_layer, lay);
      for (int64_t b = next.fetch_add(1); b < mblocks; b = next.fetch_add(1)) {
        const int64_t r0 = b * block, rows = std::min(block, m - r0);
        pack_rows(path, first_layer, lay, x, m, r0, 0, rows, block, blk, sc);
        export_params(first_layer, blk, r0, 0, rows, block, m, act_scale, act_zero);
        for (int j = 0; j < count; ++j) {
          const IntJob& job = jobs[j];
          compute_tiles(path, *job.layer, lay, blk, m, r0, 0, rows, block, 0, ceil_div(job.layer->n, kIntNr), job.bias,
                        job.y, acc, job.post, sc);
        }
      }
      if (path.finish) path.finish();
    });
    return;
  }

  // Few rows: pack all of them first (in parallel over row panels), then share the output tiles,
  // split over the weight panels of every job as well, among the threads.
  const int64_t rows_pad = round_up(m, path.mr);
  const Layout lay(path, first_layer, rows_pad);
  // The calling thread's block (its workers only read it), reused from call to call.
  ABlock& blk = t_block;
  blk.reserve(first_layer, lay, rows_pad);
  const int64_t rpanels = rows_pad / path.mr;
  parallel_for(rpanels, 1, [&](int64_t begin, int64_t end, int) {
    Scratch& sc = t_scratch;
    sc.reserve(path, first_layer, lay);
    pack_rows(path, first_layer, lay, x, m, 0, begin * path.mr, (end - begin) * path.mr, rows_pad, blk, sc);
  });
  export_params(first_layer, blk, 0, 0, m, rows_pad, m, act_scale, act_zero);
  const int64_t pchunk = round_up(std::max<int64_t>(1, ceil_div(npanels, 4 * threads)), path.np);
  // Chunks of panels job by job: chunk c of job j covers its panels [c * pchunk, ...).
  std::vector<int64_t> chunk_start(static_cast<size_t>(count) + 1, 0);
  for (int j = 0; j < count; ++j) chunk_start[j + 1] = chunk_start[j] + ceil_div(ceil_div(jobs[j].layer->n, kIntNr), pchunk);
  const int64_t tiles = chunk_start[count] * mblocks;
  std::atomic<int64_t> next{0};
  parallel_for(std::min<int64_t>(threads, tiles), 1, [&](int64_t, int64_t, int) {
    Scratch& sc = t_scratch;
    sc.reserve(path, first_layer, lay);
    for (int64_t t = next.fetch_add(1); t < tiles; t = next.fetch_add(1)) {
      const int64_t first = (t % mblocks) * block, rows = std::min(block, m - first);
      int64_t c = t / mblocks;
      int j = 0;
      while (c >= chunk_start[j + 1]) ++j;
      c -= chunk_start[j];
      const IntJob& job = jobs[j];
      const int64_t p0 = c * pchunk, p1 = std::min(ceil_div(job.layer->n, kIntNr), p0 + pchunk);
      compute_tiles(path, *job.layer, lay, blk, m, 0, first, rows, rows_pad, p0, p1, job.bias, job.y, acc, job.post, sc);
    }
    if (path.finish) path.finish();
  });
}

void check_covered(const PackedInt& layer) {
  if (layer.segs.empty() || layer.segs.back().spec.k0 + layer.segs.back().spec.len != layer.k) {
    throw std::logic_error("native: the quantized layer's segments do not cover its inputs");
  }
}

}  // namespace

void forward_int(const PackedInt& layer, const float* x, int64_t m, const float* bias, float* y, int32_t* acc,
                 float* act_scale, int32_t* act_zero, const Epilogue* post) {
  if (m <= 0) return;
  check_covered(layer);
  const IntJob job{&layer, bias, y, post};
  run_jobs(path_of(int_path(), m), x, m, &job, 1, acc, act_scale, act_zero);
}

void forward_int_multi(const float* x, int64_t m, const IntJob* jobs, int count) {
  if (m <= 0 || count <= 0) return;
  const IntPath& path = path_of(int_path(), m);
  for (int j = 0; j < count; ++j) {
    check_covered(*jobs[j].layer);
    jobs[j].layer->ensure_layout(path.layout);
  }
  // Runs of consecutive jobs that pack x alike go together.
  for (int j = 0; j < count;) {
    int e = j + 1;
    while (e < count && same_activations(path, *jobs[j].layer, *jobs[e].layer)) ++e;
    run_jobs(path, x, m, jobs + j, e - j, nullptr, nullptr, nullptr);
    j = e;
  }
}

double int_peak_ops_per_second(double seconds, const char** isa) {
  int64_t (*loop)(int64_t) = nullptr;
  if (isa_native(Isa::kAmx)) {
    loop = native::peak_ops_amx;
    *isa = "amx";
  } else if (isa_native(Isa::kAvx512Vnni)) {
    loop = native::peak_ops_avx512vnni;
    *isa = "avx512vnni";
  } else {
    *isa = "none";
    return 0.0;
  }
  const int threads = num_threads();
  // Calibrate the rounds on one thread, then run every thread for the time asked.
  int64_t rounds = 1 << 12;
  double elapsed = 0.0;
  for (;;) {
    const auto t0 = std::chrono::steady_clock::now();
    loop(rounds);
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (elapsed > 0.02 || rounds > (int64_t(1) << 40)) break;
    rounds *= 4;
  }
  rounds = std::max<int64_t>(1, static_cast<int64_t>(rounds * seconds / elapsed));
  std::atomic<int64_t> ops{0};
  const auto t0 = std::chrono::steady_clock::now();
  parallel_for(threads, 1, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) ops += loop(rounds);
  });
  elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return static_cast<double>(ops.load()) / elapsed;
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
  const RowKernels& kern = *current_int_path().rows_kernels;
  AlignedBuffer<float> xq(static_cast<size_t>(m * k));
  parallel_for(m, 16, [&](int64_t begin, int64_t end, int) {
    Scratch& sc = t_scratch;
    if (!layer.perm.empty()) sc.row.reserve(static_cast<size_t>(k));
    for (int64_t r = begin; r < end; ++r) {
      const float* xr = input_row(kern, layer, x, r, sc.row.data());
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
