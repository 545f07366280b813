// vmm-relayd: the data path of the port forwarder (server/forward), as
// processes of their own that outlive vmmd.
//
//   vmm-relayd --probe            exit 0 when splice(2) works socket -> pipe -> socket
//   vmm-relayd --control DIR --workers N [--pack C] [--nice P] [--poll-us U]
//                                 serve the control socket DIR/control.sock;
//                                 C: connections per process below which new
//                                 connections are packed (steer.h; default 1024);
//                                 P: nice value of every relay process (-20..19,
//                                 default: unchanged; below the current value
//                                 needs CAP_SYS_NICE, else a warning and unchanged);
//                                 U: longest busy poll before the event loop
//                                 sleeps, 0..1000 µs (engine.cc; default 0)
//
// DIR must be a directory of the relay's user with no access for group or
// others (vmmd creates it 0700). The relay holds an flock on DIR/lock for
// its life (exit status 3 when another relay holds it: one relay per
// directory), so a stale control socket can be replaced safely.
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
// Counters live in a memfd of the master (slots.h), mapped MAP_SHARED by
// every process, updated with atomics, read by vmmd with pread(2) through
// /proc/<master pid>/fd/<n>. The per-rule connection limit is a fetch_add on
// the shared `active` counter, so it is exact across processes.
//
// Lifetime: the relay runs in a session of its own and does not exit with
// vmmd (control.h, master.cc). It exits on Q, SIGTERM or SIGINT (closing
// every connection), when its control socket is removed, and when it has no
// controller and no rule. A worker exits when its master's socketpair closes
// (and PR_SET_PDEATHSIG); the master exits when a worker dies (vmmd then
// restarts the relay with its rules).
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

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

// DIR must be ours and closed to everyone else: whoever can reach the
// control socket controls every forwarded port.
bool CheckDir(const std::string& dir) {
  struct stat st;
  if (lstat(dir.c_str(), &st) < 0) {
    fprintf(stderr, "vmm-relayd: %s: %s\n", dir.c_str(), strerror(errno));
    return false;
  }
  if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
    fprintf(stderr, "vmm-relayd: %s must be a directory of uid %u with mode 0700 (is uid %u, mode %04o)\n", dir.c_str(),
            geteuid(), st.st_uid, st.st_mode & 07777);
    return false;
  }
  return true;
}

// Takes DIR/lock for the life of the process; -1 (with a message) when
// another relay holds it.
int LockDir(const std::string& dir) {
  std::string path = dir + "/lock";
  // SAFETY: the lock fd stays open (and locked) in the master until it exits.
  int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    fprintf(stderr, "vmm-relayd: open %s: %s\n", path.c_str(), strerror(errno));
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    buf[n > 0 ? n : 0] = 0;
    fprintf(stderr, "vmm-relayd: another relay (pid %s) serves %s\n", n > 0 ? buf : "?", dir.c_str());
    close(fd);
    return -1;
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) < 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    // the pid is for operators only; the lock is what counts
  }
  return fd;
}

}  // namespace

namespace relayd {

std::string ApplySettings(const Command& cmd) {
  if (cmd.setPoll) gEngine->SetPollMax(cmd.pollUs * 1000);
  if (cmd.setNice && setpriority(PRIO_PROCESS, 0, cmd.nice) < 0) return "ERR setpriority " + std::to_string(errno);
  return "";
}

}  // namespace relayd

int main(int argc, char** argv) {
  if (argc == 2 && strcmp(argv[1], "--probe") == 0) return Probe();
  long workers = 0;
  long long pack = 1024;
  long long nice = 0;
  bool setNice = false;  // without --nice: the inherited value
  std::string dir;
  long long pollUs = 0;
  bool ok = argc == 5 || argc == 7 || argc == 9 || argc == 11;
  for (int i = 1; ok && i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--control") == 0) {
      dir = argv[i + 1];
      continue;
    }
    char* end = nullptr;
    long long v = strtoll(argv[i + 1], &end, 10);
    if (*argv[i + 1] == '\0' || *end != '\0') ok = false;
    else if (strcmp(argv[i], "--workers") == 0) workers = static_cast<long>(v);
    else if (strcmp(argv[i], "--pack") == 0) pack = v;
    else if (strcmp(argv[i], "--nice") == 0 && v >= -20 && v <= 19) nice = v, setNice = true;
    else if (strcmp(argv[i], "--poll-us") == 0 && v >= 0 && v <= static_cast<long long>(kMaxPollUs)) pollUs = v;
    else ok = false;
  }
  if (!ok || dir.empty() || dir[0] != '/' || workers < 1 || workers > 64 || pack < 0) {
    fprintf(stderr, "Usage: vmm-relayd --probe | vmm-relayd --control DIR --workers N [--pack C] [--nice -20..19] [--poll-us 0..1000]\n");
    return 2;
  }
  if (!CheckDir(dir)) return 1;
  int lock = LockDir(dir);
  if (lock < 0) return 3;
  setsid();  // no-op when vmmd already made us a session leader
  gProcs = workers;
  gPackBelow = static_cast<uint64_t>(pack);
  gPollMaxNs = static_cast<uint32_t>(pollUs * 1000);
  if (!MapShared()) {
    perror("vmm-relayd: shared process counts");
    return 1;
  }
  // Before the workers are forked: they inherit it.
  if (setNice && setpriority(PRIO_PROCESS, 0, static_cast<int>(nice)) < 0)
    fprintf(stderr, "vmm-relayd: setpriority(%lld): %s; running at nice %d\n", nice, strerror(errno), getpriority(PRIO_PROCESS, 0));
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  // Each process gets the hard fd limit (the soft one is often 1024).
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  // SAFETY: the counter memfd is the master's for its life (vmmd opens it
  // through /proc); workers close their copy after fork (the mapping stays).
  int counters = memfd_create("vmm-relayd-counters", MFD_CLOEXEC);
  if (counters < 0 || ftruncate(counters, kSlots * sizeof(Slot)) < 0) {
    perror("vmm-relayd: memfd_create/ftruncate (counter file)");
    return 1;
  }
  void* mem = mmap(nullptr, kSlots * sizeof(Slot), PROT_READ | PROT_WRITE, MAP_SHARED, counters, 0);
  if (mem == MAP_FAILED) {
    perror("vmm-relayd: mmap (counter file)");
    return 1;
  }
  gSlots = static_cast<Slot*>(mem);

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
      close(lock);
      close(counters);
      for (auto& w : gWorkers) close(w.sock);
      gWorkers.clear();
      RunWorker(sv[1]);
      _exit(0);
    }
    close(sv[1]);
    gWorkers.push_back({pid, sv[0], {}});
  }
  int status = RunMaster({dir, counters});
  for (auto& w : gWorkers) waitpid(w.pid, nullptr, 0);
  return status;
}
