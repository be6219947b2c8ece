#include "cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <string>
#include <utility>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#endif

namespace qarvd {
namespace {

#if defined(__x86_64__)
bool os_saves_avx_state(unsigned long long mask) {
  unsigned eax, edx;
  __asm__("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  unsigned long long xcr0 = (static_cast<unsigned long long>(edx) << 32) | eax;
  return (xcr0 & mask) == mask;
}

// Linux keeps AMX tile data disabled until a process asks (ARCH_REQ_XCOMP_PERM, feature 18).
bool request_amx_permission() {
#if defined(__linux__)
  constexpr int kArchReqXcompPerm = 0x1023;
  constexpr int kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}
#endif

CpuFeatures detect() {
  CpuFeatures f;
#if defined(__x86_64__)
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  bool osxsave = (c >> 27) & 1, fma = (c >> 12) & 1, f16c = (c >> 29) & 1;
  if (!osxsave || !os_saves_avx_state(0x6)) return f;
  __cpuid_count(7, 0, a, b, c, d);
  unsigned b7 = b, c7 = c, d7 = d;
  f.avx2 = ((b7 >> 5) & 1) && fma && f16c;
  bool zmm = os_saves_avx_state(0xe6);
  f.avx512 = zmm && ((b7 >> 16) & 1) && ((b7 >> 17) & 1) && ((b7 >> 30) & 1) && ((b7 >> 31) & 1);
  f.avx512_vnni = f.avx512 && ((c7 >> 11) & 1);
  f.amx_bf16 = (d7 >> 22) & 1;
  f.amx_tile = (d7 >> 24) & 1;
  f.amx_int8 = (d7 >> 25) & 1;
  __cpuid_count(7, 1, a, b, c, d);
  f.avx_vnni = f.avx2 && ((a >> 4) & 1);
  f.avx512_bf16 = f.avx512 && ((a >> 5) & 1);
  f.amx_usable = f.amx_tile && f.amx_int8 && request_amx_permission();
#endif
  return f;
}

bool native(const CpuFeatures& f, Isa isa) {
  switch (isa) {
    case Isa::kScalar: return true;
    case Isa::kAvx2: return f.avx2;
    case Isa::kAvxVnni: return f.avx_vnni;
    case Isa::kAvx512: return f.avx512;
    case Isa::kAvx512Vnni: return f.avx512_vnni;
    case Isa::kAmx: return f.amx_usable && f.avx512_vnni;
  }
  return false;
}

constexpr Isa kAll[] = {Isa::kScalar, Isa::kAvx2, Isa::kAvxVnni, Isa::kAvx512, Isa::kAvx512Vnni, Isa::kAmx};

// The cap and the emulation switches in one word, so that readers see a consistent setting.
constexpr int kEmulateBit = 16;  // emulate the paths the CPU lacks
constexpr int kForceBit = 32;    // emulate even the paths the CPU has (to test the emulated builds)
constexpr int kIsaMask = kEmulateBit - 1;

int initial_setting() {
  Isa limit = Isa::kAmx;
  int bits = 0;
  if (const char* env = std::getenv("QARVD_ISA")) {
    std::string v = env;
    for (const auto& [suffix, b] : {std::pair<std::string, int>{"+emulated", kEmulateBit},
                                    std::pair<std::string, int>{"+emulated-always", kEmulateBit | kForceBit}}) {
      if (v.size() > suffix.size() && v.compare(v.size() - suffix.size(), suffix.size(), suffix) == 0) {
        v.resize(v.size() - suffix.size());
        bits = b;
      }
    }
    // An unknown value leaves the default (the TypeScript loader warns about it).
    if (!parse_isa(v, &limit)) {
      limit = Isa::kAmx;
      bits = 0;
    }
  }
  return static_cast<int>(limit) | bits;
}

std::atomic<int> isa_setting{initial_setting()};

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

bool isa_native(Isa isa) { return native(cpu_features(), isa); }

Isa detected_isa() {
  Isa best = Isa::kScalar;
  for (Isa isa : kAll)
    if (isa_native(isa)) best = isa;
  return best;
}

void set_isa_limit(Isa limit, Emulation emulation) {
  const int bits = emulation == Emulation::kOff ? 0 : emulation == Emulation::kMissing ? kEmulateBit : kEmulateBit | kForceBit;
  isa_setting.store(static_cast<int>(limit) | bits);
}
Isa isa_limit() { return static_cast<Isa>(isa_setting.load() & kIsaMask); }
Emulation isa_emulation() {
  const int s = isa_setting.load();
  return (s & kForceBit) ? Emulation::kAlways : (s & kEmulateBit) ? Emulation::kMissing : Emulation::kOff;
}

bool emulation_compiled() {
#ifdef QARVD_WITH_SIMDE
  return true;
#else
  return false;
#endif
}

Isa active_isa() {
  const Isa limit = isa_limit();
  Isa best = Isa::kScalar;
  for (Isa isa : kAll)
    if (isa <= limit && isa_native(isa)) best = isa;
  return best;
}

Isa selected_isa() { return isa_emulation() != Emulation::kOff ? isa_limit() : active_isa(); }

KernelPath pick_path(std::initializer_list<Isa> paths, std::initializer_list<Isa> emulated) {
  const int setting = isa_setting.load();
  const Isa limit = static_cast<Isa>(setting & kIsaMask);
  // The emulated builds lean on the native AVX2 helpers (activation packing, stores).
  const bool emulate = (setting & kEmulateBit) != 0 && emulation_compiled() && isa_native(Isa::kAvx2);
  const bool force = (setting & kForceBit) != 0;
  KernelPath best;
  for (Isa isa : paths) {
    if (isa > limit || isa < best.isa) continue;
    bool has_emulated = false;
    for (Isa e : emulated) has_emulated = has_emulated || e == isa;
    if (emulate && has_emulated && (force || !isa_native(isa))) {
      best = {isa, true};
    } else if (isa_native(isa)) {
      best = {isa, false};
    }
  }
  return best;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvxVnni: return "avxvnni";
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx512Vnni: return "avx512vnni";
    case Isa::kAmx: return "amx";
  }
  return "scalar";
}

bool parse_isa(const std::string& name, Isa* out) {
  for (Isa isa : kAll) {
    if (name == isa_name(isa)) {
      *out = isa;
      return true;
    }
  }
  return false;
}

}  // namespace qarvd
