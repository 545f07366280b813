#include "steer.h"

#include <errno.h>
#include <linux/filter.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>

#include "slots.h"

namespace relayd {

Shared* gShared = nullptr;
long gProcs = 1;
long gProcIndex = 0;
uint64_t gPackBelow = 1024;

bool MapShared() {
  // SAFETY: mapped once, before fork, shared by every relay process for its
  // life; zero-filled, which is the initial state of every count.
  void* shared = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) return false;
  gShared = static_cast<Shared*>(shared);
  pthread_mutexattr_t a;
  pthread_mutexattr_init(&a);
  pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
  int e = pthread_mutex_init(&gShared->steerLock, &a);
  pthread_mutexattr_destroy(&a);
  if (e != 0) {
    errno = e;
    return false;
  }
  return true;
}

bool LockSteering(int timeoutMs) {
  timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += timeoutMs / 1000;
  until.tv_nsec += static_cast<long>(timeoutMs % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  int e = pthread_mutex_timedlock(&gShared->steerLock, &until);
  // The holder died while installing a program: the state it protected (the
  // installed verdicts) is valid either way, so take the lock over.
  if (e == EOWNERDEAD) e = pthread_mutex_consistent(&gShared->steerLock);
  return e == 0;
}

void UnlockSteering() { pthread_mutex_unlock(&gShared->steerLock); }

uint32_t SteerTarget() {
  for (long i = 0; i < gProcs; i++)
    if (gShared->conns[i].load() < gPackBelow) return static_cast<uint32_t>(i);
  return kSpread;
}

void Steer(uint32_t id, int fd) {
  if (gProcs < 2) return;
  Slot& s = gSlots[id];
  if (SteerTarget() == s.steer.load()) return;
  if (!LockSteering(10)) return;
  uint32_t t = SteerTarget();
  if (t != s.steer.load()) {
    sock_filter code[] = {{BPF_RET | BPF_K, 0, 0, t}};
    sock_fprog prog{1, code};
    s.steer = setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) == 0 ? t : kNoVerdict;
  }
  UnlockSteering();
}

}  // namespace relayd
