// The shared counter file of vmm-relayd: one 64-byte Slot per rule, mapped
// MAP_SHARED by every relay process and read by vmmd with pread(2) at
// id * sizeof(Slot) (native/relay.ts, RelayDaemon.counters: keep the two in
// sync; a change of layout is a change of kProtocol in control.h). The file
// is a memfd of the master's; vmmd opens it through /proc/<pid>/fd/<n>, so
// a restarted vmmd reads the counters where the last one left them.
#pragma once

#include <atomic>
#include <cstdint>

namespace relayd {

constexpr uint32_t kSlots = 4096;  // rules per relay (ids 1..4095; slot 0 unused)

// Field order matters: a reader copies the slot front to back, and a
// connection leaves `active` before its error is counted (both before its
// sockets close), so a reader that sees the error also sees the connection gone.
struct Slot {
  std::atomic<uint64_t> errors;
  std::atomic<uint64_t> total;      // TCP connections accepted; UDP sessions created
  std::atomic<uint64_t> toGuest;
  std::atomic<uint64_t> fromGuest;
  std::atomic<uint64_t> sessions;   // UDP sessions open now
  std::atomic<uint64_t> active;     // TCP connections open now
  std::atomic<uint32_t> steer;      // TCP: verdict installed on the rule's SO_REUSEPORT group (steer.h)
  std::atomic<uint32_t> lastConnectErrno;  // TCP: errno of the last failed guest connect
  std::atomic<uint64_t> connectFailures;   // TCP: guest connects refused, unreachable or timed out
};
static_assert(sizeof(Slot) == 64, "Slot is 64 bytes: vmmd reads it at id * 64");

// Every slot, mapped from the counter file (main.cc).
extern Slot* gSlots;

// Zeroes a slot for a new rule.
void ResetSlot(Slot& s);

}  // namespace relayd
