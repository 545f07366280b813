// TAP and macvtap file descriptors (placeholder, filled in by the lifecycle work).
#include "../platform.h"

namespace vmm {
void InitTap(Napi::Env, Napi::Object) {}
}  // namespace vmm
