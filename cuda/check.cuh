// Turning CUDA status codes into C++ exceptions (never exit/abort): the message names the operation,
// the device and the CUDA statement, with cudaGetErrorString. For .cu files only (needs cuda_runtime.h).
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace qarvd::cuda {

// Thrown for every CUDA failure; the binding maps it to a JavaScript Error.
struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail(cudaError_t err, const char* op, int device, const char* stmt) {
  cudaGetLastError();  // clear a non-sticky error so that the next call on this thread starts clean
  throw CudaError(std::string(op) + " on cuda:" + std::to_string(device) + ": " + stmt + " failed: " +
                  cudaGetErrorString(err) + " (" + cudaGetErrorName(err) + ")");
}

}  // namespace qarvd::cuda

// QARVD_CUDA_CHECK(stmt, op, device): runs stmt and throws CudaError naming op, device and stmt.
#define QARVD_CUDA_CHECK(stmt, op, device)                                   \
  do {                                                                       \
    cudaError_t qarvd_err_ = (stmt);                                         \
    if (qarvd_err_ != cudaSuccess) ::qarvd::cuda::fail(qarvd_err_, op, device, #stmt); \
  } while (0)
