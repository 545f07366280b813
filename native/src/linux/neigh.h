// The host's view of who answers ARP on an interface: one entry of the
// kernel's neighbour table (rtnetlink), and a raw ARP exchange on the
// interface (AF_PACKET). The pieces that do not touch N-API.
#pragma once
#include <stdint.h>

#include <string>
#include <vector>

#include "sys_error.h"

namespace vmm {
namespace neigh {

// One neighbour table entry: the link-layer address (empty when the kernel
// has none, e.g. INCOMPLETE/FAILED) and the NUD_* state bits.
struct Entry {
  std::vector<uint8_t> lladdr;
  uint16_t state;
};

// Looks up IPv4 `ip` (network byte order) on interface `ifindex` with an
// RTM_GETNEIGH request (Linux >= 5.0). Returns 1 and fills `out` when the
// kernel has an entry, 0 when it has none, -1 with `e` filled on failure.
// Opens and closes its own netlink socket; bounded by a 1 s receive timeout.
int Get(int ifindex, uint32_t ip, Entry* out, SysError* e);

// Sends one Ethernet frame (`frame`, at least 42 bytes: an ARP packet) on
// `ifindex` and collects the ARP frames that interface receives until
// `timeout_ms` passes, at most `max_frames` of them. When `match` is 10
// bytes (sender MAC, sender IPv4), it returns as soon as an ARP reply from
// that sender arrives. Frames the host itself sends are left out. Needs
// CAP_NET_RAW. Returns 0, or -1 with `e` filled.
int Exchange(int ifindex, const std::vector<uint8_t>& frame, const std::vector<uint8_t>& match, int timeout_ms,
             size_t max_frames, std::vector<std::vector<uint8_t>>* frames, SysError* e);

}  // namespace neigh
}  // namespace vmm
