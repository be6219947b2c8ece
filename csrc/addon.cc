// The module's entry point. Each binding file in napi/ registers its own exports with QARVD_EXPORTS,
// so adding a kernel family never touches this file.
#include "napi/util.h"

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  qarvd::napi::register_all(env, exports);
  return exports;
}

NODE_API_MODULE(qarvd, Init)
