// Drivers of the quantize family: map each granularity onto runs of contiguous elements that share
// one scale (or one scale vector), split the runs over the thread pool, and call the run kernels of
// the active ISA (quantize_runs.h, quantize_avx2.cc).
#include "quantize.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "../common/cpu_features.h"
#include "../common/parallel.h"
#include "quantize_runs.h"

namespace qarvd {
namespace {

using qrun::Kernels;

// Enough elements per task that the pool's wake-up cost is small against the work.
constexpr int64_t kGrainElems = 32768;
// Elements quantized between two batches of prefetches in the per-token kernel.
constexpr int64_t kPrefetchChunk = 256;

Kernels kernels_for(FloatType xt, QType qt) {
  return active_isa() >= Isa::kAvx2 ? qrun::avx2_kernels(xt, qt) : qrun::scalar_kernels(xt, qt);
}

bool is_four_bit(QType qt) { return bits_of(qt) == 4; }

// Calls f(r) for every run r in [0, runs), runs of `len` elements each, in parallel. With 4-bit
// outputs and odd run lengths, runs go in pairs so that no two threads share a packed byte.
template <class F>
void for_runs(int64_t runs, int64_t len, bool four_bit, F&& f) {
  int64_t per_unit = four_bit && (len & 1) ? 2 : 1;
  int64_t units = (runs + per_unit - 1) / per_unit;
  int64_t grain = std::max<int64_t>(1, kGrainElems / std::max<int64_t>(1, len * per_unit));
  parallel_for(units, grain, [&](int64_t begin, int64_t end, int) {
    int64_t stop = std::min(end * per_unit, runs);
    for (int64_t r = begin * per_unit; r < stop; ++r) f(r);
  });
}

// Calls f(begin, end) over [0, n) in parallel, split at multiples of 64 elements (whole bytes).
template <class F>
void for_elements(int64_t n, F&& f) {
  constexpr int64_t kBlock = 64;
  parallel_for((n + kBlock - 1) / kBlock, kGrainElems / kBlock, [&](int64_t begin, int64_t end, int) {
    f(begin * kBlock, std::min(end * kBlock, n));
  });
}

const void* at(const void* x, int64_t i, int64_t elem_size) { return static_cast<const char*>(x) + i * elem_size; }

void non_finite(int64_t row) {
  if (row < 0) throw std::range_error("Expected finite values in x but it contains NaN or Infinity");
  throw std::range_error("Expected finite values in x but row " + std::to_string(row) +
                         " contains NaN or Infinity");
}

}  // namespace

int64_t BlockLayout::num_scales() const {
  switch (mode) {
    case Granularity::kPerTensor: return 1;
    case Granularity::kPerChannel: return axis_len;
    case Granularity::kPerGroup: return outer * (axis_len / group) * inner;
  }
  return 0;
}

void BlockLayout::validate() const {
  if (outer < 0 || axis_len < 0 || inner < 0) throw std::out_of_range("native: negative dimension in layout");
  if (mode != Granularity::kPerTensor && mode != Granularity::kPerChannel && mode != Granularity::kPerGroup) {
    throw std::invalid_argument("native: unknown granularity");
  }
  if (mode == Granularity::kPerGroup && (group < 1 || axis_len % group != 0)) {
    throw std::out_of_range("native: groupSize must divide the axis length");
  }
}

void quantize(const void* x, FloatType xt, const BlockLayout& l, const float* scale, const int32_t* zero_point,
              QType qt, void* out) {
  l.validate();
  const Kernels k = kernels_for(xt, qt);
  const int64_t es = float_type_size(xt), A = l.axis_len, inner = l.inner;
  const bool four = is_four_bit(qt);
  if (l.size() == 0) return;
  switch (l.mode) {
    case Granularity::kPerTensor:
      for_elements(l.size(), [&](int64_t b, int64_t e) { k.quant_const(at(x, b, es), e - b, scale, zero_point, out, b); });
      break;
    case Granularity::kPerChannel:
      if (inner == 1) {
        for_runs(l.outer, A, four, [&](int64_t r) { k.quant_vec(at(x, r * A, es), A, scale, zero_point, out, r * A); });
      } else {
        for_runs(l.outer * A, inner, four, [&](int64_t r) {
          int64_t a = r % A;
          k.quant_const(at(x, r * inner, es), inner, scale + a, zero_point + a, out, r * inner);
        });
      }
      break;
    case Granularity::kPerGroup: {
      const int64_t g = l.group;
      if (inner == 1) {
        for_runs(l.outer * (A / g), g, four, [&](int64_t r) {
          k.quant_const(at(x, r * g, es), g, scale + r, zero_point + r, out, r * g);
        });
      } else {
        for_runs(l.outer * A, inner, four, [&](int64_t r) {
          int64_t o = r / A, a = r % A, off = (o * (A / g) + a / g) * inner;
          k.quant_vec(at(x, r * inner, es), inner, scale + off, zero_point + off, out, r * inner);
        });
      }
      break;
    }
  }
}

void dequantize(const void* q, QType qt, const BlockLayout& l, const float* scale, const int32_t* zero_point,
                float* out) {
  l.validate();
  const Kernels k = kernels_for(FloatType::kF32, qt);
  const int64_t A = l.axis_len, inner = l.inner;
  if (l.size() == 0) return;
  // Reads never race, so runs need no pairing here.
  switch (l.mode) {
    case Granularity::kPerTensor:
      for_elements(l.size(), [&](int64_t b, int64_t e) { k.dequant_const(q, b, e - b, scale, zero_point, out + b); });
      break;
    case Granularity::kPerChannel:
      if (inner == 1) {
        for_runs(l.outer, A, false, [&](int64_t r) { k.dequant_vec(q, r * A, A, scale, zero_point, out + r * A); });
      } else {
        for_runs(l.outer * A, inner, false, [&](int64_t r) {
          int64_t a = r % A;
          k.dequant_const(q, r * inner, inner, scale + a, zero_point + a, out + r * inner);
        });
      }
      break;
    case Granularity::kPerGroup: {
      const int64_t g = l.group;
      if (inner == 1) {
        for_runs(l.outer * (A / g), g, false, [&](int64_t r) {
          k.dequant_const(q, r * g, g, scale + r, zero_point + r, out + r * g);
        });
      } else {
        for_runs(l.outer * A, inner, false, [&](int64_t r) {
          int64_t o = r / A, a = r % A, off = (o * (A / g) + a / g) * inner;
          k.dequant_vec(q, r * inner, inner, scale + off, zero_point + off, out + r * inner);
        });
      }
      break;
    }
  }
}

void block_range(const void* x, FloatType xt, const BlockLayout& l, float* lo, float* hi) {
  l.validate();
  const Kernels k = kernels_for(xt, QType::kInt8);
  const int64_t es = float_type_size(xt), A = l.axis_len, inner = l.inner, nb = l.num_scales();
  std::fill(lo, lo + nb, std::numeric_limits<float>::infinity());
  std::fill(hi, hi + nb, -std::numeric_limits<float>::infinity());
  if (l.size() == 0) return;
  switch (l.mode) {
    case Granularity::kPerTensor: {
      const int64_t n = l.size();
      const int64_t parts = std::max<int64_t>(1, std::min<int64_t>(num_threads(), n / kGrainElems));
      std::vector<float> plo(parts, *lo), phi(parts, *hi);
      parallel_for(parts, 1, [&](int64_t b, int64_t e, int) {
        for (int64_t p = b; p < e; ++p) {
          int64_t c0 = n * p / parts, c1 = n * (p + 1) / parts;
          if (!k.range_const(at(x, c0, es), c1 - c0, &plo[p], &phi[p])) non_finite(-1);
        }
      });
      for (size_t t = 0; t < plo.size(); ++t) {
        *lo = std::min(*lo, plo[t]);
        *hi = std::max(*hi, phi[t]);
      }
      break;
    }
    case Granularity::kPerChannel:
      if (inner == 1) {
        // Columns of [outer, A]: each task owns a band of columns and walks every row.
        constexpr int64_t kBand = 256;
        parallel_for((A + kBand - 1) / kBand, std::max<int64_t>(1, kGrainElems / std::max<int64_t>(1, l.outer * kBand)),
                     [&](int64_t b, int64_t e, int) {
                       int64_t c0 = b * kBand, c1 = std::min(e * kBand, A);
                       for (int64_t o = 0; o < l.outer; ++o) {
                         if (!k.range_vec(at(x, o * A + c0, es), c1 - c0, lo + c0, hi + c0)) non_finite(-1);
                       }
                     });
      } else {
        parallel_for(A, std::max<int64_t>(1, kGrainElems / std::max<int64_t>(1, l.outer * inner)),
                     [&](int64_t b, int64_t e, int) {
                       for (int64_t a = b; a < e; ++a) {
                         for (int64_t o = 0; o < l.outer; ++o) {
                           if (!k.range_const(at(x, (o * A + a) * inner, es), inner, lo + a, hi + a)) non_finite(-1);
                         }
                       }
                     });
      }
      break;
    case Granularity::kPerGroup: {
      const int64_t g = l.group;
      if (inner == 1) {
        for_runs(l.outer * (A / g), g, false, [&](int64_t r) {
          if (!k.range_const(at(x, r * g, es), g, lo + r, hi + r)) non_finite(-1);
        });
      } else {
        // Block (o, a / g) owns scale entries [block * inner, (block + 1) * inner).
        for_runs(l.outer * (A / g), g * inner, false, [&](int64_t blk) {
          int64_t o = blk / (A / g), a0 = (blk % (A / g)) * g;
          for (int64_t a = a0; a < a0 + g; ++a) {
            if (!k.range_vec(at(x, (o * A + a) * inner, es), inner, lo + blk * inner, hi + blk * inner)) non_finite(-1);
          }
        });
      }
      break;
    }
  }
}

void choose_qparams_blocks(const void* x, FloatType xt, const BlockLayout& l, QType qt, bool symmetric, float* scale,
                           int32_t* zero_point) {
  l.validate();
  const int64_t nb = l.num_scales();
  std::vector<float> lo(nb), hi(nb);
  block_range(x, xt, l, lo.data(), hi.data());
  for (int64_t b = 0; b < nb; ++b) {
    QParams p = l.size() == 0 ? choose_qparams(0.0f, 0.0f, qt, symmetric) : choose_qparams(lo[b], hi[b], qt, symmetric);
    scale[b] = p.scale;
    zero_point[b] = p.zero_point;
  }
}

void quantize_per_token(const void* x, FloatType xt, int64_t rows, int64_t cols, QType qt, bool symmetric, void* out,
                        float* scale, int32_t* zero_point) {
  if (rows < 0 || cols < 0) throw std::out_of_range("native: negative dimension");
  const Kernels k = kernels_for(xt, qt);
  const int64_t es = float_type_size(xt);
  for_runs(rows, cols, is_four_bit(qt), [&](int64_t r) {
    const void* row = at(x, r * cols, es);
    float lo = 0.0f, hi = 0.0f;
    bool ok;
    if (symmetric) {
      ok = k.absmax(row, cols, &hi);
    } else {
      lo = std::numeric_limits<float>::infinity();
      hi = -lo;
      ok = k.range_const(row, cols, &lo, &hi);
      if (cols == 0) lo = hi = 0.0f;
    }
    if (!ok) non_finite(r);
    QParams p = choose_qparams(lo, hi, qt, symmetric);
    scale[r] = p.scale;
    zero_point[r] = p.zero_point;
    // The row is in cache now and the quantize pass is compute-bound: fetch the next row meanwhile,
    // so that its range pass does not wait on memory (the hardware prefetcher sees no misses to
    // follow while this pass reads from cache).
    const char* next = static_cast<const char*>(at(x, (r + 1) * cols, es));
    const bool prefetch = r + 1 < rows;
    // Symmetric rows are finite and |x / scale| <= amax / fl(amax / half) <= half * (1 + 2^-23), which
    // rounds to at most `half`: the clamp of quantize_value cannot bind, so the cheaper kernel is exact.
    const qrun::QuantFn quant = symmetric ? k.quant_in_range : k.quant_const;
    for (int64_t c = 0; c < cols; c += kPrefetchChunk) {
      int64_t m = std::min(kPrefetchChunk, cols - c);
      quant(at(row, c, es), m, scale + r, zero_point + r, out, r * cols + c);
      if (prefetch) {
        for (int64_t b = c * es; b < (c + m) * es; b += 64) __builtin_prefetch(next + b, 0, 2);
      }
    }
  });
}

namespace qrun {

Kernels scalar_kernels(FloatType xt, QType qt) {
  return for_types(xt, qt, [](auto xtag, auto qtag) {
    constexpr FloatType XT = decltype(xtag)::value;
    constexpr QType QT = decltype(qtag)::value;
    return Kernels{&quant_scalar<XT, QT, false>, &quant_scalar<XT, QT, true>, &quant_scalar<XT, QT, false>,
                   &dequant_scalar<QT, false>,    &dequant_scalar<QT, true>,    &range_const_scalar<XT>,
                   &range_vec_scalar<XT>,         &absmax_scalar<XT>};
  });
}

}  // namespace qrun
}  // namespace qarvd
