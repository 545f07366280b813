// Test program for the relay processes' shared steering lock (steer.h),
// built and run by native/relayd-lock.test.ts: a process that dies holding
// the lock must not block the others (before: a spinlock without owner-death
// recovery spun every other relay process at 100% CPU, forever), and a
// holder that is stopped costs a waiter its timeout, not its loop.
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../steer.h"

using namespace relayd;

static long Ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main() {
  if (!MapShared()) return 2;
  // 1. A holder killed while it holds the lock.
  pid_t p = fork();
  if (p == 0) {
    LockSteering(1000);
    kill(getpid(), SIGKILL);
  }
  waitpid(p, nullptr, 0);
  long t0 = Ms();
  bool ok = LockSteering(2000);
  printf("dead-holder %s %ld\n", ok ? "taken" : "timeout", Ms() - t0);
  if (ok) UnlockSteering();
  // 2. A holder that is alive but stopped.
  int ready[2];
  if (pipe(ready) < 0) return 2;
  p = fork();
  if (p == 0) {
    LockSteering(1000);
    (void)!write(ready[1], "x", 1);
    pause();
    _exit(0);
  }
  char b;
  (void)!read(ready[0], &b, 1);
  kill(p, SIGSTOP);
  t0 = Ms();
  ok = LockSteering(200);
  printf("stopped-holder %s %ld\n", ok ? "taken" : "timeout", Ms() - t0);
  kill(p, SIGKILL);
  waitpid(p, nullptr, 0);
  // 3. And after it died, the lock is free again.
  ok = LockSteering(2000);
  printf("after %s\n", ok ? "taken" : "timeout");
  return 0;
}
