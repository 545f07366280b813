#include "steer.h"

#include <linux/filter.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include "slots.h"

namespace relayd {

Shared* gShared = nullptr;
long gProcs = 1;
long gProcIndex = 0;
uint64_t gPackBelow = 1024;

bool MapShared() {
  // SAFETY: mapped once, before fork, shared by every relay process for its
  // life; zero-filled, which is the initial state of every field.
  void* shared = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) return false;
  gShared = static_cast<Shared*>(shared);
  return true;
}

uint32_t SteerTarget() {
  for (long i = 0; i < gProcs; i++)
    if (gShared->conns[i].load() < gPackBelow) return static_cast<uint32_t>(i);
  return kSpread;
}

void Steer(uint32_t id, int fd) {
  if (gProcs < 2) return;
  Slot& s = gSlots[id];
  if (SteerTarget() == s.steer.load()) return;
  while (gShared->steerLock.exchange(1, std::memory_order_acquire)) {
  }
  uint32_t t = SteerTarget();
  if (t != s.steer.load()) {
    sock_filter code[] = {{BPF_RET | BPF_K, 0, 0, t}};
    sock_fprog prog{1, code};
    s.steer = setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) == 0 ? t : kNoVerdict;
  }
  gShared->steerLock.store(0, std::memory_order_release);
}

}  // namespace relayd
