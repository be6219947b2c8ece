#include "factor.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../../common/parallel.h"
#include "tile.h"

namespace qarvd::gptq {
namespace {

constexpr int64_t kNb = 128;  // block of the factorization: its updates are rank-128 products

// Rows [k1, k) of a lower-triangular step, split in contiguous parts.
template <typename Fn>
void for_rows(int64_t begin, int64_t end, int64_t grain, Fn&& fn) {
  if (end <= begin) return;
  parallel_for(end - begin, grain, [&](int64_t b, int64_t e, int) { fn(begin + b, begin + e); });
}

// x = inv(l) for a lower triangular n x n block l (row stride ld), x dense n x n with zeros above.
void lower_inverse(const double* l, int64_t ld, int64_t n, double* x) {
  std::fill(x, x + n * n, 0.0);
  for (int64_t c = 0; c < n; ++c) {
    x[c * n + c] = 1.0 / l[c * ld + c];
    for (int64_t i = c + 1; i < n; ++i) {
      const double* li = l + i * ld;
      double s = 0;
      for (int64_t t = c; t < i; ++t) s += li[t] * x[t * n + c];
      x[i * n + c] = -s / li[i];
    }
  }
}

}  // namespace

NotPositiveDefinite::NotPositiveDefinite(int64_t index, double pivot)
    : std::range_error("H is not positive definite (pivot " + std::to_string(pivot) + ")"), index(index), pivot(pivot) {}

int64_t padded_stride(int64_t k) {
  int64_t lines = (std::max<int64_t>(k, 1) + 7) / 8;
  if (lines % 2 == 0) ++lines;
  return lines * 8;
}

Workspace::Workspace(int64_t k) : k(k), ld(padded_stride(k)), data_(new double[static_cast<size_t>(k * ld)]) {}

HessianInfo load_hessian(const double* h, int64_t k, const int32_t* order, double damp, Workspace& ws,
                         uint8_t* dead_pos) {
  // Column at reversed index s.
  std::vector<int64_t> col(k);
  int64_t dead = 0;
  double diag_sum = 0;
  for (int64_t s = 0; s < k; ++s) {
    col[s] = order[k - 1 - s];
    double d = h[col[s] * k + col[s]];
    bool is_dead = d == 0;
    dead_pos[k - 1 - s] = is_dead ? 1 : 0;
    dead += is_dead;
    diag_sum += is_dead ? 1.0 : d;
  }
  const double lambda = damp * (diag_sum / static_cast<double>(k));
  for_rows(0, k, 16, [&](int64_t b, int64_t e) {
    for (int64_t s = b; s < e; ++s) {
      double* out = ws.row(s);
      // Row of the column processed first: col[s] (s >= t means position k-1-s <= k-1-t).
      const double* hr = h + col[s] * k;
      for (int64_t t = 0; t < s; ++t) out[t] = hr[col[t]];
      out[s] = (dead_pos[k - 1 - s] ? 1.0 : hr[col[s]]) + lambda;
      std::fill(out + s + 1, out + ws.ld, 0.0);
    }
  });
  return {lambda, dead};
}

void cholesky_lower(Workspace& ws, bool avx2) {
  const int64_t k = ws.k, ld = ws.ld;
  double* a = ws.data();
  std::vector<double> packed, inv(static_cast<size_t>(kNb * kNb)), inv_t(static_cast<size_t>(kNb * kNb));
  for (int64_t k0 = 0; k0 < k; k0 += kNb) {
    const int64_t k1 = std::min(k0 + kNb, k), kb = k1 - k0;
    // Diagonal block: updates from earlier blocks are in; finish it column by column.
    for (int64_t c = k0; c < k1; ++c) {
      double* rc = a + c * ld;
      double d = rc[c] - dot(rc + k0, rc + k0, c - k0, avx2);
      if (!(d > 0) || !std::isfinite(d)) throw NotPositiveDefinite(c, d);
      const double l = std::sqrt(d);
      rc[c] = l;
      for (int64_t i = c + 1; i < k1; ++i) {
        double* ri = a + i * ld;
        ri[c] = (ri[c] - dot(ri + k0, rc + k0, c - k0, avx2)) / l;
      }
    }
    if (k1 == k) break;
    const int64_t rest = k - k1;
    // Panel below: L21 = A21 L11^-T, as a product with the (small) inverse of L11.
    lower_inverse(a + k0 * ld + k0, ld, kb, inv.data());
    for (int64_t t = 0; t < kb; ++t) {
      for (int64_t c = 0; c < kb; ++c) inv_t[t * kb + c] = inv[c * kb + t];
    }
    for_row_tiles(rest, false, [&](const std::vector<int64_t>& tiles) {
      const int64_t first = tiles.front(), last = std::min(rest, tiles.back() + kMr);
      std::vector<double> copy(static_cast<size_t>((last - first) * kb));
      for (int64_t i = first; i < last; ++i) {
        const double* src = a + (k1 + i) * ld + k0;
        std::copy(src, src + kb, copy.data() + (i - first) * kb);
      }
      std::vector<int64_t> rel(tiles);
      for (auto& r : rel) r -= first;
      multiply_tiles({copy.data(), kb}, {inv_t.data(), kb}, kb, {a + (k1 + first) * ld + k0, ld}, rel, last - first, kb,
                     false, Store::kSet, avx2);
    });
    // Trailing lower triangle -= L21 L21^T, with L21^T packed row-major (kb x rest).
    const int64_t ldp = padded_stride(rest);
    packed.resize(static_cast<size_t>(kb * ldp));
    for_rows(0, rest, 64, [&](int64_t b, int64_t e) {
      for (int64_t j = b; j < e; ++j) {
        const double* src = a + (k1 + j) * ld + k0;
        for (int64_t t = 0; t < kb; ++t) packed[t * ldp + j] = src[t];
      }
    });
    const ConstMat l21{a + k1 * ld + k0, ld};
    const ConstMat bt{packed.data(), ldp};
    const Mat c22{a + k1 * ld + k1, ld};
    for_row_tiles(rest, true, [&](const std::vector<int64_t>& tiles) {
      multiply_tiles(l21, bt, kb, c22, tiles, rest, rest, true, Store::kSub, avx2);
    });
  }
  // The diagonal tiles of the updates wrote scratch above the diagonal.
  for_rows(0, k, 64, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) std::fill(a + i * ld + i + 1, a + i * ld + k, 0.0);
  });
}

void rotate_half_turn(Workspace& ws) {
  const int64_t k = ws.k;
  for_rows(0, k / 2, 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      double* top = ws.row(i);
      double* bottom = ws.row(k - 1 - i);
      for (int64_t j = 0; j < k; ++j) std::swap(top[j], bottom[k - 1 - j]);
    }
  });
  if (k % 2 == 1) {
    double* mid = ws.row(k / 2);
    for (int64_t j = 0; j < k / 2; ++j) std::swap(mid[j], mid[k - 1 - j]);
  }
}

}  // namespace qarvd::gptq
