// Entry point of the vmm native addon. Each platform file registers its own
// functions on the exports object; the typed surfaces are native/*.ts. The
// forwarder's data path is not in the addon but in vmm-relayd
// (native/relayd/relayd.cc), a process of its own.
#include <napi.h>

#include "platform.h"

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  vmm::InitLock(env, exports);
#if defined(__linux__)
  vmm::InitTap(env, exports);
  vmm::InitNeigh(env, exports);
  vmm::InitSched(env, exports);
  exports.Set("platform", Napi::String::New(env, "linux"));
#elif defined(__APPLE__)
  vmm::InitVmnet(env, exports);
  exports.Set("platform", Napi::String::New(env, "darwin"));
#endif
  return exports;
}

NODE_API_MODULE(vmm_native, Init)
