// Splice relay (placeholder, filled in by the forwarder work).
#include "../platform.h"

namespace vmm {
void InitRelay(Napi::Env, Napi::Object) {}
}  // namespace vmm
