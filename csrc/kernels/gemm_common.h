// Pieces shared by the GEMM families: 64-byte aligned buffers (packed weights, per-thread scratch)
// and small integer helpers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>
#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace qarvd::gemm {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// A zero-initialised, 64-byte aligned array of trivially copyable T. Movable, not copyable.
template <typename T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(size_t n) { resize(n); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  AlignedBuffer(AlignedBuffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)), mapped_(std::exchange(o.mapped_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(mapped_, o.mapped_);
    return *this;
  }
  ~AlignedBuffer() { release(); }

  // Discards the contents; the new elements are zero.
  void resize(size_t n) {
    release();
    if (n == 0) return;
    // Large buffers (packed weights) go on 2 MB boundaries and ask for transparent huge pages: a
    // GEMM walks many panels per block, and 4 KB pages would miss the TLB on every panel.
    const bool huge = n * sizeof(T) >= kHugeThreshold;
    const size_t align = huge ? kHugePage : 64;
    size_t bytes = round_up(static_cast<int64_t>(n * sizeof(T)), static_cast<int64_t>(align));
#if defined(__linux__)
    // Buffers of 256 KB and more are mapped from the kernel and unmapped when freed, rather than
    // taken from malloc: glibc raises its mmap threshold after the first such free, and later
    // weights then come from the heap, whose fragmentation kept a loop that builds and disposes
    // layers growing by about one layer per iteration.
    if (bytes >= kMapThreshold) {
      const size_t span = bytes + (align > 4096 ? align : 0);
      void* p = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
      uintptr_t start = reinterpret_cast<uintptr_t>(p);
      const uintptr_t aligned = (start + align - 1) / align * align;
      if (aligned > start) munmap(p, aligned - start);
      const uintptr_t end = start + span;
      if (end > aligned + bytes) munmap(reinterpret_cast<void*>(aligned + bytes), end - (aligned + bytes));
      data_ = reinterpret_cast<T*>(aligned);
      mapped_ = bytes;
#if defined(MADV_HUGEPAGE)
      if (huge) madvise(data_, bytes, MADV_HUGEPAGE);
#endif
      size_ = n;  // anonymous pages are zero
      return;
    }
#endif
    data_ = static_cast<T*>(std::aligned_alloc(align, bytes));
    if (!data_) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (huge) madvise(data_, bytes, MADV_HUGEPAGE);
#endif
    std::memset(static_cast<void*>(data_), 0, bytes);
    size_ = n;
  }
  // Grows (discarding the contents) only when smaller than n: for per-thread scratch reused across calls.
  void reserve(size_t n) {
    if (n > size_) resize(n);
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  size_t bytes() const { return size_ * sizeof(T); }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }

 private:
  void release() {
#if defined(__linux__)
    if (mapped_) {
      munmap(static_cast<void*>(data_), mapped_);
    } else {
      std::free(data_);
    }
#else
    std::free(data_);
#endif
    data_ = nullptr;
    size_ = 0;
    mapped_ = 0;
  }

  static constexpr size_t kHugePage = size_t(2) << 20;
  static constexpr size_t kHugeThreshold = size_t(4) << 20;
  static constexpr size_t kMapThreshold = size_t(256) << 10;
  T* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;  // bytes mapped with mmap (0: from aligned_alloc)
};

}  // namespace qarvd::gemm
