// Registration functions of the platform parts of the addon.
#pragma once
#include <napi.h>

namespace vmm {
// src/lock.cc (every platform): lockFile, the state directory's lock.
void InitLock(Napi::Env env, Napi::Object exports);
#if defined(__linux__)
// src/linux/tap.cc: openTap, openMacvtap, ...
void InitTap(Napi::Env env, Napi::Object exports);
// src/linux/neigh.cc: neighbourGet, arpExchange (lease verification).
void InitNeigh(Napi::Env env, Napi::Object exports);
// src/linux/sched.cc: setThreadNice (vmm.toml `nice`).
void InitSched(Napi::Env env, Napi::Object exports);
#elif defined(__APPLE__)
// src/darwin/vmnet.cc: vmnet.framework networks.
void InitVmnet(Napi::Env env, Napi::Object exports);
#endif
}  // namespace vmm
