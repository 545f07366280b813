// An exclusive lock on a file for the life of the process: vmmd takes one
// on <state_dir>/vmmd.lock before it touches anything else, so two daemons
// never share a state directory.
//
// POSIX record locks (fcntl F_SETLK), not flock(): F_GETLK reports the pid
// of the holder, which the refusal names. The kernel drops the lock when
// the process ends, however it ends (kill -9 included), so a lock is never
// stale and needs no clean-up. The caveat of record locks -- closing *any*
// fd of the file in this process releases the lock -- is why the daemon
// never opens the lock file a second time. Plain POSIX: Linux and macOS.
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <string>

#include "platform.h"

namespace vmm {
namespace {

Napi::Error ErrnoError(Napi::Env env, const std::string& call, int err) {
  Napi::Error e = Napi::Error::New(env, call + " failed: " + strerror(err));
  e.Set("errno", Napi::Number::New(env, err));
  e.Set("syscall", Napi::String::New(env, call));
  return e;
}

// lockFile(path) -> { fd } when this process now holds the lock (the fd is
// the caller's, O_CLOEXEC, and must stay open as long as the lock should
// hold), or { heldBy } with the holder's pid (0 when the kernel cannot name
// it, e.g. a holder in another pid namespace) when another process holds it.
Napi::Value LockFileJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "Usage: lockFile(path: string)";
  if (info.Length() != 1 || !info[0].IsString()) throw Napi::TypeError::New(env, usage);
  std::string path = info[0].As<Napi::String>().Utf8Value();
  if (path.empty() || path.find('\0') != std::string::npos) throw Napi::TypeError::New(env, usage);
  // O_NOFOLLOW: a symlink planted in place of the lock file is refused, not followed.
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) throw ErrnoError(env, "open " + path, errno);
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;  // l_start = l_len = 0: the whole file
  Napi::Object out = Napi::Object::New(env);
  if (fcntl(fd, F_SETLK, &fl) == 0) {
    out.Set("fd", Napi::Number::New(env, fd));
    return out;
  }
  int err = errno;
  if (err != EAGAIN && err != EACCES) {
    close(fd);
    throw ErrnoError(env, "fcntl(F_SETLK) " + path, err);
  }
  struct flock who;
  memset(&who, 0, sizeof who);
  who.l_type = F_WRLCK;
  who.l_whence = SEEK_SET;
  pid_t holder = 0;
  if (fcntl(fd, F_GETLK, &who) == 0 && who.l_type != F_UNLCK) holder = who.l_pid;
  close(fd);
  out.Set("heldBy", Napi::Number::New(env, holder > 0 ? holder : 0));
  return out;
}

}  // namespace

void InitLock(Napi::Env env, Napi::Object exports) {
  exports.Set("lockFile", Napi::Function::New(env, LockFileJs, "lockFile"));
}

}  // namespace vmm
