// A small persistent thread pool shared by every CPU kernel.
//
// Kernels split their work with parallel_for; the calling thread takes part, so a pool of N threads
// uses N cores. Calls from several threads at once (concurrent async workers) are serialised rather
// than oversubscribing the cores.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>

namespace qarvd {

// Number of threads kernels use (the calling thread included). Defaults to the hardware concurrency,
// or QARVD_NUM_THREADS when set.
int num_threads();
// Changes the thread count; n < 1 restores the default.
void set_num_threads(int n);

// Calls fn(begin, end, thread_index) over [0, n) split into contiguous ranges of at least `grain`
// items, at most one range per thread. Exceptions thrown by fn are rethrown on the calling thread.
void parallel_for(int64_t n, int64_t grain,
                  const std::function<void(int64_t begin, int64_t end, int thread)>& fn);

}  // namespace qarvd
