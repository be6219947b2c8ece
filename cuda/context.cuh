// Device contexts and device memory, for the bindings (pure C++: no CUDA header needed to include it).
//
// Each device has one CUDA stream, created on first use; every operation runs on it from a libuv
// worker thread and ends with a stream synchronization, so a Promise resolves only when the GPU work
// is done and the event loop never waits. Memory comes from cudaMalloc (never managed memory).
// Failures throw CudaError (context.cu, check.cuh) naming the operation, the device and the message.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace qarvd::cuda {

// Number of usable devices; `status` receives the CUDA message when there are none.
int device_count(std::string* status);
// Throws std::runtime_error "no CUDA device: <status>" when there is none, std::out_of_range when
// `device` is not a valid index.
void require_device(int device);
// Makes `device` current on this thread and returns its stream (a cudaStream_t), creating it once.
void* use_device(int device, const char* op);
// Waits for the device's stream; a kernel failure surfaces here, named after `op`.
void synchronize(int device, const char* op);
// Throws when the last kernel launch on this thread failed (bad configuration, no kernel image).
void check_launch(int device, const char* op);

// One cudaMalloc'd region; freed by the destructor (after the work queued on it has finished).
class Allocation {
 public:
  Allocation(int device, size_t bytes);
  ~Allocation();
  Allocation(const Allocation&) = delete;
  Allocation& operator=(const Allocation&) = delete;

  int device() const { return device_; }
  size_t bytes() const { return bytes_; }
  void* data() const { return data_; }

 private:
  int device_;
  size_t bytes_;
  void* data_ = nullptr;
};

// Stream-ordered scratch memory (cudaMallocAsync) for the duration of one operation.
class Scratch {
 public:
  Scratch(int device, void* stream, size_t bytes, const char* op);
  ~Scratch();
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  void* data() const { return data_; }

 private:
  void* stream_;
  void* data_ = nullptr;
};

enum class CopyKind { kHostToDevice, kDeviceToHost, kDeviceToDevice };
// Copies `bytes` on the device's stream and waits for the copy.
void copy(int device, void* dst, const void* src, size_t bytes, CopyKind kind, const char* op);

}  // namespace qarvd::cuda
