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

// One ARP exchange in two steps, so that a caller on the event loop never
// blocks: Send opens an AF_PACKET socket on `ifindex` and sends `frame` (at
// least 42 bytes: an Ethernet frame carrying ARP); *fd receives the socket,
// the caller's to pass to Collect and then to close with CloseLater.
// Collect gathers the ARP frames the interface receives, at most
// `max_frames`, leaving out frames the host itself sends; when `match` is
// 10 bytes (sender MAC, sender IPv4) it stops as soon as that sender's
// reply arrives. It waits until `deadline_ms` (CLOCK_MONOTONIC, as NowMs)
// and then reads what is queued once more (a caller that starts late still
// gets answers that came in time), or with `deadline_ms` 0 only reads what
// is already queued (a guest on a veth has often answered before sendto()
// returned). Collect returns 1 when done (matched, full, deadline passed),
// 0 when a non-waiting call has no match yet, -1 with `e` filled. Needs
// CAP_NET_RAW.
int Send(int ifindex, const std::vector<uint8_t>& frame, int* fd, SysError* e);
int Collect(int fd, int ifindex, const std::vector<uint8_t>& match, int64_t deadline_ms, size_t max_frames,
            std::vector<std::vector<uint8_t>>* frames, SysError* e);
// Closes a socket of Send off the calling thread (see neigh.cc).
void CloseLater(int fd);
int64_t NowMs();

}  // namespace neigh
}  // namespace vmm
