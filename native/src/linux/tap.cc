// TAP and macvtap file descriptors for QEMU's `-netdev tap,fd=N`.
//
// Fd ownership across the boundary: every function here that returns an fd
// hands it to JavaScript, which owns it from then on and must release it
// with closeFd() (native/tap.ts). The daemon passes such an fd to QEMU by
// listing it in the stdio array of child_process.spawn: the child gets a
// dup2()'d copy (fd 3, 4, ...), so the daemon may and should close its own
// copy right after the spawn. Nothing in this file keeps an fd.
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "../platform.h"

namespace vmm {
namespace tap {

namespace {

// Closes `fd` on scope exit unless released: no early return leaks it.
class FdGuard {
 public:
  explicit FdGuard(int fd) : fd_(fd) {}
  ~FdGuard() {
    if (fd_ >= 0) close(fd_);
  }
  int release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }
  FdGuard(const FdGuard&) = delete;
  FdGuard& operator=(const FdGuard&) = delete;

 private:
  int fd_;
};

int Fail(SysError* e, const std::string& call) {
  e->call = call;
  e->err = errno;
  return -1;
}

}  // namespace

int OpenTap(const std::string& name, bool vnet_hdr, bool multi_queue, std::string* actual, SysError* e) {
  int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Fail(e, "open /dev/net/tun");
  // SAFETY: `fd` is fresh and owned by `owner` until released to the caller;
  // every failure below closes it.
  FdGuard owner(fd);

  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  if (vnet_hdr) ifr.ifr_flags |= IFF_VNET_HDR;
  if (multi_queue) ifr.ifr_flags |= IFF_MULTI_QUEUE;
  // The caller checked name.size() < IFNAMSIZ; strncpy leaves the NUL from memset.
  strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  // SAFETY: TUNSETIFF reads and writes `ifr` (a local struct of the size the
  // kernel expects) and binds the interface to `fd`, which we still own.
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) return Fail(e, "ioctl(TUNSETIFF) on /dev/net/tun");

  if (vnet_hdr) {
    // Offloads the guest's virtio-net can use; QEMU renegotiates them with
    // the guest driver later, this is only the starting point.
    unsigned int offload = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN;
    // SAFETY: TUNSETOFFLOAD takes the flags by value; `fd` is ours.
    if (ioctl(fd, TUNSETOFFLOAD, offload) < 0) return Fail(e, "ioctl(TUNSETOFFLOAD)");
  }
  // Not persistent: the interface disappears when the last fd (ours, QEMU's)
  // is closed, so a crashed daemon or QEMU cannot leak it.
  // SAFETY: TUNSETPERSIST takes an int by value; `fd` is ours.
  if (ioctl(fd, TUNSETPERSIST, 0) < 0) return Fail(e, "ioctl(TUNSETPERSIST)");

  *actual = ifr.ifr_name;
  // SAFETY: ownership of `fd` passes to the caller (JavaScript), which
  // closes it with closeFd() once QEMU holds its own copy.
  return owner.release();
}

int OpenMacvtap(int ifindex, std::string* path, SysError* e) {
  char ifname[IF_NAMESIZE] = {0};
  if (if_indextoname(static_cast<unsigned>(ifindex), ifname) == nullptr) {
    return Fail(e, "if_indextoname(" + std::to_string(ifindex) + ")");
  }
  *path = "/dev/tap" + std::to_string(ifindex);
  struct stat st;
  if (stat(path->c_str(), &st) < 0) {
    if (errno != ENOENT) return Fail(e, "stat " + *path);
    // No node (a private /dev, no udev): create it from sysfs' "major:minor".
    std::string sys = std::string("/sys/class/net/") + ifname + "/macvtap/tap" + std::to_string(ifindex) + "/dev";
    std::ifstream in(sys);
    unsigned maj = 0, min = 0;
    char colon = 0;
    if (!(in >> maj >> colon >> min) || colon != ':') {
      errno = in.fail() && !in.is_open() ? ENOENT : EINVAL;
      return Fail(e, "read " + sys + " (is " + ifname + " a macvtap?)");
    }
    if (mknod(path->c_str(), S_IFCHR | 0600, makedev(maj, min)) < 0 && errno != EEXIST) {
      return Fail(e, "mknod " + *path);
    }
  }
  // SAFETY: a fresh fd; ownership passes to the caller (JavaScript), which
  // closes it with closeFd(). Nothing else here keeps it.
  int fd = open(path->c_str(), O_RDWR | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Fail(e, "open " + *path);
  return fd;
}

}  // namespace tap

namespace {

Napi::Value OpenTapJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "Usage: openTap(name: string, opts: { vnetHdr: boolean; multiQueue?: boolean })";
  if (info.Length() != 2 || !info[0].IsString() || !info[1].IsObject()) {
    throw Napi::TypeError::New(env, usage);
  }
  std::string name = info[0].As<Napi::String>().Utf8Value();
  Napi::Object opts = info[1].As<Napi::Object>();
  Napi::Value vh = opts.Get("vnetHdr");
  Napi::Value mq = opts.Get("multiQueue");
  if (!vh.IsBoolean() || !(mq.IsUndefined() || mq.IsBoolean())) throw Napi::TypeError::New(env, usage);
  if (name.size() >= IFNAMSIZ || name.find('/') != std::string::npos || name.find(' ') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(env, std::string(usage) + ": name must be an interface name of at most 15 bytes");
  }
  std::string actual;
  tap::SysError e;
  int fd = tap::OpenTap(name, vh.As<Napi::Boolean>().Value(), mq.IsBoolean() && mq.As<Napi::Boolean>().Value(),
                        &actual, &e);
  if (fd < 0) throw SysErrorToJs(env, e);
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, fd));
  out.Set("name", Napi::String::New(env, actual));
  return out;
}

Napi::Value OpenMacvtapJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "Usage: openMacvtap(ifindex: number /* positive integer */)";
  if (info.Length() != 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, usage);
  double d = info[0].As<Napi::Number>().DoubleValue();
  if (!(d >= 1 && d <= 0x7fffffff) || d != static_cast<double>(static_cast<int>(d))) {
    throw Napi::TypeError::New(env, usage);
  }
  std::string path;
  tap::SysError e;
  int fd = tap::OpenMacvtap(static_cast<int>(d), &path, &e);
  if (fd < 0) throw SysErrorToJs(env, e);
  Napi::Object out = Napi::Object::New(env);
  out.Set("fd", Napi::Number::New(env, fd));
  out.Set("path", Napi::String::New(env, path));
  return out;
}

Napi::Value CloseFdJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "Usage: closeFd(fd: number /* an fd returned by openTap/openMacvtap */)";
  if (info.Length() != 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, usage);
  double d = info[0].As<Napi::Number>().DoubleValue();
  // 0-2 are stdio: closing them would break the daemon, never what a caller wants.
  if (!(d >= 3 && d <= 0x7fffffff) || d != static_cast<double>(static_cast<int>(d))) {
    throw Napi::TypeError::New(env, usage);
  }
  // SAFETY: the caller owns this fd (it came from openTap/openMacvtap) and
  // gives it up here; after this call the number may be reused.
  if (close(static_cast<int>(d)) < 0) {
    throw SysErrorToJs(env, tap::SysError{"close(" + std::to_string(static_cast<int>(d)) + ")", errno});
  }
  return env.Undefined();
}

}  // namespace

void InitTap(Napi::Env env, Napi::Object exports) {
  exports.Set("openTap", Napi::Function::New(env, OpenTapJs, "openTap"));
  exports.Set("openMacvtap", Napi::Function::New(env, OpenMacvtapJs, "openMacvtap"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFdJs, "closeFd"));
}

}  // namespace vmm
