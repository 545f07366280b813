// Master side: serves the control socket (one controller at a time: vmmd),
// keeps the rule table, binds every listener itself (so bind errors come
// back with the syscall and errno), hands each worker its own SO_REUSEPORT
// listener, and forwards rule changes to the workers.
//
// The relay outlives its controller: when vmmd exits (kill -9 included) the
// control connection closes and forwarding goes on; the next vmmd connects,
// reads the rule table (L) and reconciles it. Who may connect: the socket is
// 0600 in a directory that must be 0700 and ours (main.cc), and a peer whose
// SO_PEERCRED uid is neither 0 nor ours is refused.
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <map>

#include "control.h"
#include "procs.h"
#include "slots.h"
#include "steer.h"
#include "util.h"

namespace relayd {

Engine* gEngine = nullptr;
std::vector<Worker> gWorkers;

namespace {

constexpr int kListenBacklog = 4096;
constexpr int kWorkerAnswerMs = 3000;  // a worker only ever blocks in epoll_wait
constexpr size_t kLineMax = 4096;
constexpr int kIdleExitSec = 30;

// One rule as vmmd gave it (A), with its bound port, for L.
struct Row {
  Command cmd;
  uint16_t port = 0;
};

std::map<uint32_t, Row> gRules;
std::string gSockPath;
ino_t gSockIno = 0;
int gListenFd = -1;
int gCtl = -1;  // the controller's connection, -1 when none
std::string gIn;
bool gQuit = false;
bool gHadController = false;
int gStatus = 0;

char kListenMark, kCtlMark, kNotifyMark, kSignalMark, kTimerMark;
Tag gListenTag{Kind::kControl, &kListenMark};
Tag gCtlTag{Kind::kControl, &kCtlMark};
Tag gNotifyTag{Kind::kControl, &kNotifyMark};
Tag gSignalTag{Kind::kControl, &kSignalMark};
Tag gTimerTag{Kind::kControl, &kTimerMark};

std::string SysErr(const char* syscall, int e) { return std::string("ERR ") + syscall + " " + std::to_string(e); }

// The relay cannot go on with a worker that died or stopped answering: its
// connections and its share of every listener are beyond reach. After the
// current answer, the master exits (workers follow: PR_SET_PDEATHSIG), and
// vmmd restarts the relay and re-applies every rule.
void WorkerFailed(const Worker& w, const std::string& why) {
  fprintf(stderr, "vmm-relayd: worker %d: %s; exiting so that vmmd restarts the relay\n", w.pid, why.c_str());
  for (auto& o : gWorkers) kill(o.pid, SIGKILL);
  gQuit = true;
  gStatus = 1;
}

// Sends one command (with an fd when fd >= 0) to a worker; "" when sent. A
// worker that cannot be sent to is fatal (WorkerFailed).
std::string Tell(const Worker& w, const std::string& cmd, int fd) {
  if (gQuit) return "ERR worker 5";
  iovec iov{const_cast<char*>(cmd.data()), cmd.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  char cbuf[CMSG_SPACE(sizeof(int))];
  if (fd >= 0) {
    memset(cbuf, 0, sizeof cbuf);
    mh.msg_control = cbuf;
    mh.msg_controllen = sizeof cbuf;
    cmsghdr* cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &fd, sizeof fd);
  }
  if (sendmsg(w.sock, &mh, MSG_NOSIGNAL) >= 0) return "";
  int e = errno;
  WorkerFailed(w, std::string("sendmsg: ") + strerror(e));
  return "ERR worker " + std::to_string(e);
}

// A worker's answer to the command it was last told. A worker that fails to
// answer is fatal (WorkerFailed).
std::string Answer(const Worker& w) {
  if (gQuit) return "ERR worker 5";
  pollfd p{w.sock, POLLIN, 0};
  int r;
  do r = poll(&p, 1, kWorkerAnswerMs);
  while (r < 0 && errno == EINTR);
  char buf[256];
  ssize_t n = r == 1 ? recv(w.sock, buf, sizeof buf - 1, 0) : -1;
  if (n > 0) {
    buf[n] = 0;
    return buf;
  }
  int e = r == 0 ? ETIMEDOUT : n == 0 ? EPIPE : errno;
  WorkerFailed(w, (r == 0 ? std::string("no answer in 3 s") : std::string("recv")) + ": " + strerror(e));
  return "ERR worker " + std::to_string(e);
}

// Tell, then wait for the answer.
std::string Ask(const Worker& w, const std::string& cmd, int fd) {
  std::string err = Tell(w, cmd, fd);
  return err.empty() ? Answer(w) : err;
}

// A new TCP rule's listener copies, one per worker, handed over after the
// controller has its answer (TellWorkers): the rule accepts connections
// once the master's listener is in its engine, and a worker only adds its
// copy. Until then a connection the kernel gives a worker's copy
// (SO_REUSEPORT) waits in that copy's backlog.
struct PendingCopy {
  size_t worker;
  uint32_t rule;
  std::string line;
  int fd;
};
std::vector<PendingCopy> gPendingCopies;

// Hands every pending copy to its worker, then reads their answers. A
// worker that did not take its listener (its fd table full: the fd did not
// arrive) leaves that rule to the other processes; one that is gone or
// hangs is fatal, as with Ask.
void TellWorkers() {
  std::vector<const PendingCopy*> told;
  for (const PendingCopy& c : gPendingCopies) {
    if (Tell(gWorkers[c.worker], c.line, c.fd).empty()) told.push_back(&c);
  }
  // SAFETY: each worker received its own copy via SCM_RIGHTS (or the
  // relay is going down: WorkerFailed); the master's copies close here.
  for (const PendingCopy& c : gPendingCopies) close(c.fd);
  for (const PendingCopy* c : told) {
    std::string r = Answer(gWorkers[c->worker]);
    if (r != "OK" && !gQuit)
      fprintf(stderr, "vmm-relayd: worker %d did not take its listener of rule %u (%s); the other processes serve it\n",
              gWorkers[c->worker].pid, c->rule, r.c_str());
  }
  gPendingCopies.clear();
}

// Asks every worker; the first answer that is not "OK" (or "" when all are).
std::string AskAll(const std::string& line) {
  for (auto& w : gWorkers) {
    std::string r = Ask(w, line, -1);
    if (r != "OK") return r;
  }
  return "";
}

// A bound (and for TCP listening) socket for `la` in *out, or the error.
std::string OpenListener(const Addr& la, bool tcp, bool reuseport, int* out) {
  int one = 1;
  // SAFETY: the new fd is returned through *out to the caller, which owns it.
  int fd = socket(la.family(), (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return SysErr("socket", errno);
  if (tcp) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  if (la.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&la.ss), la.len) < 0) {
    int e = errno;
    close(fd);
    return SysErr("bind", e);
  }
  // Accepted sockets inherit TCP_NODELAY: one setsockopt per rule, not per connection.
  if (tcp) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (tcp && listen(fd, kListenBacklog) < 0) {
    int e = errno;
    close(fd);
    return SysErr("listen", e);
  }
  *out = fd;
  return "";
}

uint16_t BoundPort(int fd) {
  sockaddr_storage b{};
  socklen_t bl = sizeof b;
  getsockname(fd, reinterpret_cast<sockaddr*>(&b), &bl);
  return PortOf(b);
}

std::string Add(const Command& cmd, const std::string& line) {
  if (gRules.count(cmd.id)) return SysErr("add", EEXIST);
  ResetSlot(gSlots[cmd.id]);
  gSlots[cmd.id].steer = kNoVerdict;
  Addr la = cmd.listen;
  int fd0 = -1;
  if (!cmd.tcp || gWorkers.empty()) {
    std::string err = OpenListener(la, cmd.tcp, false, &fd0);
    if (!err.empty()) return err;
  } else {
    // SO_REUSEPORT would also let us share a port another SO_REUSEPORT
    // socket of the same user already holds: bind once without it first so
    // a taken port fails with EADDRINUSE like any other bind.
    int probe = -1;
    std::string err = OpenListener(la, true, false, &probe);
    if (!err.empty()) return err;
    SetPort(&la, BoundPort(probe));
    close(probe);
    err = OpenListener(la, true, true, &fd0);
    if (!err.empty()) return err;
    std::vector<int> more;
    for (size_t i = 0; i < gWorkers.size(); i++) {
      int fd = -1;
      err = OpenListener(la, true, true, &fd);
      if (!err.empty()) break;
      more.push_back(fd);
    }
    if (!err.empty()) {
      // SAFETY: none of these reached a worker; all are the master's.
      for (int fd : more) close(fd);
      close(fd0);
      return err;
    }
    // Every socket is bound and listening: the port accepts from here on.
    // Workers get their copies once the controller has its answer
    // (TellWorkers): waking them first would put their wake-ups (on a
    // busy host, their turn on a CPU) before the answer.
    for (size_t i = 0; i < gWorkers.size(); i++) gPendingCopies.push_back({i, cmd.id, line, more[i]});
  }
  uint16_t port = BoundPort(fd0);
  RuleSettings s{cmd.target, cmd.limitMs, cmd.max, cmd.proxy};
  if (cmd.tcp) gEngine->AddTcp(cmd.id, fd0, s);
  else gEngine->AddUdp(cmd.id, fd0, s);
  gRules[cmd.id] = {cmd, port};
  return "OK " + std::to_string(port);
}

std::string FormatRow(uint32_t id, const Row& r) {
  const Command& c = r.cmd;
  return "R " + std::to_string(id) + (c.tcp ? " tcp " : " udp ") + FormatIp(c.listen) + " " + std::to_string(r.port) + " " +
         FormatIp(c.target) + " " + std::to_string(PortOf(c.target.ss)) + " " + std::to_string(c.limitMs) + " " +
         std::to_string(c.max) + " " + FormatFlags(c.proxy) + " " + c.owner;
}

// The answer to one command line (L: the rows, then the answer).
std::string Execute(const std::string& line) {
  Command cmd;
  if (!ParseCommand(line, &cmd)) return kUsage;
  switch (cmd.op) {
    case Op::kAdd:
      return Add(cmd, line);
    case Op::kUpdate: {
      auto it = gRules.find(cmd.id);
      if (it == gRules.end()) return SysErr("update", ENOENT);
      if (cmd.proxy && !it->second.cmd.tcp) return kUsage;
      std::string err = AskAll(line);
      if (!err.empty()) return err;
      gEngine->Update(cmd.id, {cmd.target, cmd.limitMs, cmd.max, cmd.proxy});
      Command& c = it->second.cmd;
      c.target = cmd.target;
      c.limitMs = cmd.limitMs;
      c.max = cmd.max;
      c.proxy = cmd.proxy;
      return "OK";
    }
    case Op::kRemove: {
      std::string err = AskAll(line);
      gEngine->Remove(cmd.id);
      gRules.erase(cmd.id);
      return err.empty() ? "OK" : err;
    }
    case Op::kList: {
      std::string out;
      for (auto& kv : gRules) out += FormatRow(kv.first, kv.second) + "\n";
      return out + "OK " + std::to_string(gRules.size());
    }
    case Op::kFds: {
      long n = CountFds();
      for (auto& w : gWorkers) {
        std::string r = Ask(w, "F", -1);
        if (r.rfind("OK ", 0) != 0) return r;
        n += atol(r.c_str() + 3);
      }
      return "OK " + std::to_string(n);
    }
    case Op::kSettings: {
      // Every process, also after one that could not take the nice value
      // (AskAll stops at the first answer that is not OK).
      std::string err;
      for (auto& w : gWorkers) {
        std::string r = Ask(w, line, -1);
        if (r != "OK" && err.empty()) err = r;
      }
      std::string mine = ApplySettings(cmd);
      return !err.empty() ? err : !mine.empty() ? mine : "OK";
    }
    case Op::kQuit:
      gQuit = true;
      return "OK";
  }
  return kUsage;
}

// Writes all of `s` to the controller (5 s at most); false when it is gone.
bool WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t k = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
    if (k > 0) off += static_cast<size_t>(k);
    else if (k < 0 && errno == EINTR) continue;
    else if (k < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, 5000) != 1) return false;
    } else {
      return false;
    }
  }
  return true;
}

void DropController() {
  if (gCtl < 0) return;
  // SAFETY: the controller's connection is the master's; closed once, here.
  close(gCtl);
  gCtl = -1;
  gIn.clear();
}

// Reads and answers the controller's commands; drops it on EOF or error.
void ReadController() {
  char buf[4096];
  for (;;) {
    ssize_t n = recv(gCtl, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) {
      DropController();
      return;
    }
    gIn.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = gIn.find('\n')) != std::string::npos) {
      std::string line = gIn.substr(0, nl);
      gIn.erase(0, nl + 1);
      bool sent = WriteAll(gCtl, Execute(line) + "\n");
      TellWorkers();
      if (!sent) {
        DropController();
        return;
      }
      if (gQuit) return;
    }
    if (gIn.size() > kLineMax) {  // not our protocol
      WriteAll(gCtl, std::string(kUsage) + "\n");
      DropController();
      return;
    }
  }
}

void Accept(const std::string& hello) {
  // SAFETY: the accepted connection becomes gCtl (closed by DropController)
  // or is closed right here.
  int fd = accept4(gListenFd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) return;
  ucred cr{};
  socklen_t crl = sizeof cr;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crl) < 0 || (cr.uid != 0 && cr.uid != geteuid())) {
    WriteAll(fd, "ERR peer 1\n");
    close(fd);
    return;
  }
  if (gCtl >= 0) {
    // The last controller may have died a moment ago, its hangup not yet
    // seen: finish its commands and look again.
    ReadController();
    pollfd p{gCtl, POLLRDHUP, 0};
    if (gCtl >= 0 && poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR))) DropController();
  }
  if (gCtl >= 0) {
    ucred cur{};
    socklen_t cl = sizeof cur;
    getsockopt(gCtl, SOL_SOCKET, SO_PEERCRED, &cur, &cl);
    WriteAll(fd, "BUSY " + std::to_string(cur.pid) + "\n");
    close(fd);
    return;
  }
  gCtl = fd;
  gHadController = true;
  gEngine->Watch(gCtl, &gCtlTag, EPOLLIN | EPOLLRDHUP);
  if (!WriteAll(gCtl, hello)) DropController();
}

// The control socket is gone or was replaced (the state directory was
// removed): nobody can reach this relay any more, so it must not hold ports.
bool SocketStillOurs() {
  struct stat st;
  return stat(gSockPath.c_str(), &st) == 0 && st.st_ino == gSockIno;
}

// Binds the control socket `path`, mode 0600; -1 with a message on failure.
int BindControl(const std::string& path) {
  sockaddr_un sa{};
  if (path.size() >= sizeof sa.sun_path) {
    fprintf(stderr, "vmm-relayd: control socket path %s is longer than %zu bytes\n", path.c_str(), sizeof sa.sun_path - 1);
    return -1;
  }
  sa.sun_family = AF_UNIX;
  memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  // SAFETY: the listening control socket is the master's for its life.
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    perror("vmm-relayd: socket (control)");
    return -1;
  }
  unlink(path.c_str());  // a stale socket: we hold the directory's lock (main.cc)
  mode_t old = umask(0177);
  int r = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa);
  umask(old);
  if (r < 0 || listen(fd, 8) < 0) {
    fprintf(stderr, "vmm-relayd: bind/listen %s: %s\n", path.c_str(), strerror(errno));
    close(fd);
    return -1;
  }
  struct stat st;
  if (stat(path.c_str(), &st) < 0) {
    perror("vmm-relayd: stat (control socket)");
    close(fd);
    return -1;
  }
  gSockIno = st.st_ino;
  return fd;
}

}  // namespace

int RunMaster(const MasterSetup& setup) {
  Engine e;
  gEngine = &e;
  gSockPath = setup.dir + "/control.sock";
  gListenFd = BindControl(gSockPath);
  if (gListenFd < 0) return 1;
  e.Watch(gListenFd, &gListenTag, EPOLLIN);
  for (auto& w : gWorkers) {
    w.tag = {Kind::kControl, &w};
    e.Watch(w.sock, &w.tag, 0);  // hangup and error only: a worker died
  }
  // SAFETY: the inotify, signal and timer fds are the master's for its life.
  int ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (ino >= 0 && inotify_add_watch(ino, setup.dir.c_str(), IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | IN_MOVE_SELF) >= 0)
    e.Watch(ino, &gNotifyTag, EPOLLIN);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd >= 0) e.Watch(sfd, &gSignalTag, EPOLLIN);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  itimerspec its{};
  its.it_value.tv_sec = kIdleExitSec;
  if (tfd >= 0 && timerfd_settime(tfd, 0, &its, nullptr) == 0) e.Watch(tfd, &gTimerTag, EPOLLIN);

  std::string hello = "HELLO " + std::to_string(kProtocol) + " " + std::to_string(getpid());
  for (size_t i = 0; i < gWorkers.size(); i++) hello += "," + std::to_string(gWorkers[i].pid);
  hello += " " + std::to_string(setup.countersFd) + "\n";

  DropStartupPages();
  e.Run([&](Tag* t, uint32_t events) {
    if (t == &gListenTag) {
      Accept(hello);
    } else if (t == &gCtlTag) {
      if (gCtl >= 0) ReadController();
      if (gCtl >= 0 && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
        ReadController();  // commands sent right before the hangup
        DropController();
      }
    } else if (t == &gNotifyTag) {
      char buf[4096];
      while (read(ino, buf, sizeof buf) > 0) {
      }
      if (!SocketStillOurs()) {
        fprintf(stderr, "vmm-relayd: control socket %s was removed; exiting\n", gSockPath.c_str());
        gQuit = true;
      }
    } else if (t == &gSignalTag) {
      signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) > 0) {
      }
      gQuit = true;
    } else if (t == &gTimerTag) {
      uint64_t n;
      while (read(tfd, &n, sizeof n) > 0) {
      }
      if (gCtl < 0 && gRules.empty()) gQuit = true;  // nobody came to use it
    } else {
      WorkerFailed(*static_cast<Worker*>(t->owner), "exited");
    }
    // Without a controller and without rules there is nothing to run for.
    return !gQuit && !(gHadController && gCtl < 0 && gRules.empty());
  });
  for (auto& w : gWorkers) close(w.sock);  // workers see EOF and exit
  if (SocketStillOurs()) unlink(gSockPath.c_str());
  if (gCtl >= 0) close(gCtl);
  return gStatus;
}

}  // namespace relayd
