#include "gptq.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../common/parallel.h"
#include "factor.h"
#include "tile.h"

namespace qarvd::gptq {
namespace {

constexpr int64_t kChunkRows = 96;  // rows taken through all blocks together (16 row tiles)

struct Layout {
  std::vector<int64_t> start, end;  // positions of dynamic groups ([start, end)); -1 otherwise
  std::vector<std::pair<int64_t, int64_t>> blocks;
};

bool valid_dtype(QType t) { return t == QType::kInt8 || t == QType::kUint8 || t == QType::kInt4 || t == QType::kUint4; }

void check_order(const int32_t* order, int64_t cols) {
  std::vector<uint8_t> seen(cols, 0);
  for (int64_t p = 0; p < cols; ++p) {
    int32_t c = order[p];
    if (c < 0 || c >= cols || seen[c]) throw std::invalid_argument("gptq: order must be a permutation of the columns");
    seen[c] = 1;
  }
}

Layout layout(const Problem& p) {
  const int64_t k = p.cols, g = p.num_groups;
  if (p.rows < 1 || k < 1 || g < 1 || p.block_size < 1) throw std::invalid_argument("gptq: empty problem");
  if (!(p.damp >= 0) || !std::isfinite(p.damp)) throw std::invalid_argument("gptq: damp must be finite and >= 0");
  for (int64_t i = 0; i < g; ++i) {
    if (!valid_dtype(p.groups[i].dtype)) throw std::invalid_argument("gptq: bad group dtype");
    int m = static_cast<int>(p.groups[i].mode);
    if (m < 0 || m > 2) throw std::invalid_argument("gptq: bad group mode");
  }
  check_order(p.order, k);
  Layout l;
  l.start.assign(g, -1);
  l.end.assign(g, -1);
  std::vector<int64_t> count(g, 0);
  for (int64_t pos = 0; pos < k; ++pos) {
    int32_t gi = p.group_of[pos];
    if (gi < 0 || gi >= g) throw std::invalid_argument("gptq: group index out of range");
    if (l.start[gi] < 0) l.start[gi] = pos;
    l.end[gi] = pos + 1;
    ++count[gi];
  }
  for (int64_t i = 0; i < g; ++i) {
    if (count[i] == 0) throw std::invalid_argument("gptq: every group needs a column");
    if (p.groups[i].mode == GroupMode::kDynamic && l.end[i] - l.start[i] != count[i]) {
      throw std::invalid_argument("gptq: the columns of a dynamic group must be consecutive in the order");
    }
  }
  // Blocks of block_size positions, cut short before a dynamic group that would start inside and
  // reach past the end (its qparams must see every update of the columns before it).
  for (int64_t i1 = 0; i1 < k;) {
    int64_t i2 = std::min(i1 + p.block_size, k);
    for (int64_t pos = i1 + 1; pos < i2; ++pos) {
      int32_t gi = p.group_of[pos];
      if (p.groups[gi].mode == GroupMode::kDynamic && l.start[gi] == pos && l.end[gi] > i2) {
        i2 = pos;
        break;
      }
    }
    l.blocks.emplace_back(i1, i2);
    i1 = i2;
  }
  return l;
}

// min/max per group of float(values at each position) into lo/hi (size num_groups), for the groups
// `want` selects.
template <typename Value, typename Want>
void ranges(const int32_t* group_of, int64_t k, Value value, Want want, float* lo, float* hi, int64_t g) {
  std::fill(lo, lo + g, std::numeric_limits<float>::infinity());
  std::fill(hi, hi + g, -std::numeric_limits<float>::infinity());
  for (int64_t pos = 0; pos < k; ++pos) {
    int32_t gi = group_of[pos];
    if (!want(gi)) continue;
    float v = value(pos);
    lo[gi] = std::min(lo[gi], v);
    hi[gi] = std::max(hi[gi], v);
  }
}

// Per-row state of one thread: rows of the chunk in position order.
struct Rows {
  int64_t ld;
  std::vector<double> w;  // [kChunkRows, ld]
  explicit Rows(int64_t k) : ld(padded_stride(k)), w(static_cast<size_t>(kChunkRows * ld)) {}
  // Initial weights of `count` rows from `row0`, permuted, dead columns zeroed.
  void load(const Problem& p, const uint8_t* dead, int64_t row0, int64_t count) {
    for (int64_t r = 0; r < count; ++r) {
      const float* src = p.w + (row0 + r) * p.cols;
      double* dst = w.data() + r * ld;
      for (int64_t pos = 0; pos < p.cols; ++pos) dst[pos] = dead[pos] ? 0.0 : static_cast<double>(src[p.order[pos]]);
    }
  }
};

// Calls fn(row0, count, thread scratch) for chunks of at most kChunkRows rows, in parallel.
template <typename Fn>
void for_row_chunks(int64_t rows, Fn&& fn) {
  const int64_t tiles = (rows + kMr - 1) / kMr;
  parallel_for(tiles, 1, [&](int64_t tb, int64_t te, int) {
    const int64_t r0 = tb * kMr, r1 = std::min(rows, te * kMr);
    for (int64_t c = r0; c < r1; c += kChunkRows) fn(c, std::min(kChunkRows, r1 - c));
  });
}

std::vector<int64_t> tile_starts(int64_t rows) {
  std::vector<int64_t> t;
  for (int64_t r = 0; r < rows; r += kMr) t.push_back(r);
  return t;
}

// Round-to-nearest qparams of one row: given ones as they are, the others from the initial weights.
void rtn_qparams(const Problem& p, const Output& out, int64_t row, const double* w0, std::vector<float>& lo,
                 std::vector<float>& hi, std::vector<float>& scale, std::vector<int32_t>& zp) {
  const int64_t g = p.num_groups;
  ranges(p.group_of, p.cols, [&](int64_t pos) { return static_cast<float>(w0[pos]); },
         [&](int32_t gi) { return p.groups[gi].mode != GroupMode::kGiven; }, lo.data(), hi.data(), g);
  for (int64_t gi = 0; gi < g; ++gi) {
    if (p.groups[gi].mode == GroupMode::kGiven) {
      scale[gi] = out.scale[row * g + gi];
      zp[gi] = out.zero_point[row * g + gi];
    } else {
      QParams qp = choose_qparams(lo[gi], hi[gi], p.groups[gi].dtype, p.groups[gi].symmetric);
      scale[gi] = qp.scale;
      zp[gi] = qp.zero_point;
    }
  }
}

// sum_r trace(D_r H_d D_r^T) - lambda ||D||^2 with H_d = L L^T (the reversed lower factor in ws):
// D L row by row, in rank-128 steps over the rows of L.
void rtn_loss(const Problem& p, const Output& out, const Workspace& ws, const uint8_t* dead, double lambda,
              std::vector<double>& row_loss) {
  const int64_t k = p.cols, g = p.num_groups;
  for_row_chunks(p.rows, [&](int64_t row0, int64_t count) {
    Rows rows(k);
    rows.load(p, dead, row0, count);
    const int64_t ld = rows.ld;
    std::vector<double> d(static_cast<size_t>(count * ld)), y(static_cast<size_t>(count * ld), 0.0);
    std::vector<float> lo(g), hi(g), scale(g);
    std::vector<int32_t> zp(g);
    std::vector<double> dsq(count, 0.0);
    for (int64_t r = 0; r < count; ++r) {
      const double* w0 = rows.w.data() + r * ld;
      rtn_qparams(p, out, row0 + r, w0, lo, hi, scale, zp);
      double* dr = d.data() + r * ld;
      for (int64_t pos = 0; pos < k; ++pos) {
        const Group& gr = p.groups[p.group_of[pos]];
        const int32_t gi = p.group_of[pos];
        float x = static_cast<float>(w0[pos]);
        int32_t q = quantize_value(x, scale[gi], zp[gi], qrange(gr.dtype));
        double e = w0[pos] - static_cast<double>(dequantize_value(q, scale[gi], zp[gi]));
        dr[k - 1 - pos] = e;  // reversed, as the rows of L
        dsq[r] += e * e;
      }
    }
    const auto tiles = tile_starts(count);
    for (int64_t k0 = 0; k0 < k; k0 += 128) {
      const int64_t k1 = std::min<int64_t>(k0 + 128, k);
      multiply_tiles({d.data() + k0, ld}, {ws.row(k0), ws.ld}, k1 - k0, {y.data(), ld}, tiles, count, k1, false,
                     Store::kAdd, p.avx2);
    }
    for (int64_t r = 0; r < count; ++r) {
      const double* yr = y.data() + r * ld;
      double s = 0;
      for (int64_t j = 0; j < k; ++j) s += yr[j] * yr[j];
      row_loss[row0 + r] = s - lambda * dsq[r];
    }
  });
}

void quantize_rows(const Problem& p, const Output& out, const Layout& l, const Workspace& u, const uint8_t* dead,
                   double lambda, std::vector<double>& row_loss) {
  const int64_t k = p.cols, g = p.num_groups;
  int64_t max_block = 0;
  for (auto& b : l.blocks) max_block = std::max(max_block, b.second - b.first);
  for_row_chunks(p.rows, [&](int64_t row0, int64_t count) {
    Rows rows(k);
    rows.load(p, dead, row0, count);
    const int64_t ld = rows.ld;
    std::vector<double> err(static_cast<size_t>(count * max_block));
    std::vector<float> lo(g), hi(g);
    std::vector<double> err_sq(count, 0.0), diff_sq(count, 0.0);
    // Static qparams from the initial weights.
    for (int64_t r = 0; r < count; ++r) {
      const double* w0 = rows.w.data() + r * ld;
      ranges(p.group_of, k, [&](int64_t pos) { return static_cast<float>(w0[pos]); },
             [&](int32_t gi) { return p.groups[gi].mode == GroupMode::kStatic; }, lo.data(), hi.data(), g);
      for (int64_t gi = 0; gi < g; ++gi) {
        if (p.groups[gi].mode != GroupMode::kStatic) continue;
        QParams qp = choose_qparams(lo[gi], hi[gi], p.groups[gi].dtype, p.groups[gi].symmetric);
        out.scale[(row0 + r) * g + gi] = qp.scale;
        out.zero_point[(row0 + r) * g + gi] = qp.zero_point;
      }
    }
    const auto tiles = tile_starts(count);
    for (const auto& [i1, i2] : l.blocks) {
      const int64_t nb = i2 - i1;
      for (int64_t r = 0; r < count; ++r) {
        const int64_t row = row0 + r;
        double* wr = rows.w.data() + r * ld;
        double* er = err.data() + r * nb;
        const float* src = p.w + row * k;
        for (int64_t pos = i1; pos < i2; ++pos) {
          const int32_t gi = p.group_of[pos];
          const Group& gr = p.groups[gi];
          if (gr.mode == GroupMode::kDynamic && l.start[gi] == pos) {
            float mn = std::numeric_limits<float>::infinity(), mx = -mn;
            for (int64_t j = pos; j < l.end[gi]; ++j) {
              float v = static_cast<float>(wr[j]);
              mn = std::min(mn, v);
              mx = std::max(mx, v);
            }
            QParams qp = choose_qparams(mn, mx, gr.dtype, gr.symmetric);
            out.scale[row * g + gi] = qp.scale;
            out.zero_point[row * g + gi] = qp.zero_point;
          }
          const float scale = out.scale[row * g + gi];
          const int32_t zp = out.zero_point[row * g + gi];
          const int32_t q = quantize_value(static_cast<float>(wr[pos]), scale, zp, qrange(gr.dtype));
          const double deq = static_cast<double>(dequantize_value(q, scale, zp));
          const double* urow = u.row(pos);
          const double e = (wr[pos] - deq) / urow[pos];
          er[pos - i1] = e;
          err_sq[r] += e * e;
          const double w0 = dead[pos] ? 0.0 : static_cast<double>(src[p.order[pos]]);
          diff_sq[r] += (w0 - deq) * (w0 - deq);
          out.q[row * k + p.order[pos]] = static_cast<uint8_t>(q);
          axpy_neg(wr + pos + 1, urow + pos + 1, e, i2 - pos - 1, p.avx2);
        }
      }
      if (i2 < k) {
        multiply_tiles({err.data(), nb}, {u.row(i1) + i2, u.ld}, nb, {rows.w.data() + i2, ld}, tiles, count, k - i2,
                       false, Store::kSub, p.avx2);
      }
    }
    // trace(E H_d E^T) = ||err||^2 exactly (E = Err U and U H_d U^T = I); H = H_d - lambda I.
    for (int64_t r = 0; r < count; ++r) row_loss[row0 + r] = err_sq[r] - lambda * diff_sq[r];
  });
}

double ordered_sum(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return s;
}

// Factor of the Hessian in processing order; on failure the error names the original column.
void factor(int64_t k, const int32_t* order, Workspace& ws, bool avx2,
            const std::function<void(const Workspace&)>& between) {
  try {
    cholesky_lower(ws, avx2);
  } catch (const NotPositiveDefinite& e) {
    const int64_t col = order[k - 1 - e.index];
    throw std::range_error("H is not positive definite even after damping: the Cholesky pivot of column " +
                           std::to_string(col) + " is " + std::to_string(e.pivot) +
                           " (increase damp, or check that H is a Gram matrix X^T X)");
  }
  if (between) between(ws);
  invert_lower(ws, avx2);
  rotate_half_turn(ws);
}

}  // namespace

Stats run(const Problem& p, const Output& out) {
  const Layout l = layout(p);
  const int64_t k = p.cols;
  Workspace ws(k);
  std::vector<uint8_t> dead(k);
  HessianInfo info = load_hessian(p.h, k, p.order, p.damp, ws, dead.data());
  std::vector<double> row_loss(p.rows);
  double loss_rtn = std::numeric_limits<double>::quiet_NaN();
  factor(k, p.order, ws, p.avx2, [&](const Workspace& lower) {
    if (!p.rtn_loss) return;
    rtn_loss(p, out, lower, dead.data(), info.lambda, row_loss);
    loss_rtn = ordered_sum(row_loss);
  });
  quantize_rows(p, out, l, ws, dead.data(), info.lambda, row_loss);
  return {loss_rtn, ordered_sum(row_loss), info.lambda, info.dead};
}

Stats inverse_factor(const double* h, int64_t cols, const int32_t* order, double damp, double* u, bool avx2) {
  if (cols < 1) throw std::invalid_argument("gptq: empty problem");
  check_order(order, cols);
  Workspace ws(cols);
  std::vector<uint8_t> dead(cols);
  HessianInfo info = load_hessian(h, cols, order, damp, ws, dead.data());
  factor(cols, order, ws, avx2, nullptr);
  for (int64_t i = 0; i < cols; ++i) std::copy(ws.row(i), ws.row(i) + cols, u + i * cols);
  return {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN(), info.lambda, info.dead};
}

}  // namespace qarvd::gptq
