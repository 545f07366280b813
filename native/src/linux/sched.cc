// The scheduling priority of the calling thread: vmmd's event loop runs
// ahead of busy guests (vmm.toml `nice`), and nothing it starts inherits that.
#include <errno.h>
#include <sched.h>
#include <sys/resource.h>

#include "../platform.h"
#include "sys_error.h"

namespace vmm {

namespace {

// setThreadNice(nice): the calling thread's nice value (setpriority on
// Linux is per thread; vmmd calls it from its main thread, the event loop),
// with SCHED_RESET_ON_FORK, so that processes and threads created from it
// (QEMU, dnsmasq, passt, libuv's pool) start at nice 0 rather than
// inheriting a negative value.
Napi::Value SetThreadNiceJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "Usage: setThreadNice(nice: integer -20..19)";
  if (info.Length() != 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, usage);
  double d = info[0].As<Napi::Number>().DoubleValue();
  if (!(d >= -20 && d <= 19) || d != static_cast<double>(static_cast<int>(d))) throw Napi::TypeError::New(env, usage);
  sched_param sp{};
  if (sched_setscheduler(0, SCHED_OTHER | SCHED_RESET_ON_FORK, &sp) < 0) {
    throw SysErrorToJs(env, SysError{"sched_setscheduler(SCHED_OTHER | SCHED_RESET_ON_FORK)", errno});
  }
  if (setpriority(PRIO_PROCESS, 0, static_cast<int>(d)) < 0) {
    throw SysErrorToJs(env, SysError{"setpriority(" + std::to_string(static_cast<int>(d)) + ")", errno});
  }
  return env.Undefined();
}

}  // namespace

void InitSched(Napi::Env env, Napi::Object exports) {
  exports.Set("setThreadNice", Napi::Function::New(env, SetThreadNiceJs, "setThreadNice"));
}

}  // namespace vmm
