// What the CPU offers, detected once at run time with cpuid (and, for AMX, the Linux permission to
// use the tile registers). Kernels pick their code path from this, so one binary runs everywhere.
//
// The paths are ordered; a cap (setIsa, QARVD_ISA) limits every kernel family to paths at or below
// it, so a slower path can be forced and compared. The features are not nested (a client CPU may
// have AVX-VNNI without AVX-512, an older server AVX-512 without VNNI), so a family takes the best of
// ITS paths that is at most the cap and that the CPU runs. With emulation on, the CPU is treated as
// having every path up to the cap: families whose SIMD code is also built against SIMDe (and the
// plain C++ tile emulation for AMX) run that build where the instructions are missing, bit for bit
// the same source, so that every path is tested on every machine.
#pragma once
#include <initializer_list>
#include <string>

namespace qarvd {

enum class Isa { kScalar = 0, kAvx2 = 1, kAvxVnni = 2, kAvx512 = 3, kAvx512Vnni = 4, kAmx = 5 };

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

// Whether the CPU runs path `isa` natively (kAmx: AMX-INT8 with the tile permission, and AVX-512
// VNNI for its epilogues and small-M fallback).
bool isa_native(Isa isa);
// The best path the CPU runs natively.
Isa detected_isa();

// The cap and the emulation switch (set_isa_limit, or QARVD_ISA=<isa>[+emulated|+emulated-always]
// at start-up). kMissing emulates the paths the CPU lacks; kAlways also the ones it has, so that the
// emulated builds themselves are checked against the native ones.
enum class Emulation { kOff, kMissing, kAlways };
void set_isa_limit(Isa limit, Emulation emulation);
Isa isa_limit();
Emulation isa_emulation();
// Whether this build contains the emulated (SIMDe) builds of the SIMD kernels.
bool emulation_compiled();

// The best path up to the cap that the CPU runs natively (emulation aside). Families with only
// scalar and AVX2 code compare against it: active_isa() >= Isa::kAvx2 holds only where AVX2 runs.
Isa active_isa();
// The path reported as in use: the cap itself when emulating, else active_isa().
Isa selected_isa();

// The path a kernel family takes, given the paths it implements (`paths`, in any order) and which of
// them have an emulated build (`emulated`).
struct KernelPath {
  Isa isa = Isa::kScalar;
  bool emulated = false;  // run through the emulated build
};
KernelPath pick_path(std::initializer_list<Isa> paths, std::initializer_list<Isa> emulated);

const char* isa_name(Isa isa);
bool parse_isa(const std::string& name, Isa* out);

}  // namespace qarvd
