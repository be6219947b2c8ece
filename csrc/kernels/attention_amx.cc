// The AMX path of attention (placeholder while the tile kernels are written): the AVX-512 dot units.
#include "simd_build.h"

#include "attention_avx512.h"

namespace qarvd::attn::QARVD_SIMD_NS {

void run_amx(const float* q, Operands in, float* out, const AttentionParams& p, AttentionWorkspace& ws) {
  run_avx512(q, in, out, p, true, ws);
}

}  // namespace qarvd::attn::QARVD_SIMD_NS
