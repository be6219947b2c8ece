// backends(): what this build was compiled with and what this machine offers; setThreads/setIsa
// steer the CPU kernels.
#include <string>

#include "../common/cpu_features.h"
#include "../common/parallel.h"
#include "../kernels/kernel_paths.h"
#include "util.h"
#ifdef QARVD_WITH_CUDA
#include "../../cuda/device.cuh"
#endif

namespace {

Napi::Value Backends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const auto& f = qarvd::cpu_features();
  Napi::Object cpu = Napi::Object::New(env);
  cpu.Set("avx2", f.avx2);
  cpu.Set("avx512", f.avx512);
  cpu.Set("avx512vnni", f.avx512_vnni);
  cpu.Set("avx512bf16", f.avx512_bf16);
  cpu.Set("avxvnni", f.avx_vnni);
  cpu.Set("amxTile", f.amx_tile);
  cpu.Set("amxInt8", f.amx_int8);
  cpu.Set("amxBf16", f.amx_bf16);
  cpu.Set("amxUsable", f.amx_usable);
  cpu.Set("detectedIsa", qarvd::isa_name(qarvd::detected_isa()));
  cpu.Set("isa", qarvd::isa_name(qarvd::selected_isa()));
  const qarvd::Emulation em = qarvd::isa_emulation();
  if (em == qarvd::Emulation::kOff) cpu.Set("emulate", false);
  else if (em == qarvd::Emulation::kMissing) cpu.Set("emulate", true);
  else cpu.Set("emulate", "always");
  cpu.Set("emulationCompiled", qarvd::emulation_compiled());
  Napi::Object paths = Napi::Object::New(env);
  for (const auto& family : qarvd::kernel_families()) {
    const qarvd::KernelPath p = family.path();
    paths.Set(family.name, std::string(qarvd::isa_name(p.isa)) + (p.emulated ? "+emulated" : ""));
  }
  cpu.Set("paths", paths);
  cpu.Set("threads", qarvd::num_threads());

  Napi::Object cuda = Napi::Object::New(env);
  Napi::Array devices = Napi::Array::New(env);
#ifdef QARVD_WITH_CUDA
  std::string status;
  auto list = qarvd::cuda::list_devices(&status);
  for (size_t i = 0; i < list.size(); ++i) {
    Napi::Object d = Napi::Object::New(env);
    d.Set("index", list[i].index);
    d.Set("name", list[i].name);
    d.Set("computeCapability", std::to_string(list[i].major) + "." + std::to_string(list[i].minor));
    d.Set("totalMemory", static_cast<double>(list[i].total_memory));
    d.Set("multiprocessors", list[i].multiprocessors);
    devices.Set(static_cast<uint32_t>(i), d);
  }
  cuda.Set("compiled", true);
  cuda.Set("runtimeVersion", qarvd::cuda::runtime_version());
  cuda.Set("driverVersion", qarvd::cuda::driver_version());
  cuda.Set("status", status);
#else
  cuda.Set("compiled", false);
  cuda.Set("status", "built without CUDA");
#endif
  cuda.Set("devices", devices);

  Napi::Object out = Napi::Object::New(env);
  out.Set("cpu", cpu);
  out.Set("cuda", cuda);
  return out;
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  const int64_t n = qarvd::napi::integer(info, 0, "threads");
  if (n < 1 || n > 1024) throw Napi::RangeError::New(info.Env(), "native: threads must be between 1 and 1024");
  qarvd::set_num_threads(static_cast<int>(n));
  return Napi::Number::New(info.Env(), qarvd::num_threads());
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  std::string name = qarvd::napi::string(info, 0, "isa");
  const std::string mode = qarvd::napi::string(info, 1, "emulate");  // off | missing | always
  const qarvd::Emulation emulation = mode == "always" ? qarvd::Emulation::kAlways
                                     : mode == "missing" ? qarvd::Emulation::kMissing
                                                         : qarvd::Emulation::kOff;
  const bool emulate = emulation != qarvd::Emulation::kOff;
  qarvd::Isa isa;
  if (!qarvd::parse_isa(name, &isa)) throw Napi::RangeError::New(info.Env(), "native: unknown isa " + name);
  if (emulate && !qarvd::emulation_compiled()) {
    throw Napi::Error::New(info.Env(), "native: this build has no emulated kernels (install SIMDe, e.g. Debian's libsimde-dev, and rebuild)");
  }
  qarvd::set_isa_limit(isa, emulation);
  return Napi::String::New(info.Env(), qarvd::isa_name(qarvd::selected_isa()));
}

void Export(Napi::Env env, Napi::Object exports) {
  exports.Set("backends", Napi::Function::New(env, qarvd::napi::guarded<Backends>, "backends"));
  exports.Set("setThreads", Napi::Function::New(env, qarvd::napi::guarded<SetThreads>, "setThreads"));
  exports.Set("setIsa", Napi::Function::New(env, qarvd::napi::guarded<SetIsa>, "setIsa"));
}

}  // namespace

QARVD_EXPORTS(Export);
