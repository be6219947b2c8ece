// Device discovery. Compiled only when the build found nvcc (QARVD_WITH_CUDA); the CUDA runtime is
// linked statically, so on a machine without a GPU or driver these report zero devices instead of
// failing to load.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

namespace qarvd::cuda {

struct DeviceInfo {
  int index;
  std::string name;
  int major, minor;          // compute capability
  size_t total_memory;       // bytes
  int multiprocessors;
};

// Devices visible to this process; `status` receives the CUDA message when none can be queried
// (no driver, no device), and is empty otherwise.
std::vector<DeviceInfo> list_devices(std::string* status);
// CUDA runtime version the addon was built with, as major * 1000 + minor * 10.
int runtime_version();
// Highest CUDA version the installed driver supports, or 0 without a driver.
int driver_version();

}  // namespace qarvd::cuda
