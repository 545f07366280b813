// The forwarder's data path moved out of this addon into vmm-relayd
// (native/relayd/relayd.cc), a process of its own that vmmd spawns and drives
// through native/relay.ts: its RSS is a few MB rather than the Node process's,
// its worker processes use every core and each have their own fd table, and
// nothing of it runs on a thread inside vmmd. This file only keeps the
// registration hook that src/addon.cc calls; it exports nothing.
#include "../platform.h"

namespace vmm {

void InitRelay(Napi::Env, Napi::Object) {}

}  // namespace vmm
