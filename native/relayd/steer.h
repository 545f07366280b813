// Steering of new TCP connections over the relay processes.
//
// Which process accepts a new connection is chosen by a one-instruction
// classic BPF program on each rule's SO_REUSEPORT group ("take socket k"):
// light loads are packed into the first process with fewer than --pack
// connections (on a small host, one busy relay process beats two that wake
// each other's cores: lower latency, more connections per second); once
// every process holds that many, the program answers "none" and the kernel
// spreads by hash over all of them (more cores, and the fd limit of every
// process). Socket k of a group is process k's listener: the master creates
// them in that order (its own, then one per worker), and a group numbers its
// sockets in the order they started listening.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstdint>

namespace relayd {

constexpr uint32_t kSpread = UINT32_MAX;     // BPF verdict: no socket chosen -> hash
constexpr uint32_t kNoVerdict = UINT32_MAX - 1;  // Slot::steer before the first install (no process index)

// Shared by every relay process (mapped before the workers are forked): the
// TCP connections each process holds now, indexed by process (0: the master,
// i: the i-th worker), and a lock that serializes steering changes: a
// robust process-shared mutex, so a process that dies holding it (killed,
// crashed) hands it to the next taker (EOWNERDEAD) instead of blocking every
// other relay process.
struct Shared {
  std::atomic<uint64_t> conns[64];
  pthread_mutex_t steerLock;
};

extern Shared* gShared;
extern long gProcs;      // relay processes
extern long gProcIndex;  // this process
extern uint64_t gPackBelow;

// Maps the shared area; call once, before forking. False on failure (errno set).
bool MapShared();

// Takes the steering lock, waiting at most `timeoutMs`; recovers it from
// a holder that died. False on timeout (a holder that is alive but stopped).
bool LockSteering(int timeoutMs);
void UnlockSteering();

// The process new connections should go to: the first one holding fewer than
// gPackBelow connections, else kSpread (the kernel spreads by hash).
uint32_t SteerTarget();

// Installs "take socket SteerTarget()" on the SO_REUSEPORT group of
// listener `fd` (rule `id`) when it changed. Installs happen under a lock
// shared by all processes, each after the counts it was computed from, and
// every threshold crossing re-steers, so the last install follows the last
// counts. A failed install leaves the kernel's hash spreading; so does a
// lock not taken within 10 ms (steering is an optimization: the data path
// never waits longer for it).
void Steer(uint32_t id, int fd);

}  // namespace relayd
