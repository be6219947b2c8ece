#include "gptq.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "../../common/parallel.h"
#include "factor.h"
#include "tile.h"

namespace qarvd::gptq {
namespace {

constexpr int64_t kChunkRows = 192;  // rows taken through all blocks together (32 row tiles)
constexpr int64_t kSteps = 256;     // shared-index length of one product call (its B stays in L2)

struct Layout {
  std::vector<int64_t> start, end;  // positions of dynamic groups ([start, end)); -1 otherwise
  std::vector<std::pair<int64_t, int64_t>> blocks;
  // For each dynamic group, inv(R[start:end, start:end]) (upper, row-major), filled after the factor.
  std::vector<std::vector<double>> group_inverse;
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
  // Blocks of block_size positions, adjusted so that every dynamic group lies within one block: cut
  // short before a group that would cross the end, or stretched over a group longer than a block.
  for (int64_t i1 = 0; i1 < k;) {
    int64_t i2 = std::min(i1 + p.block_size, k);
    const int32_t g0 = p.group_of[i1];
    if (p.groups[g0].mode == GroupMode::kDynamic && l.start[g0] == i1) i2 = std::max(i2, l.end[g0]);
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
  // Runs of one group are folded in registers (per channel the whole row is one run).
  for (int64_t pos = 0; pos < k;) {
    const int32_t gi = group_of[pos];
    int64_t end = pos + 1;
    while (end < k && group_of[end] == gi) ++end;
    if (want(gi)) {
      float mn = lo[gi], mx = hi[gi];
      for (int64_t j = pos; j < end; ++j) {
        const float v = value(j);
        mn = std::min(mn, v);
        mx = std::max(mx, v);
      }
      lo[gi] = mn;
      hi[gi] = mx;
    }
    pos = end;
  }
}

// Per-row state of one thread: rows of the chunk in position order.
struct Rows {
  int64_t ld;
  std::vector<double> w;  // [count, ld]
  Rows(int64_t k, int64_t count) : ld(padded_stride(k)), w(static_cast<size_t>(count * ld)) {}
  // Initial weights of `count` rows from `row0`, permuted, dead columns zeroed.
  void load(const Problem& p, const uint8_t* dead, int64_t row0, int64_t count) {
    for (int64_t r = 0; r < count; ++r) {
      const float* src = p.w + (row0 + r) * p.cols;
      double* dst = w.data() + r * ld;
      for (int64_t pos = 0; pos < p.cols; ++pos) dst[pos] = dead[pos] ? 0.0 : static_cast<double>(src[p.order[pos]]);
    }
  }
};

// Calls fn(row0, count) for chunks of at most kChunkRows rows, the parts in parallel.
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

// sum_r trace(D_r H_d D_r^T) - lambda ||D_r||^2 with H_d = R R^T: ||D R||^2 row by row, in
// rank-128 steps over the rows of R (only the columns right of each step's first row are nonzero).
void rtn_loss(const Problem& p, const Output& out, const Workspace& r_factor, const uint8_t* dead, double lambda,
              std::vector<double>& row_loss) {
  const int64_t k = p.cols, g = p.num_groups;
  for_row_chunks(p.rows, [&](int64_t row0, int64_t count) {
    Rows rows(k, count);
    rows.load(p, dead, row0, count);
    const int64_t ld = rows.ld;
    std::vector<double> y(static_cast<size_t>(count * ld), 0.0);
    std::vector<float> lo(g), hi(g), scale(g);
    std::vector<int32_t> zp(g);
    std::vector<double> dsq(count, 0.0);
    for (int64_t r = 0; r < count; ++r) {
      double* d = rows.w.data() + r * ld;  // becomes D in place
      rtn_qparams(p, out, row0 + r, d, lo, hi, scale, zp);
      for (int64_t pos = 0; pos < k; ++pos) {
        const int32_t gi = p.group_of[pos];
        const int32_t q = quantize_value(static_cast<float>(d[pos]), scale[gi], zp[gi], qrange(p.groups[gi].dtype));
        d[pos] -= static_cast<double>(dequantize_value(q, scale[gi], zp[gi]));
        dsq[r] += d[pos] * d[pos];
      }
    }
    const auto tiles = tile_starts(count);
    for (int64_t k0 = 0; k0 < k; k0 += kSteps) {
      const int64_t k1 = std::min(k0 + kSteps, k);
      multiply_tiles({rows.w.data() + k0, ld}, {r_factor.row(k0) + k0, r_factor.ld}, k1 - k0, {y.data() + k0, ld}, tiles,
                     count, k - k0, false, Store::kAdd, p.avx2);
    }
    for (int64_t r = 0; r < count; ++r) {
      const double* yr = y.data() + r * ld;
      double sum = 0;
      for (int64_t j = 0; j < k; ++j) sum += yr[j] * yr[j];
      row_loss[row0 + r] = sum - lambda * dsq[r];
    }
  });
}

// GPTQ on R (H_d = R R^T, U = R^-1). With E = W - dequant(Q) (columns in order) and Err the
// scaled errors err_i = (w~_i - q_i) / U[i][i] of the paper, E = Err U, i.e. Err = E R. After the
// columns before p are quantized, the paper's right-looking updates have left column j >= p at
//   w_j - sum_{i<p} err_i U[i][j] = w_j + sum_{p<=i<=j} S_i U[i][j],   S = E[:, :p] R[:p, :]
// (expand err = E R and use R U = I). For j = p that is w_p + S_p / R[p][p]: so each block
// [i1, i2) first gathers S = E[:, :i1] R[:i1, i1:i2] (one product per block: the lazy batch
// update), then walks its columns, adding each new E_j R[j][j+1:i2] to S, and err_j =
// (w~_j - q_j) R[j][j]. A dynamic group starting at p needs its columns as updated so far: S of
// the group times the inverse of R's diagonal block over the group (its leading block of U). The
// rows hold w and are overwritten by E as they go.
void quantize_rows(const Problem& p, const Output& out, const Layout& l, const Workspace& rf, const uint8_t* dead,
                   double lambda, std::vector<double>& row_loss) {
  const int64_t k = p.cols, g = p.num_groups;
  int64_t max_block = 0, max_group = 1;
  for (auto& b : l.blocks) max_block = std::max(max_block, b.second - b.first);
  for (int64_t gi = 0; gi < g; ++gi) {
    if (p.groups[gi].mode == GroupMode::kDynamic) max_group = std::max(max_group, l.end[gi] - l.start[gi]);
  }
  for_row_chunks(p.rows, [&](int64_t row0, int64_t count) {
    Rows rows(k, count);
    rows.load(p, dead, row0, count);
    const int64_t ld = rows.ld;
    std::vector<double> acc(static_cast<size_t>(count * max_block)), shift(static_cast<size_t>(count * max_group));
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
      if (i1 == 0) std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t k0 = 0; k0 < i1; k0 += kSteps) {
        multiply_tiles({rows.w.data() + k0, ld}, {rf.row(k0) + i1, rf.ld}, std::min(kSteps, i1 - k0), {acc.data(), nb},
                       tiles, count, nb, false, k0 == 0 ? Store::kSet : Store::kAdd, p.avx2);
      }
      // Column by column, all rows of the chunk at each column: the rows' dependency chains
      // (divide, round, update) are independent, so they overlap.
      for (int64_t pos = i1; pos < i2; ++pos) {
        const int32_t gi = p.group_of[pos];
        const Group& gr = p.groups[gi];
        const QRange range = qrange(gr.dtype);
        const bool group_start = gr.mode == GroupMode::kDynamic && l.start[gi] == pos;
        const double* rrow = rf.row(pos);
        const double rpp = rrow[pos];
        const int32_t col = p.order[pos];
        if (group_start) {
          // The group's weights as updated by the columns before it: w_j + (S V)_j with
          // V = inv(R[start:end, start:end]) (see above), for all rows at once.
          const int64_t len = l.end[gi] - pos;
          if (pos == 0) {
            std::fill(shift.begin(), shift.begin() + count * len, 0.0);  // nothing quantized yet
          } else {
            multiply_tiles({acc.data() + (pos - i1), nb}, {l.group_inverse[gi].data(), len}, len, {shift.data(), len},
                           tiles, count, len, false, Store::kSet, p.avx2);
          }
          for (int64_t r = 0; r < count; ++r) {
            const double* wr = rows.w.data() + r * ld + pos;
            const double* sh = shift.data() + r * len;
            float mn = std::numeric_limits<float>::infinity(), mx = -mn;
            for (int64_t j = 0; j < len; ++j) {
              const float val = static_cast<float>(wr[j] + sh[j]);
              mn = std::min(mn, val);
              mx = std::max(mx, val);
            }
            const QParams qp = choose_qparams(mn, mx, gr.dtype, gr.symmetric);
            out.scale[(row0 + r) * g + gi] = qp.scale;
            out.zero_point[(row0 + r) * g + gi] = qp.zero_point;
          }
        }
        for (int64_t r = 0; r < count; ++r) {
          const int64_t row = row0 + r;
          double* wr = rows.w.data() + r * ld;
          double* sr = acc.data() + r * nb;  // sr[j - i1] for j in [i1, i2)
          const float scale = out.scale[row * g + gi];
          const int32_t zp = out.zero_point[row * g + gi];
          const double updated = wr[pos] + sr[pos - i1] / rpp;
          const int32_t q = quantize_value(static_cast<float>(updated), scale, zp, range);
          const double deq = static_cast<double>(dequantize_value(q, scale, zp));
          const double e = (updated - deq) * rpp;
          err_sq[r] += e * e;
          const double diff = wr[pos] - deq;  // E_j
          diff_sq[r] += diff * diff;
          wr[pos] = diff;
          out.q[row * k + col] = static_cast<uint8_t>(q);
          axpy_neg(sr + (pos + 1 - i1), rrow + pos + 1, -diff, i2 - pos - 1, p.avx2);
        }
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
void factor(int64_t k, const int32_t* order, Workspace& ws, bool avx2) {
  try {
    cholesky_lower(ws, avx2);
  } catch (const NotPositiveDefinite& e) {
    const int64_t col = order[k - 1 - e.index];
    throw std::range_error("H is not positive definite even after damping: the Cholesky pivot of column " +
                           std::to_string(col) + " is " + std::to_string(e.pivot) +
                           " (increase damp, or check that H is a Gram matrix X^T X)");
  }
  rotate_half_turn(ws);
}

// inv(R[s:e, s:e]) for every dynamic group (upper triangular, back substitution), in parallel.
void invert_group_blocks(const Problem& p, Layout& l, const Workspace& rf) {
  l.group_inverse.assign(p.num_groups, {});
  parallel_for(p.num_groups, 1, [&](int64_t gb, int64_t ge, int) {
    for (int64_t gi = gb; gi < ge; ++gi) {
      if (p.groups[gi].mode != GroupMode::kDynamic) continue;
      const int64_t s = l.start[gi], n = l.end[gi] - s;
      std::vector<double>& x = l.group_inverse[gi];
      x.assign(static_cast<size_t>(n * n), 0.0);
      for (int64_t c = 0; c < n; ++c) {
        x[c * n + c] = 1.0 / rf.row(s + c)[s + c];
        for (int64_t i = c - 1; i >= 0; --i) {
          const double* ri = rf.row(s + i) + s;
          double acc = 0;
          for (int64_t t = i + 1; t <= c; ++t) acc += ri[t] * x[t * n + c];
          x[i * n + c] = -acc / ri[i];
        }
      }
    }
  });
}

}  // namespace

Stats run(const Problem& p, const Output& out) {
  Layout l = layout(p);
  const int64_t k = p.cols;
  Workspace ws(k);
  std::vector<uint8_t> dead(k);
  HessianInfo info = load_hessian(p.h, k, p.order, p.damp, ws, dead.data());
  std::vector<double> row_loss(p.rows);
  double loss_rtn = std::numeric_limits<double>::quiet_NaN();
  factor(k, p.order, ws, p.avx2);
  if (p.rtn_loss) {
    rtn_loss(p, out, ws, dead.data(), info.lambda, row_loss);
    loss_rtn = ordered_sum(row_loss);
  }
  invert_group_blocks(p, l, ws);
  quantize_rows(p, out, l, ws, dead.data(), info.lambda, row_loss);
  return {loss_rtn, ordered_sum(row_loss), info.lambda, info.dead};
}

Stats hessian_factor(const double* h, int64_t cols, const int32_t* order, double damp, double* r, bool avx2) {
  if (cols < 1) throw std::invalid_argument("gptq: empty problem");
  check_order(order, cols);
  Workspace ws(cols);
  std::vector<uint8_t> dead(cols);
  HessianInfo info = load_hessian(h, cols, order, damp, ws, dead.data());
  factor(cols, order, ws, avx2);
  for (int64_t i = 0; i < cols; ++i) std::copy(ws.row(i), ws.row(i) + cols, r + i * cols);
  return {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::quiet_NaN(), info.lambda, info.dead};
}

HessianIssue check_hessian(const double* h, int64_t k, double tol) {
  for (int64_t i = 0; i < k; ++i) {
    const double d = h[i * k + i];
    if (!std::isfinite(d)) return {HessianIssue::kNotFinite, i, i};
    if (d < 0) return {HessianIssue::kNegativeDiagonal, i, i};
  }
  // Blocks of 64 x 64 below the diagonal, so that H[i][j] and H[j][i] both stay in cache; every part
  // keeps the first issue (row-major) of its block rows, and the first part with one wins.
  constexpr int64_t B = 64;
  // Finite entries square below infinity; larger ones are checked exactly on the slow path.
  constexpr double kHuge = 1e150;
  const double tol2 = tol * tol;
  const int64_t block_rows = (k + B - 1) / B;
  std::vector<HessianIssue> found(static_cast<size_t>(block_rows), {HessianIssue::kOk, 0, 0});
  parallel_for(block_rows, 1, [&](int64_t bb, int64_t be, int) {
    for (int64_t b = bb; b < be; ++b) {
      HessianIssue first{HessianIssue::kOk, k, k};
      const int64_t i0 = b * B, i1 = std::min(k, i0 + B);
      for (int64_t j0 = 0; j0 <= i0; j0 += B) {
        for (int64_t i = i0; i < i1 && i <= first.i; ++i) {
          const int64_t j1 = std::min(j0 + B, i);
          const double dii = h[i * k + i];
          // Squared comparison (no sqrt): a NaN or infinite pair fails `ok` and is sorted out below.
          bool bad = false;
          for (int64_t j = j0; j < j1; ++j) {
            const double a = h[i * k + j], c = h[j * k + i], diff = a - c;
            const double scale2 = std::max(std::max(a * a, c * c), dii * h[j * k + j]);
            const bool ok = diff * diff <= tol2 * scale2 && std::fabs(a) < kHuge && std::fabs(c) < kHuge;
            bad |= !ok;
          }
          if (!bad) continue;
          for (int64_t j = j0; j < j1; ++j) {
            const double a = h[i * k + j], c = h[j * k + i];
            HessianIssue::Kind kind = HessianIssue::kOk;
            if (!std::isfinite(a) || !std::isfinite(c)) {
              kind = HessianIssue::kNotFinite;
            } else {
              const double scale = std::max({std::fabs(a), std::fabs(c), std::sqrt(h[i * k + i] * h[j * k + j])});
              if (std::fabs(a - c) > tol * scale) kind = HessianIssue::kAsymmetric;
            }
            if (kind != HessianIssue::kOk && (i < first.i || (i == first.i && j < first.j))) {
              first = {kind, i, j};
              break;
            }
          }
        }
      }
      found[b] = first;
    }
  });
  for (const HessianIssue& f : found) {
    if (f.kind != HessianIssue::kOk) return f;
  }
  return {HessianIssue::kOk, 0, 0};
}

}  // namespace qarvd::gptq
