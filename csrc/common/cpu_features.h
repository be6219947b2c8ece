// What the CPU offers, detected once at run time with cpuid (and, for AMX, the Linux permission to
// use the tile registers). Kernels pick their code path from this, so one binary runs everywhere.
#pragma once
#include <string>

namespace qarvd {

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAvx512Vnni = 3, kAmx = 4 };

struct CpuFeatures {
  bool avx2 = false;       // with FMA and F16C
  bool avx512 = false;     // F, BW, DQ, VL
  bool avx512_vnni = false;
  bool avx512_bf16 = false;
  bool avx_vnni = false;
  bool amx_tile = false;   // reported by cpuid
  bool amx_int8 = false;
  bool amx_bf16 = false;
  bool amx_usable = false; // tile data permission granted by the kernel (arch_prctl)
};

const CpuFeatures& cpu_features();

// Best ISA this CPU supports, capped by QARVD_ISA (scalar|avx2|avx512|avx512vnni|amx) or by
// set_isa_limit; used to force and test a slower path.
Isa active_isa();
void set_isa_limit(Isa limit);
Isa detected_isa();
const char* isa_name(Isa isa);
bool parse_isa(const std::string& name, Isa* out);

}  // namespace qarvd
