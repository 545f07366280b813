// The scheduling priority of the calling thread: vmmd's event loop runs
// ahead of busy guests (vmm.toml `nice`), and nothing it starts inherits that.
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "../platform.h"
#include "sys_error.h"

namespace vmm {

namespace {

// struct sched_attr of sched_setattr(2), first version (48 bytes): glibc
// 2.36 does not declare it, and <linux/sched/types.h> clashes with glibc's
// struct sched_param.
struct SchedAttr {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
};
static_assert(sizeof(SchedAttr) == 48, "SCHED_ATTR_SIZE_VER0");
constexpr uint32_t kSchedNormal = 0;         // SCHED_NORMAL (SCHED_OTHER)
constexpr uint64_t kFlagResetOnFork = 0x01;  // SCHED_FLAG_RESET_ON_FORK

// setThreadNice(nice): the calling thread's nice value (vmmd calls it from
// its main thread, the event loop), with SCHED_RESET_ON_FORK, so that
// processes and threads created from it (QEMU, dnsmasq, passt, libuv's
// pool) start at nice 0 rather than inheriting a negative value. One sched_setattr(2) sets both, or neither:
// a nice value that children would inherit is never left behind. (Not
// sched_setscheduler with the flag OR'ed into the policy: systemd's
// RestrictRealtime= filter compares that argument numerically and refuses it.)
Napi::Value SetThreadNiceJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "Usage: setThreadNice(nice: integer -20..19)";
  if (info.Length() != 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, usage);
  double d = info[0].As<Napi::Number>().DoubleValue();
  if (!(d >= -20 && d <= 19) || d != static_cast<double>(static_cast<int>(d))) throw Napi::TypeError::New(env, usage);
  SchedAttr attr{};
  attr.size = sizeof attr;
  attr.sched_policy = kSchedNormal;
  attr.sched_flags = kFlagResetOnFork;
  attr.sched_nice = static_cast<int>(d);
  if (syscall(SYS_sched_setattr, 0, &attr, 0) < 0) {
    throw SysErrorToJs(env, SysError{"sched_setattr(SCHED_NORMAL, nice " + std::to_string(attr.sched_nice) + ", SCHED_FLAG_RESET_ON_FORK)", errno});
  }
  return env.Undefined();
}

}  // namespace

void InitSched(Napi::Env env, Napi::Object exports) {
  exports.Set("setThreadNice", Napi::Function::New(env, SetThreadNiceJs, "setThreadNice"));
}

}  // namespace vmm
