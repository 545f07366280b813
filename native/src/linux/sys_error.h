// A failed syscall, and how it reaches JavaScript: shared by every Linux part
// of the addon so each error reads the same way.
#pragma once
#include <napi.h>
#include <string.h>

#include <string>

namespace vmm {

// A failed syscall: `call` names it ("ioctl(TUNSETIFF)"), `err` is errno.
struct SysError {
  std::string call;
  int err;
};

inline const char* ErrnoName(int err) {
  const char* n = strerrorname_np(err);
  return n != nullptr ? n : "EUNKNOWN";
}

// An Error whose message names the syscall and errno, like Node's own:
// "ioctl(TUNSETIFF) on /dev/net/tun failed: EPERM (Operation not permitted)".
inline Napi::Error SysErrorToJs(Napi::Env env, const SysError& e) {
  std::string msg = e.call + " failed: " + ErrnoName(e.err) + " (" + strerror(e.err) + ")";
  Napi::Error err = Napi::Error::New(env, msg);
  err.Set("code", Napi::String::New(env, ErrnoName(e.err)));
  err.Set("errno", Napi::Number::New(env, e.err));
  err.Set("syscall", Napi::String::New(env, e.call));
  return err;
}

}  // namespace vmm
