#include "kernel_paths.h"

#include "attention.h"
#include "gemm_f32.h"
#include "gemm_int.h"

namespace qarvd {

const std::vector<KernelFamily>& kernel_families() {
  static const std::vector<KernelFamily> families = {
      {"gemmF32", gemm::f32_path},
      {"gemmInt", gemm::int_path},
      {"attention", attention_path},
  };
  return families;
}

}  // namespace qarvd
