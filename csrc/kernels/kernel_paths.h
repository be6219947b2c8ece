// The kernel families that choose among more than the scalar and AVX2 paths, by name, so that
// backends() can report which path (native or emulated) each one takes now.
#pragma once
#include <vector>

#include "../common/cpu_features.h"

namespace qarvd {

struct KernelFamily {
  const char* name;
  KernelPath (*path)();
};

const std::vector<KernelFamily>& kernel_families();

}  // namespace qarvd
