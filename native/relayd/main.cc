// vmm-relayd: the data path of the port forwarder (server/forward), as a
// small process of its own that vmmd spawns and controls over its stdin/stdout.
//
//   vmm-relayd --probe            exit 0 when splice(2) works socket -> pipe -> socket
//   vmm-relayd --workers N [--pack C]
//                                 serve; fd 3 is a shared counter file
//                                 (slots.h); C: connections per process below
//                                 which new connections are packed (steer.h;
//                                 default 1024)
//
// Process layout. The first process (the "master") forks N-1 worker processes
// at startup, before it has any socket. Every process runs the same
// single-threaded epoll engine (engine.h); each has its own fd table (the
// hard RLIMIT_NOFILE applies per process, so N processes hold N times as many
// connections) and its own SO_REUSEPORT listener per TCP rule, steered as
// steer.h says. The master binds every listener itself (bind errors are
// reported to vmmd with the syscall and errno) and hands one to each worker
// over a SOCK_SEQPACKET socketpair with SCM_RIGHTS (master.cc, worker.cc).
// UDP rules live in the master only: a UDP flow hashes to one socket anyway,
// and the session cap stays exact.
//
// Counters live in fd 3, a file vmmd created and mapped here MAP_SHARED: one
// 64-byte Slot per rule, updated with atomics by every process, read by vmmd
// with pread(2) synchronously. The per-rule connection limit is a fetch_add
// on that shared `active` counter, so it is exact across processes.
//
// Control protocol: control.h. On start the master prints "READY <pid>
// <pid>..." (every relay process). EOF on stdin: everything is closed and
// every process exits; a worker exits when its master's socketpair closes
// (and PR_SET_PDEATHSIG).
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine.h"
#include "procs.h"
#include "slots.h"
#include "steer.h"

using namespace relayd;

namespace {

int Probe() {
  int sv[2], pp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0) {
    perror("vmm-relayd: socketpair");
    return 1;
  }
  if (pipe2(pp, O_CLOEXEC | O_NONBLOCK) < 0) {
    perror("vmm-relayd: pipe2");
    return 1;
  }
  char b[8];
  if (write(sv[0], "probe", 5) != 5 || splice(sv[1], nullptr, pp[1], nullptr, 5, SPLICE_F_NONBLOCK) != 5 ||
      splice(pp[0], nullptr, sv[1], nullptr, 5, SPLICE_F_NONBLOCK) != 5 || read(sv[0], b, sizeof b) != 5 ||
      memcmp(b, "probe", 5) != 0) {
    fprintf(stderr, "vmm-relayd: splice: %s\n", strerror(errno ? errno : EIO));
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "--probe") == 0) return Probe();
  long workers = 0;
  long long pack = 1024;
  bool ok = argc == 3 || argc == 5;
  for (int i = 1; ok && i + 1 < argc; i += 2) {
    char* end = nullptr;
    long long v = strtoll(argv[i + 1], &end, 10);
    if (*argv[i + 1] == '\0' || *end != '\0') ok = false;
    else if (strcmp(argv[i], "--workers") == 0) workers = static_cast<long>(v);
    else if (strcmp(argv[i], "--pack") == 0) pack = v;
    else ok = false;
  }
  if (!ok || workers < 1 || workers > 64 || pack < 0) {
    fprintf(stderr, "Usage: vmm-relayd --probe | vmm-relayd --workers N [--pack C]   (fd 3: counter file)\n");
    return 2;
  }
  gProcs = workers;
  gPackBelow = static_cast<uint64_t>(pack);
  if (!MapShared()) {
    perror("vmm-relayd: mmap (shared process counts)");
    return 1;
  }
  signal(SIGPIPE, SIG_IGN);
  // Each process gets the hard fd limit (the soft one is often 1024).
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  // SAFETY: fd 3 is the counter file vmmd opened for us; mapped shared and
  // closed (the mapping keeps it) before any fork.
  if (ftruncate(3, kSlots * sizeof(Slot)) < 0) {
    perror("vmm-relayd: ftruncate fd 3 (counter file)");
    return 1;
  }
  void* mem = mmap(nullptr, kSlots * sizeof(Slot), PROT_READ | PROT_WRITE, MAP_SHARED, 3, 0);
  if (mem == MAP_FAILED) {
    perror("vmm-relayd: mmap fd 3 (counter file)");
    return 1;
  }
  close(3);
  gSlots = static_cast<Slot*>(mem);
  fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);

  pid_t master = getpid();
  for (long i = 1; i < workers; i++) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
      perror("vmm-relayd: socketpair");
      return 1;
    }
    pid_t pid = fork();
    if (pid < 0) {
      perror("vmm-relayd: fork");
      return 1;
    }
    if (pid == 0) {
      gProcIndex = i;
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != master) _exit(0);
      close(sv[0]);
      for (auto& w : gWorkers) close(w.sock);
      gWorkers.clear();
      // A worker never talks to vmmd directly.
      int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
      dup2(devnull, 0);
      dup2(devnull, 1);
      close(devnull);
      Engine e(sv[1]);
      gEngine = &e;
      e.Run([&] { return WorkerControl(sv[1]); });
      _exit(0);
    }
    close(sv[1]);
    gWorkers.push_back({pid, sv[0]});
  }
  Engine e(0);
  gEngine = &e;
  std::string ready = "READY " + std::to_string(master);
  for (auto& w : gWorkers) ready += " " + std::to_string(w.pid);
  SayReady(ready);
  e.Run(MasterControl);
  for (auto& w : gWorkers) close(w.sock);  // workers see EOF and exit
  for (auto& w : gWorkers) waitpid(w.pid, nullptr, 0);
  return 0;
}
