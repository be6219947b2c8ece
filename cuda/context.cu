#include "context.cuh"

#include <mutex>
#include <stdexcept>
#include <vector>

#include "check.cuh"

namespace qarvd::cuda {
namespace {

std::mutex streams_mutex;
std::vector<cudaStream_t>& streams() {
  static std::vector<cudaStream_t> s;
  return s;
}

}  // namespace

int device_count(std::string* status) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    if (status) *status = cudaGetErrorString(err);
    return 0;
  }
  if (status) *status = count == 0 ? "no device found" : "";
  return count;
}

void require_device(int device) {
  std::string status;
  int count = device_count(&status);
  if (count == 0) throw std::runtime_error("no CUDA device: " + status);
  if (device < 0 || device >= count) {
    throw std::out_of_range("Expected a CUDA device index between 0 and " + std::to_string(count - 1) +
                            " but received " + std::to_string(device));
  }
}

void* use_device(int device, const char* op) {
  QARVD_CUDA_CHECK(cudaSetDevice(device), op, device);
  std::lock_guard<std::mutex> lock(streams_mutex);
  auto& s = streams();
  if (static_cast<int>(s.size()) <= device) s.resize(device + 1, nullptr);
  if (!s[device]) {
    // Non-blocking: never serialized against the legacy default stream of other libraries.
    QARVD_CUDA_CHECK(cudaStreamCreateWithFlags(&s[device], cudaStreamNonBlocking), op, device);
  }
  return s[device];
}

void synchronize(int device, const char* op) {
  cudaStream_t stream = static_cast<cudaStream_t>(use_device(device, op));
  QARVD_CUDA_CHECK(cudaStreamSynchronize(stream), op, device);
}

void check_launch(int device, const char* op) { QARVD_CUDA_CHECK(cudaGetLastError(), op, device); }

Allocation::Allocation(int device, size_t bytes) : device_(device), bytes_(bytes) {
  require_device(device);
  if (bytes == 0) return;
  QARVD_CUDA_CHECK(cudaSetDevice(device), "allocate", device);
  cudaError_t err = cudaMalloc(&data_, bytes);
  if (err != cudaSuccess) {
    data_ = nullptr;
    std::string stmt = "cudaMalloc(" + std::to_string(bytes) + " bytes)";
    fail(err, "allocate", device, stmt.c_str());
  }
}

Allocation::~Allocation() {
  if (!data_) return;
  // A destructor cannot throw; a failure here means the context is already broken, and the next
  // operation on the device reports that.
  if (cudaSetDevice(device_) == cudaSuccess) cudaFree(data_);
  cudaGetLastError();
}

Scratch::Scratch(int device, void* stream, size_t bytes, const char* op) : stream_(stream) {
  if (bytes == 0) return;
  QARVD_CUDA_CHECK(cudaMallocAsync(&data_, bytes, static_cast<cudaStream_t>(stream)), op, device);
}

Scratch::~Scratch() {
  if (data_) cudaFreeAsync(data_, static_cast<cudaStream_t>(stream_));
}

void copy(int device, void* dst, const void* src, size_t bytes, CopyKind kind, const char* op) {
  if (bytes == 0) return;
  cudaStream_t stream = static_cast<cudaStream_t>(use_device(device, op));
  cudaMemcpyKind k = kind == CopyKind::kHostToDevice   ? cudaMemcpyHostToDevice
                     : kind == CopyKind::kDeviceToHost ? cudaMemcpyDeviceToHost
                                                       : cudaMemcpyDeviceToDevice;
  QARVD_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, k, stream), op, device);
  QARVD_CUDA_CHECK(cudaStreamSynchronize(stream), op, device);
}

}  // namespace qarvd::cuda
