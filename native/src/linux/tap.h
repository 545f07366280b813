// TAP and macvtap file descriptors: the pieces of tap.cc that do not touch
// N-API, so they read like the syscalls they are.
#pragma once
#include <string>

#include "sys_error.h"

namespace vmm {
namespace tap {

using SysError = ::vmm::SysError;

// Opens /dev/net/tun and attaches it to TAP interface `name` ("" lets the
// kernel pick tapN), creating the interface when it does not exist. The fd
// is O_CLOEXEC | O_NONBLOCK; the interface is not persistent, so it goes
// away with the last fd. On success returns the fd and sets `actual` to the
// interface name; on failure returns -1 and fills `e` (nothing left open).
int OpenTap(const std::string& name, bool vnet_hdr, bool multi_queue, std::string* actual, SysError* e);

// Opens /dev/tap<ifindex> of a macvtap interface, creating the char device
// node from /sys/class/net/<dev>/macvtap/tap<ifindex>/dev when the /dev in
// use has none. O_CLOEXEC | O_NONBLOCK. Returns the fd and sets `path`, or
// -1 with `e` filled.
int OpenMacvtap(int ifindex, std::string* path, SysError* e);

}  // namespace tap
}  // namespace vmm
