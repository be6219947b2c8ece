#include "parallel.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace qarvd {
namespace {

int default_threads() {
  // QARVD_NUM_THREADS must be a whole number from 1 to 1024 (setThreads' range); anything else is
  // ignored here (the TypeScript loader warns about it) and the core count is used.
  if (const char* env = std::getenv("QARVD_NUM_THREADS")) {
    char* end = nullptr;
    errno = 0;
    const long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && errno == 0 && n >= 1 && n <= 1024) return static_cast<int>(n);
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

// Spin-then-sleep: a model pass calls dozens of kernels in a row, each a parallel_for of tens to
// hundreds of microseconds, so a worker that has just finished waits for the next generation by
// spinning for a short while before it sleeps on the condition variable (a futex wake-up and a
// reschedule cost about as much as a small kernel); the caller waits for the last part the same way.
// The pool lives for the whole process; it is never destroyed, so no thread is joined during static
// destruction.
constexpr auto kSpin = std::chrono::microseconds(100);

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// Spins until done() or the spin time is up; true when done() held.
template <typename Done>
bool spin_until(Done done) {
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (int i = 0;; ++i) {
    if (done()) return true;
    cpu_relax();
    if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) return false;
  }
}

class Pool {
 public:
  explicit Pool(int workers) { resize(workers); }

  void run(int parts, const std::function<void(int)>& task) {
    std::lock_guard<std::mutex> serial(dispatch_mutex_);
    if (parts <= 1 || workers_.empty()) {
      for (int p = 0; p < parts; ++p) task(p);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      task_ = &task;
      parts_ = parts;
      next_part_.store(0);
      pending_.store(parts);
      error_ = nullptr;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    drain();
    if (!spin_until([&] { return pending_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [&] { return pending_.load() == 0; });
    }
    task_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int total) {
    std::lock_guard<std::mutex> serial(dispatch_mutex_);
    stop_all();
    int workers = std::max(0, total - 1);
    stopping_ = false;
    for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { loop(); });
  }

 private:
  void stop_all() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  // Takes parts until none are left; both workers and the caller run this.
  void drain() {
    for (;;) {
      int p = next_part_.fetch_add(1);
      if (p >= parts_) return;
      try {
        (*task_)(p);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        // The last part: wake the caller if it went to sleep (taking the mutex orders this with
        // its check of pending_ under the same mutex).
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_all();
      }
    }
  }

  void loop() {
    uint64_t seen = 0;
    for (;;) {
      if (!spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; })) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load() != seen; });
      }
      {
        // The generation's task and parts were published under the mutex.
        std::lock_guard<std::mutex> lock(mutex_);
        seen = generation_.load();
        if (stopping_) return;
      }
      drain();
    }
  }

  std::mutex dispatch_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* task_ = nullptr;
  int parts_ = 0;
  std::atomic<int> next_part_{0};
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> generation_{0};
  bool stopping_ = false;
  std::exception_ptr error_;
};

Pool& pool() {
  static Pool* instance = new Pool(default_threads());
  return *instance;
}

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) { pool().resize(n < 1 ? default_threads() : n); }

void parallel_for(int64_t n, int64_t grain,
                  const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int64_t max_parts = (n + grain - 1) / grain;
  int parts = static_cast<int>(std::min<int64_t>(num_threads(), max_parts));
  if (parts <= 1) {
    fn(0, n, 0);
    return;
  }
  pool().run(parts, [&](int p) {
    int64_t begin = n * p / parts;
    int64_t end = n * (p + 1) / parts;
    if (begin < end) fn(begin, end, p);
  });
}

}  // namespace qarvd
