#include "cpu_features.h"

#include <atomic>
#include <cstdlib>

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

Isa best_isa(const CpuFeatures& f) {
  if (f.amx_usable && f.avx512_vnni) return Isa::kAmx;
  if (f.avx512_vnni) return Isa::kAvx512Vnni;
  if (f.avx512) return Isa::kAvx512;
  if (f.avx2) return Isa::kAvx2;
  return Isa::kScalar;
}

Isa initial_limit() {
  Isa limit = Isa::kAmx;
  if (const char* env = std::getenv("QARVD_ISA")) parse_isa(env, &limit);
  return limit;
}

std::atomic<int> isa_limit{static_cast<int>(initial_limit())};

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures features = detect();
  return features;
}

Isa detected_isa() { return best_isa(cpu_features()); }

Isa active_isa() {
  int best = static_cast<int>(detected_isa());
  int limit = isa_limit.load();
  return static_cast<Isa>(best < limit ? best : limit);
}

void set_isa_limit(Isa limit) { isa_limit.store(static_cast<int>(limit)); }

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx512Vnni: return "avx512vnni";
    case Isa::kAmx: return "amx";
  }
  return "scalar";
}

bool parse_isa(const std::string& name, Isa* out) {
  for (Isa isa : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Vnni, Isa::kAmx}) {
    if (name == isa_name(isa)) {
      *out = isa;
      return true;
    }
  }
  return false;
}

}  // namespace qarvd
