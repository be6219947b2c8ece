// Splitting calibration work into parts, one per pool thread at most.
//
// The part count is fixed before the work starts, so per-part scratch (partial histograms, partial
// sums) can be sized up front even if set_num_threads() runs concurrently; part p always covers the
// same range [n * p / parts, n * (p + 1) / parts), which keeps results independent of scheduling.
#pragma once
#include <algorithm>
#include <cstdint>

#include "../../common/parallel.h"

namespace qarvd::calib {

inline int parts_for(int64_t n, int64_t grain) {
  if (n <= 0) return 0;
  grain = std::max<int64_t>(grain, 1);
  int64_t by_grain = (n + grain - 1) / grain;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(num_threads(), by_grain)));
}

// Calls fn(part, begin, end) for each of `parts` contiguous ranges of [0, n).
template <typename Fn>
void run_parts(int64_t n, int parts, Fn&& fn) {
  if (parts <= 1) {
    if (n > 0) fn(0, int64_t{0}, n);
    return;
  }
  parallel_for(parts, 1, [&](int64_t pb, int64_t pe, int) {
    for (int64_t p = pb; p < pe; ++p) {
      int64_t begin = n * p / parts, end = n * (p + 1) / parts;
      if (begin < end) fn(static_cast<int>(p), begin, end);
    }
  });
}

}  // namespace qarvd::calib
