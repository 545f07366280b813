// vmm-relayd: the data path of the port forwarder (server/forward), as a
// small process of its own that vmmd spawns and controls over its stdin/stdout.
//
//   vmm-relayd --probe            exit 0 when splice(2) works socket -> pipe -> socket
//   vmm-relayd --workers N [--pack C]
//                                 serve; fd 3 is a shared counter file (see
//                                 Slot); C: connections per process below which
//                                 new connections are packed (default 1024)
//
// Process layout. The first process (the "master") forks N-1 worker processes
// at startup, before it has any socket. Every process runs the same
// single-threaded epoll engine; each has its own fd table (the hard
// RLIMIT_NOFILE applies per process, so N processes hold N times as many
// connections) and its own SO_REUSEPORT listener per TCP rule. Which
// process accepts a new connection is steered by a one-instruction classic
// BPF program on each rule's SO_REUSEPORT group (see Steer): light loads are
// packed into the first process with fewer than --pack connections (on a
// small host, one busy relay process beats two that wake each other's
// cores: lower latency, more connections per second); once every process
// holds that many, the kernel spreads by hash over all of them (more cores,
// and the fd limit of every process). The master binds
// every listener itself (bind errors are reported to vmmd with the syscall
// and errno) and hands one to each worker over a SOCK_SEQPACKET socketpair
// with SCM_RIGHTS. UDP rules live in the master only: a UDP flow hashes to one
// socket anyway, and the session cap stays exact.
//
// Counters live in fd 3, a file vmmd created and mapped here MAP_SHARED: one
// 64-byte Slot per rule, updated with atomics by every process, read by vmmd
// with pread(2) synchronously. The per-rule connection limit is a
// fetch_add on that shared `active` counter, so it is exact across processes.
//
// Control protocol (one line each way, vmmd waits for the answer):
//   A <id> tcp|udp <laddr> <lport> <taddr> <tport> <timeoutMs|idleMs> <maxConns|maxSessions>
//        -> "OK <bound port>" | "ERR <syscall> <errno>"
//   T <id> <taddr> <tport>   retarget; connections/sessions to the old target are reset -> "OK"
//   D <id>                   close listener and every connection/session (RST) -> "OK"
//   F                        fds held by all relay processes (tests) -> "OK <n>"
// On start the master prints "READY <pid> <pid>..." (every relay process).
// EOF on stdin: everything is closed and every process exits; a worker exits
// when its master's socketpair closes (and PR_SET_PDEATHSIG).
//
// Per TCP connection:
//   * small messages go recv() -> send() through a per-process buffer (two
//     syscalls per message and direction); a direction whose read fills the
//     whole buffer switches to splice(2) through a pipe (bulk: no copy through
//     user space). Unsent bytes of a short send() are kept in a heap buffer
//     sized to them, and the source is not read until they are sent.
//   * edge-triggered epoll; a short read means the receive queue was empty
//     (every later arrival is a new edge), except after EPOLLRDHUP, when the
//     direction reads on until EOF.
//   * half-close: EOF on one side -> pending bytes sent -> shutdown(SHUT_WR)
//     on the other; closed when both directions delivered their EOF.
//   * reset: error on one side -> SO_LINGER {1,0} on the other, both closed.
//   * guest refused / connect deadline -> the client gets an RST.
//   * pipes come from a pool (at most 32 per process), held only while bytes
//     are in flight; the pool is emptied when a process has no connection.
#include <arpa/inet.h>
#include <linux/filter.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <poll.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

constexpr size_t kBuf = 64 * 1024;         // recv buffer; a full read switches to splice
constexpr size_t kPipeSize = 256 * 1024;   // F_SETPIPE_SZ wish
constexpr size_t kPoolMax = 32;
constexpr size_t kPumpBudget = 4 << 20;    // bytes per direction per wakeup
constexpr int kAcceptBatch = 64;
constexpr int kListenBacklog = 4096;
constexpr uint32_t kSlots = 4096;          // rules per relay (ids 1..4095)
constexpr int kUdpBatch = 32;
constexpr size_t kUdpMax = 65536;

// One rule's counters in the shared file. vmmd reads them with pread.
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
  std::atomic<uint64_t> steer;  // TCP: verdict installed on the rule's SO_REUSEPORT group (Steer)
  uint64_t pad[1];
};
static_assert(sizeof(Slot) == 64, "Slot is 64 bytes: vmmd reads it at id * 64");

Slot* gSlots = nullptr;
char gBuf[kBuf];

uint64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

struct Addr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family() const { return ss.ss_family; }
};

bool ParseAddr(const std::string& ip, int port, Addr* out) {
  memset(&out->ss, 0, sizeof out->ss);
  auto* a4 = reinterpret_cast<sockaddr_in*>(&out->ss);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&out->ss);
  if (inet_pton(AF_INET, ip.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(port));
    out->len = sizeof *a4;
    return true;
  }
  if (inet_pton(AF_INET6, ip.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    out->len = sizeof *a6;
    return true;
  }
  return false;
}

void SetLingerZero(int fd) {
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

void SetNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

enum class Kind : uint8_t { kControl, kListener, kClient, kGuest, kUdpListener, kUdpSession };

struct Tag {
  Kind kind;
  void* owner;
};

struct Pipe {
  int r = -1;
  int w = -1;
  size_t n = 0;
  bool held() const { return r >= 0; }
};

// Shared by every relay process (mapped before the workers are forked):
// the TCP connections each process holds now, indexed by process (0: the
// master, i: the i-th worker), and a lock that serializes steering changes.
struct Shared {
  std::atomic<uint64_t> conns[64];
  std::atomic<uint32_t> steerLock;
};
Shared* gShared = nullptr;
long gProcs = 1;       // relay processes
long gProcIndex = 0;   // this process
uint64_t gPackBelow = 1024;
constexpr uint32_t kSpread = UINT32_MAX;      // BPF verdict: no socket chosen -> hash
constexpr uint64_t kNoVerdict = UINT64_MAX;  // Slot::steer before the first install

// The process new connections should go to: the first one holding fewer than
// gPackBelow connections, else none (the kernel spreads by hash).
uint32_t SteerTarget() {
  for (long i = 0; i < gProcs; i++)
    if (gShared->conns[i].load() < gPackBelow) return static_cast<uint32_t>(i);
  return kSpread;
}

// One direction of a connection.
struct Dir {
  Pipe pipe;            // splice mode: bytes in flight
  char* pend = nullptr; // copy mode: bytes a short send() left over
  uint32_t off = 0, len = 0;
  bool splice = false;  // switched after a read filled kBuf
  bool eof = false;     // EOF read from the source
  bool shut = false;    // FIN sent to the destination
  bool rdhup = false;   // the source reported EPOLLRDHUP/EPOLLHUP: read on until EOF
  bool blocked = false; // waiting for EPOLLOUT on the destination
};

struct Listener;

struct Conn {
  Listener* l = nullptr;
  int cfd = -1;
  int gfd = -1;
  Tag ctag{Kind::kClient, nullptr};
  Tag gtag{Kind::kGuest, nullptr};
  Dir up, down;  // client -> guest, guest -> client
  bool connecting = true;
  bool upReady = false;  // the client reported data while we were connecting
  bool dead = false;
  bool queued = false;
  bool hasTimer = false;
  std::multimap<uint64_t, Conn*>::iterator timer;
  Conn* prev = nullptr;
  Conn* next = nullptr;
};

struct Listener {
  uint32_t id = 0;
  int fd = -1;
  Tag tag{Kind::kListener, nullptr};
  Addr target;
  int connectTimeoutMs = 5000;
  uint64_t maxConnections = 4096;
  Conn* head = nullptr;
  uint64_t pausedUntil = 0;
  bool dead = false;
};

struct UdpRule;

struct Session {
  UdpRule* r = nullptr;
  int fd = -1;
  Addr client;
  std::string key;
  uint64_t last = 0;
  Tag tag{Kind::kUdpSession, nullptr};
};

struct UdpRule {
  uint32_t id = 0;
  int fd = -1;
  Tag tag{Kind::kUdpListener, nullptr};
  Addr target;
  int idleMs = 60000;
  size_t maxSessions = 1024;
  uint64_t nextSweep = 0;
  std::unordered_map<std::string, Session*> sessions;
};

std::string KeyOf(const sockaddr_storage& ss, socklen_t len) {
  return std::string(reinterpret_cast<const char*>(&ss), len);
}

class Engine {
 public:
  explicit Engine(int ctlfd) : ctlfd_(ctlfd) {
    // SAFETY: epfd_ is owned by the engine for the life of the process.
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) {
      perror("vmm-relayd: epoll_create1");
      exit(1);
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &ctltag_;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, ctlfd_, &ev);
  }

  // Runs until the control channel closes. `onControl` handles one readable
  // control event and returns false to stop.
  template <typename F>
  void Run(F onControl) {
    std::vector<epoll_event> evs(512);
    for (;;) {
      int n = epoll_wait(epfd_, evs.data(), static_cast<int>(evs.size()), ComputeTimeout());
      if (n < 0 && errno != EINTR) break;
      bool stop = false;
      for (int i = 0; i < n; i++) {
        Tag* t = static_cast<Tag*>(evs[i].data.ptr);
        if (t->kind == Kind::kControl) {
          if (!onControl()) stop = true;
        } else {
          Dispatch(t, evs[i].events);
        }
      }
      RunReady();
      Expire();
      ResumeListeners();
      SweepUdp();
      Reap();
      if (stop) break;
    }
    for (auto& kv : listeners_) CloseListener(kv.second);
    listeners_.clear();
    for (auto& kv : udp_) CloseUdp(kv.second);
    udp_.clear();
    Reap();
  }

  // ---- control operations (same process) --------------------------------

  // Takes ownership of fd (a listening socket).
  void AddTcp(uint32_t id, int fd, const Addr& target, int timeoutMs, uint64_t maxConns) {
    auto* l = new Listener();
    l->id = id;
    l->fd = fd;
    l->tag.owner = l;
    l->target = target;
    l->connectTimeoutMs = timeoutMs;
    l->maxConnections = maxConns;
    epoll_event ev{};
    ev.events = EPOLLIN;  // level-triggered: bounded accept batches
    ev.data.ptr = &l->tag;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    listeners_[id] = l;
    if (gProcIndex == 0) Steer(l);  // every process's listener has joined the group
  }

  // Installs "choose socket k" on the rule's SO_REUSEPORT group when the
  // target changed. Socket k of the group is process k's listener: the master
  // created them in that order (fd0, then one per worker), and a group
  // numbers its sockets in the order they started listening. The program is
  // the group's, so any member may replace it. Installs happen under a lock
  // shared by all processes, each after the counts it was computed from, and
  // every threshold crossing re-steers (Accept after a batch, Close when a
  // process drops below it), so the last install follows the last counts.
  // A failed install leaves the kernel's hash spreading.
  void Steer(Listener* l) {
    if (gProcs < 2 || l->dead) return;
    Slot& s = gSlots[l->id];
    if (SteerTarget() == s.steer.load()) return;
    while (gShared->steerLock.exchange(1, std::memory_order_acquire)) {
    }
    uint32_t t = SteerTarget();
    if (t != s.steer.load()) {
      sock_filter code[] = {{BPF_RET | BPF_K, 0, 0, t}};
      sock_fprog prog{1, code};
      s.steer = setsockopt(l->fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) == 0 ? t : kNoVerdict;
    }
    gShared->steerLock.store(0, std::memory_order_release);
  }

  // Takes ownership of fd (a bound UDP socket).
  void AddUdp(uint32_t id, int fd, const Addr& target, int idleMs, size_t maxSessions) {
    auto* u = new UdpRule();
    u->id = id;
    u->fd = fd;
    u->tag.owner = u;
    u->target = target;
    u->idleMs = idleMs;
    u->maxSessions = maxSessions;
    u->nextSweep = NowMs() + SweepEvery(u);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &u->tag;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    udp_[id] = u;
  }

  void Retarget(uint32_t id, const Addr& target) {
    auto it = listeners_.find(id);
    if (it != listeners_.end()) {
      it->second->target = target;
      while (it->second->head) Abort(it->second->head, -1);
    }
    auto ut = udp_.find(id);
    if (ut != udp_.end()) {
      ut->second->target = target;
      while (!ut->second->sessions.empty()) EndSession(ut->second->sessions.begin()->second);
    }
    Reap();
  }

  void Remove(uint32_t id) {
    auto it = listeners_.find(id);
    if (it != listeners_.end()) {
      CloseListener(it->second);
      listeners_.erase(it);
    }
    auto ut = udp_.find(id);
    if (ut != udp_.end()) {
      CloseUdp(ut->second);
      udp_.erase(ut);
    }
    Reap();
  }

 private:
  static int SweepEvery(const UdpRule* u) { return std::max(10, std::min(1000, u->idleMs / 4)); }

  int ComputeTimeout() {
    if (!ready_.empty()) return 0;
    uint64_t next = UINT64_MAX;
    if (!timers_.empty()) next = timers_.begin()->first;
    for (auto& kv : listeners_)
      if (kv.second->pausedUntil && kv.second->pausedUntil < next) next = kv.second->pausedUntil;
    for (auto& kv : udp_)
      if (!kv.second->sessions.empty() && kv.second->nextSweep < next) next = kv.second->nextSweep;
    if (next == UINT64_MAX) return -1;
    uint64_t now = NowMs();
    return next <= now ? 0 : static_cast<int>(std::min<uint64_t>(next - now, 60000));
  }

  void Dispatch(Tag* t, uint32_t events) {
    switch (t->kind) {
      case Kind::kControl:
        break;
      case Kind::kListener: {
        auto* l = static_cast<Listener*>(t->owner);
        if (!l->dead) Accept(l);
        break;
      }
      case Kind::kClient:
      case Kind::kGuest: {
        auto* c = static_cast<Conn*>(t->owner);
        if (c->dead) break;
        bool client = t->kind == Kind::kClient;
        if (c->connecting) {
          if (!client) FinishConnect(c, events);
          else if (events & EPOLLERR) Abort(c, c->cfd);  // client reset while we connect
          else {
            if (events & (EPOLLRDHUP | EPOLLHUP)) c->up.rdhup = true;
            if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) c->upReady = true;
          }
          break;
        }
        if (events & EPOLLERR) {
          Abort(c, client ? c->cfd : c->gfd);
          break;
        }
        // The side that reported is the source of one direction and the
        // destination of the other.
        Dir& src = client ? c->up : c->down;
        Dir& dst = client ? c->down : c->up;
        if (events & (EPOLLRDHUP | EPOLLHUP)) src.rdhup = true;
        if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) Pump(c, client);
        if (!c->dead && dst.blocked && (events & (EPOLLOUT | EPOLLHUP))) Pump(c, !client);
        break;
      }
      case Kind::kUdpListener:
        UdpFromClients(static_cast<UdpRule*>(t->owner));
        break;
      case Kind::kUdpSession:
        UdpFromGuest(static_cast<Session*>(t->owner));
        break;
    }
  }

  // ---- TCP ------------------------------------------------------------------

  void CloseListener(Listener* l) {
    if (l->dead) return;
    l->dead = true;
    while (l->head) Abort(l->head, -1);
    // SAFETY: the listener fd was handed to this engine (AddTcp); the engine
    // is its only owner and closes it exactly once, here.
    close(l->fd);
    l->fd = -1;
    deadListeners_.push_back(l);
  }

  void Accept(Listener* l) {
    AcceptBatch(l);
    if (!l->dead) Steer(l);
  }

  void AcceptBatch(Listener* l) {
    Slot& s = gSlots[l->id];
    for (int i = 0; i < kAcceptBatch; i++) {
      // SAFETY: accept4 gives the engine a new fd, owned by the Conn created
      // in StartConnect (or closed right here when refused).
      int cfd = accept4(l->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (cfd < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        if (errno == ECONNABORTED || errno == EPROTO || errno == EPERM) continue;
        // EMFILE, ENFILE, ENOBUFS, ENOMEM: pause instead of spinning.
        s.errors.fetch_add(1, std::memory_order_relaxed);
        l->pausedUntil = NowMs() + 100;
        epoll_event ev{};
        ev.events = 0;
        ev.data.ptr = &l->tag;
        epoll_ctl(epfd_, EPOLL_CTL_MOD, l->fd, &ev);
        return;
      }
      // The limit is shared by every relay process: reserve a place first.
      if (s.active.fetch_add(1) >= l->maxConnections) {
        s.active.fetch_sub(1);
        s.errors.fetch_add(1, std::memory_order_relaxed);
        SetLingerZero(cfd);
        close(cfd);
        continue;
      }
      StartConnect(l, cfd);
    }
  }

  void ResumeListeners() {
    uint64_t now = 0;
    for (auto& kv : listeners_) {
      Listener* l = kv.second;
      if (!l->pausedUntil) continue;
      if (!now) now = NowMs();
      if (l->pausedUntil > now) continue;
      l->pausedUntil = 0;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.ptr = &l->tag;
      epoll_ctl(epfd_, EPOLL_CTL_MOD, l->fd, &ev);
    }
  }

  // `active` was already incremented for this connection.
  void StartConnect(Listener* l, int cfd) {
    Slot& s = gSlots[l->id];
    // SAFETY: gfd is created here and owned by the Conn; Close closes it.
    int gfd = socket(l->target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (gfd < 0) {
      s.active.fetch_sub(1);
      s.errors.fetch_add(1, std::memory_order_relaxed);
      SetLingerZero(cfd);
      close(cfd);
      return;
    }
    SetNoDelay(gfd);  // cfd inherited TCP_NODELAY from the listener
    auto* c = new Conn();
    c->l = l;
    c->cfd = cfd;
    c->gfd = gfd;
    c->ctag.owner = c;
    c->gtag.owner = c;
    c->next = l->head;
    if (l->head) l->head->prev = c;
    l->head = c;
    s.total.fetch_add(1, std::memory_order_relaxed);
    liveConns_++;
    gShared->conns[gProcIndex].fetch_add(1);

    // gfd joins the epoll set only after connect(): an unconnected socket
    // polls as EPOLLOUT|EPOLLHUP, and then the first event on it would be
    // ambiguous. After connect() its first event means done or failed.
    int r = connect(gfd, reinterpret_cast<const sockaddr*>(&l->target.ss), l->target.len);
    if (r < 0 && errno != EINPROGRESS) {
      RefuseClient(c);
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = &c->ctag;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, cfd, &ev);
    ev.data.ptr = &c->gtag;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, gfd, &ev);
    if (r == 0) {
      c->upReady = true;  // not polled yet: read whatever is there
      Connected(c, true);
      return;
    }
    c->timer = timers_.emplace(NowMs() + static_cast<uint64_t>(l->connectTimeoutMs), c);
    c->hasTimer = true;
  }

  void FinishConnect(Conn* c, uint32_t events) {
    // Writable without error or hangup: the handshake is done (no syscall).
    if ((events & EPOLLOUT) && !(events & (EPOLLERR | EPOLLHUP))) {
      Connected(c, (events & (EPOLLIN | EPOLLRDHUP)) != 0);
      return;
    }
    if (!(events & (EPOLLERR | EPOLLHUP))) return;  // e.g. EPOLLIN alone: wait
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->gfd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    RefuseClient(c);
  }

  // `guestReadable`: the connect-completion event also reported EPOLLIN.
  void Connected(Conn* c, bool guestReadable) {
    DropTimer(c);
    c->connecting = false;
    // Bytes (or a FIN: up.rdhup) the client sent while we were connecting
    // are waiting; their edge was consumed, so read them now. Without such
    // an edge there is nothing to read yet: no recv() bound to fail with
    // EAGAIN (one syscall less per connection), and the next arrival is a
    // new edge. The same holds for a guest that has not spoken yet.
    if (c->upReady) Pump(c, true);
    if (!c->dead && guestReadable) Pump(c, false);
  }

  // The guest refused or did not answer in time: the client sees a reset, as
  // it would had it connected to a closed port itself. Counted as an error
  // after the connection left `active`, so a reader that sees the error also
  // sees the connection gone.
  void RefuseClient(Conn* c) {
    SetLingerZero(c->cfd);
    Close(c, true);
  }

  void Expire() {
    if (timers_.empty()) return;
    uint64_t now = NowMs();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      RefuseClient(timers_.begin()->second);
    }
  }

  void DropTimer(Conn* c) {
    if (c->hasTimer) {
      timers_.erase(c->timer);
      c->hasTimer = false;
    }
  }

  bool AcquirePipe(Pipe* p) {
    if (!pool_.empty()) {
      *p = pool_.back();
      pool_.pop_back();
      return true;
    }
    int fds[2];
    // SAFETY: the pipe's fds belong to the pool or to exactly one connection
    // direction at a time; ReleasePipe closes or returns them.
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) return false;
    fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(kPipeSize));
    p->r = fds[0];
    p->w = fds[1];
    p->n = 0;
    return true;
  }

  void ReleasePipe(Pipe* p) {
    if (!p->held()) return;
    if (p->n == 0 && pool_.size() < kPoolMax) {
      pool_.push_back(*p);
    } else {
      close(p->r);
      close(p->w);
    }
    *p = Pipe();
  }

  static void FreePending(Dir* d) {
    free(d->pend);
    d->pend = nullptr;
    d->off = d->len = 0;
  }

  // Moves bytes in one direction: up (client -> guest) or down (guest -> client).
  void Pump(Conn* c, bool upward) {
    Dir& d = upward ? c->up : c->down;
    int src = upward ? c->cfd : c->gfd;
    int dst = upward ? c->gfd : c->cfd;
    Slot& s = gSlots[c->l->id];
    std::atomic<uint64_t>& counter = upward ? s.toGuest : s.fromGuest;
    d.blocked = false;
    size_t budget = kPumpBudget;
    for (;;) {
      // 1. Deliver what is in flight.
      if (d.pipe.n > 0) {
        ssize_t k = splice(d.pipe.r, nullptr, dst, nullptr, d.pipe.n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (k > 0) {
          d.pipe.n -= static_cast<size_t>(k);
          counter.fetch_add(static_cast<uint64_t>(k), std::memory_order_relaxed);
          continue;
        }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && errno == EAGAIN) {
          d.blocked = true;
          return;
        }
        Abort(c, dst);
        return;
      }
      if (d.len > 0) {
        ssize_t k = send(dst, d.pend + d.off, d.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
          d.off += static_cast<uint32_t>(k);
          d.len -= static_cast<uint32_t>(k);
          counter.fetch_add(static_cast<uint64_t>(k), std::memory_order_relaxed);
          if (d.len == 0) FreePending(&d);
          continue;
        }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && errno == EAGAIN) {
          d.blocked = true;
          return;
        }
        Abort(c, dst);
        return;
      }
      // 2. Nothing in flight: finish or read more.
      if (d.shut) {
        ReleasePipe(&d.pipe);
        return;
      }
      if (d.eof) {
        ReleasePipe(&d.pipe);
        d.shut = true;
        // The last direction to finish: close() sends the FIN itself (both
        // receive queues are drained, so it is a FIN, not an RST).
        if (c->up.shut && c->down.shut) {
          Close(c);
          return;
        }
        shutdown(dst, SHUT_WR);
        return;
      }
      if (budget == 0) {
        if (!c->queued) {
          c->queued = true;
          ready_.push_back(c);
        }
        return;
      }
      if (d.splice) {
        if (!d.pipe.held() && !AcquirePipe(&d.pipe)) {
          s.errors.fetch_add(1, std::memory_order_relaxed);
          Abort(c, -1);
          return;
        }
        ssize_t k = splice(src, nullptr, d.pipe.w, nullptr, std::min(budget, kPipeSize),
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (k > 0) {
          d.pipe.n = static_cast<size_t>(k);
          budget = budget > static_cast<size_t>(k) ? budget - static_cast<size_t>(k) : 0;
          continue;
        }
        if (k == 0) {
          d.eof = true;
          continue;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
          ReleasePipe(&d.pipe);
          return;
        }
        Abort(c, src);
        return;
      }
      ssize_t k = recv(src, gBuf, kBuf, MSG_DONTWAIT);
      if (k == 0) {
        d.eof = true;
        continue;
      }
      if (k < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return;
        Abort(c, src);
        return;
      }
      size_t got = static_cast<size_t>(k);
      budget = budget > got ? budget - got : 0;
      if (got == kBuf) d.splice = true;  // bulk: no more copies through user space
      size_t sent = 0;
      while (sent < got) {
        ssize_t w = send(dst, gBuf + sent, got - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
          sent += static_cast<size_t>(w);
          continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EAGAIN) break;
        Abort(c, dst);
        return;
      }
      if (sent) counter.fetch_add(sent, std::memory_order_relaxed);
      if (sent < got) {
        d.len = static_cast<uint32_t>(got - sent);
        d.off = 0;
        d.pend = static_cast<char*>(malloc(d.len));
        if (!d.pend) {
          s.errors.fetch_add(1, std::memory_order_relaxed);
          Abort(c, -1);
          return;
        }
        memcpy(d.pend, gBuf + sent, d.len);
        d.blocked = true;
        return;
      }
      // A short read emptied the receive queue; the next arrival is a new
      // edge. After RDHUP the FIN is queued behind the data: read on.
      if (got < kBuf && !d.rdhup) return;
    }
  }

  void RunReady() {
    if (ready_.empty()) return;
    std::vector<Conn*> batch;
    batch.swap(ready_);
    for (Conn* c : batch) {
      c->queued = false;
      if (c->dead) continue;
      Pump(c, true);
      if (!c->dead) Pump(c, false);
    }
  }

  // Error on `bad` (or forced when bad == -1): the other side (both when
  // forced) gets an RST.
  void Abort(Conn* c, int bad) {
    if (c->dead) return;
    if (bad != c->cfd) SetLingerZero(c->cfd);
    if (bad != c->gfd) SetLingerZero(c->gfd);
    Close(c, bad != -1);
  }

  // `error`: count one error. The counters change before the sockets close,
  // so a client that saw its RST also sees them; `active` drops before
  // `errors` grows (see Slot).
  void Close(Conn* c, bool error = false) {
    if (c->dead) return;
    c->dead = true;
    Slot& s = gSlots[c->l->id];
    s.active.fetch_sub(1);
    if (error) s.errors.fetch_add(1);
    DropTimer(c);
    if (c->queued) {
      for (auto it = ready_.begin(); it != ready_.end(); ++it)
        if (*it == c) {
          ready_.erase(it);
          break;
        }
      c->queued = false;
    }
    // SAFETY: both sockets are owned by this Conn and closed exactly once,
    // here; close(2) also removes them from the epoll set.
    close(c->cfd);
    close(c->gfd);
    c->cfd = c->gfd = -1;
    ReleasePipe(&c->up.pipe);
    ReleasePipe(&c->down.pipe);
    FreePending(&c->up);
    FreePending(&c->down);
    Listener* l = c->l;
    if (c->prev) c->prev->next = c->next;
    else l->head = c->next;
    if (c->next) c->next->prev = c->prev;
    liveConns_--;
    if (gShared->conns[gProcIndex].fetch_sub(1) == gPackBelow)  // dropped below: take connections again
      for (auto& kv : listeners_) Steer(kv.second);
    deadConns_.push_back(c);
  }

  // ---- UDP ------------------------------------------------------------------

  void CloseUdp(UdpRule* u) {
    while (!u->sessions.empty()) EndSession(u->sessions.begin()->second);
    // SAFETY: the UDP listener fd was handed to this engine (AddUdp) and is
    // closed exactly once, here.
    close(u->fd);
    u->fd = -1;
    deadUdp_.push_back(u);
  }

  void EndSession(Session* se) {
    UdpRule* u = se->r;
    u->sessions.erase(se->key);
    gSlots[u->id].sessions.store(u->sessions.size(), std::memory_order_relaxed);
    // SAFETY: the session socket is owned by the Session; closed once, here.
    close(se->fd);
    se->fd = -1;
    se->r = nullptr;
    deadSessions_.push_back(se);
  }

  Session* OpenSession(UdpRule* u, const sockaddr_storage& from, socklen_t fromLen, const std::string& key) {
    Slot& s = gSlots[u->id];
    if (u->sessions.size() >= u->maxSessions) {
      s.errors.fetch_add(1, std::memory_order_relaxed);
      return nullptr;
    }
    // SAFETY: fd is owned by the new Session (EndSession closes it), or closed
    // here when connect fails.
    int fd = socket(u->target.family(), SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      s.errors.fetch_add(1, std::memory_order_relaxed);
      return nullptr;
    }
    // connect(): the kernel drops datagrams from any other source.
    if (connect(fd, reinterpret_cast<const sockaddr*>(&u->target.ss), u->target.len) < 0) {
      close(fd);
      s.errors.fetch_add(1, std::memory_order_relaxed);
      return nullptr;
    }
    auto* se = new Session();
    se->r = u;
    se->fd = fd;
    se->tag.owner = se;
    memcpy(&se->client.ss, &from, fromLen);
    se->client.len = fromLen;
    se->key = key;
    se->last = NowMs();
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &se->tag;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
    u->sessions.emplace(key, se);
    s.total.fetch_add(1, std::memory_order_relaxed);
    s.sessions.store(u->sessions.size(), std::memory_order_relaxed);
    return se;
  }

  void EnsureUdpBufs() {
    if (!udpBufs_.empty()) return;
    udpBufs_.resize(kUdpBatch);
    for (auto& b : udpBufs_) b.resize(kUdpMax);
  }

  void UdpFromClients(UdpRule* u) {
    if (u->fd < 0) return;
    EnsureUdpBufs();
    Slot& s = gSlots[u->id];
    mmsghdr msgs[kUdpBatch];
    iovec iov[kUdpBatch];
    sockaddr_storage from[kUdpBatch];
    for (int i = 0; i < kUdpBatch; i++) {
      iov[i] = {udpBufs_[i].data(), kUdpMax};
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      msgs[i].msg_hdr.msg_name = &from[i];
      msgs[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    int n = recvmmsg(u->fd, msgs, kUdpBatch, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    uint64_t now = NowMs();
    Session* of[kUdpBatch];
    for (int i = 0; i < n; i++) {
      socklen_t fl = msgs[i].msg_hdr.msg_namelen;
      std::string key = KeyOf(from[i], fl);
      auto it = u->sessions.find(key);
      Session* se = it != u->sessions.end() ? it->second : OpenSession(u, from[i], fl, key);
      of[i] = se;
      if (!se) continue;
      se->last = now;
      iov[i].iov_len = msgs[i].msg_len;
      msgs[i].msg_hdr.msg_name = nullptr;  // the session socket is connected
      msgs[i].msg_hdr.msg_namelen = 0;
    }
    // Consecutive datagrams of one session leave in one sendmmsg.
    for (int i = 0; i < n;) {
      int j = i + 1;
      while (j < n && of[j] == of[i]) j++;
      if (of[i]) {
        int done = i;
        while (done < j) {
          int k = sendmmsg(of[i]->fd, msgs + done, static_cast<unsigned>(j - done), MSG_DONTWAIT);
          if (k <= 0) {
            s.errors.fetch_add(static_cast<uint64_t>(j - done), std::memory_order_relaxed);
            break;
          }
          for (int m = done; m < done + k; m++) s.toGuest.fetch_add(msgs[m].msg_len, std::memory_order_relaxed);
          done += k;
        }
      }
      i = j;
    }
  }

  void UdpFromGuest(Session* se) {
    if (!se->r || se->fd < 0) return;
    EnsureUdpBufs();
    UdpRule* u = se->r;
    Slot& s = gSlots[u->id];
    mmsghdr msgs[kUdpBatch];
    iovec iov[kUdpBatch];
    for (int i = 0; i < kUdpBatch; i++) {
      iov[i] = {udpBufs_[i].data(), kUdpMax};
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
    }
    int n = recvmmsg(se->fd, msgs, kUdpBatch, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) s.errors.fetch_add(1, std::memory_order_relaxed);  // ICMP refused
      return;
    }
    if (n == 0) return;
    se->last = NowMs();
    uint64_t bytes = 0;
    for (int i = 0; i < n; i++) {
      iov[i].iov_len = msgs[i].msg_len;
      msgs[i].msg_hdr.msg_name = &se->client.ss;
      msgs[i].msg_hdr.msg_namelen = se->client.len;
      bytes += msgs[i].msg_len;
    }
    s.fromGuest.fetch_add(bytes, std::memory_order_relaxed);
    int done = 0;
    while (done < n) {
      int k = sendmmsg(u->fd, msgs + done, static_cast<unsigned>(n - done), MSG_DONTWAIT);
      if (k <= 0) {
        s.errors.fetch_add(static_cast<uint64_t>(n - done), std::memory_order_relaxed);
        break;
      }
      done += k;
    }
  }

  void SweepUdp() {
    if (udp_.empty()) return;
    uint64_t now = NowMs();
    for (auto& kv : udp_) {
      UdpRule* u = kv.second;
      if (u->nextSweep > now) continue;
      u->nextSweep = now + SweepEvery(u);
      std::vector<Session*> idle;
      for (auto& skv : u->sessions)
        if (skv.second->last + static_cast<uint64_t>(u->idleMs) <= now) idle.push_back(skv.second);
      for (Session* se : idle) EndSession(se);
    }
  }

  void Reap() {
    for (Conn* c : deadConns_) delete c;
    deadConns_.clear();
    for (Listener* l : deadListeners_) delete l;
    deadListeners_.clear();
    for (Session* se : deadSessions_) delete se;
    deadSessions_.clear();
    for (UdpRule* u : deadUdp_) delete u;
    deadUdp_.clear();
    if (liveConns_ == 0 && !pool_.empty()) {
      for (Pipe& p : pool_) {
        close(p.r);
        close(p.w);
      }
      pool_.clear();
    }
    if (liveConns_ == 0 && udp_.empty() && !udpBufs_.empty()) {
      udpBufs_.clear();
      udpBufs_.shrink_to_fit();
    }
  }

  int epfd_ = -1;
  int ctlfd_ = -1;
  Tag ctltag_{Kind::kControl, nullptr};
  std::unordered_map<uint32_t, Listener*> listeners_;
  std::unordered_map<uint32_t, UdpRule*> udp_;
  std::multimap<uint64_t, Conn*> timers_;
  std::vector<Conn*> ready_;
  std::vector<Conn*> deadConns_;
  std::vector<Listener*> deadListeners_;
  std::vector<Session*> deadSessions_;
  std::vector<UdpRule*> deadUdp_;
  std::vector<Pipe> pool_;
  std::vector<std::vector<char>> udpBufs_;
  size_t liveConns_ = 0;
};

int CountFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (!d) return -1;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1;  // the directory's own fd
}

std::vector<std::string> Split(const std::string& line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') i++;
    size_t j = i;
    while (j < line.size() && line[j] != ' ') j++;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

bool ParseU(const std::string& s, uint64_t max, uint64_t* out) {
  if (s.empty() || s.size() > 10) return false;
  uint64_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + static_cast<uint64_t>(ch - '0');
  }
  if (v > max) return false;
  *out = v;
  return true;
}

// ---- worker side: commands from the master over a SOCK_SEQPACKET pair ------

Engine* gEngine = nullptr;

bool WorkerControl(int sock) {
  char buf[512];
  char cbuf[CMSG_SPACE(sizeof(int))];
  iovec iov{buf, sizeof buf - 1};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cbuf;
  mh.msg_controllen = sizeof cbuf;
  ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
  if (n <= 0) return false;  // master gone
  buf[n] = 0;
  int fd = -1;
  for (cmsghdr* cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(cm), sizeof fd);
  std::vector<std::string> a = Split(buf);
  std::string reply = "OK";
  uint64_t id = 0, port = 0, t = 0, m = 0;
  if (!a.empty() && a[0] == "A" && a.size() == 6 && fd >= 0 && ParseU(a[1], kSlots - 1, &id) &&
      ParseU(a[3], 65535, &port) && ParseU(a[4], 1u << 31, &t) && ParseU(a[5], 1u << 31, &m)) {
    Addr target;
    ParseAddr(a[2], static_cast<int>(port), &target);
    // SAFETY: fd arrived with SCM_RIGHTS; this process's copy now belongs to
    // the engine, which closes it when the rule is removed.
    gEngine->AddTcp(static_cast<uint32_t>(id), fd, target, static_cast<int>(t), m);
    fd = -1;
  } else if (!a.empty() && a[0] == "T" && a.size() == 4 && ParseU(a[1], kSlots - 1, &id) && ParseU(a[3], 65535, &port)) {
    Addr target;
    ParseAddr(a[2], static_cast<int>(port), &target);
    gEngine->Retarget(static_cast<uint32_t>(id), target);
  } else if (!a.empty() && a[0] == "D" && a.size() == 2 && ParseU(a[1], kSlots - 1, &id)) {
    gEngine->Remove(static_cast<uint32_t>(id));
  } else if (!a.empty() && a[0] == "F") {
    reply = "OK " + std::to_string(CountFds());
  } else {
    reply = "ERR usage 22";
  }
  if (fd >= 0) close(fd);
  if (send(sock, reply.data(), reply.size(), MSG_NOSIGNAL) < 0) return false;
  return true;
}

// ---- master side ---------------------------------------------------------------

struct Worker {
  pid_t pid;
  int sock;
};
std::vector<Worker> gWorkers;
std::string gIn;  // unparsed bytes from stdin

// Sends one command (with an fd when fd >= 0) to a worker and waits for its
// answer (10 s at most: a worker only ever blocks in epoll_wait).
std::string Ask(const Worker& w, const std::string& cmd, int fd) {
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
  if (sendmsg(w.sock, &mh, MSG_NOSIGNAL) < 0) return "ERR sendmsg " + std::to_string(errno);
  pollfd p{w.sock, POLLIN, 0};
  if (poll(&p, 1, 10000) != 1) return "ERR poll 110";
  char buf[256];
  ssize_t n = recv(w.sock, buf, sizeof buf - 1, 0);
  if (n <= 0) return "ERR recv " + std::to_string(n < 0 ? errno : EPIPE);
  buf[n] = 0;
  return buf;
}

std::string SysErr(const char* syscall, int e) { return std::string("ERR ") + syscall + " " + std::to_string(e); }

std::string MasterAdd(const std::vector<std::string>& a) {
  uint64_t id, lport, tport, t, m;
  bool tcp = a[2] == "tcp";
  if ((!tcp && a[2] != "udp") || !ParseU(a[1], kSlots - 1, &id) || id == 0 || !ParseU(a[4], 65535, &lport) ||
      !ParseU(a[6], 65535, &tport) || tport == 0 || !ParseU(a[7], 1u << 31, &t) || t == 0 ||
      !ParseU(a[8], 1u << 31, &m) || m == 0)
    return "ERR usage 22";
  Addr la, ta;
  if (!ParseAddr(a[3], static_cast<int>(lport), &la) || !ParseAddr(a[5], static_cast<int>(tport), &ta))
    return "ERR usage 22";
  Slot& s = gSlots[id];
  s.active = 0;
  s.total = 0;
  s.toGuest = 0;
  s.fromGuest = 0;
  s.sessions = 0;
  s.errors = 0;
  s.steer = kNoVerdict;
  int one = 1;
  auto open = [&](bool reuseport, int* out) -> std::string {
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
  };
  int fd0 = -1;
  if (!tcp || gWorkers.empty()) {
    std::string err = open(false, &fd0);
    if (!err.empty()) return err;
  } else {
    // SO_REUSEPORT would also let us share a port another SO_REUSEPORT
    // socket of the same user already holds: bind once without it first so
    // a taken port fails with EADDRINUSE like any other bind.
    int probe = -1;
    std::string err = open(false, &probe);
    if (!err.empty()) return err;
    sockaddr_storage b{};
    socklen_t bl = sizeof b;
    getsockname(probe, reinterpret_cast<sockaddr*>(&b), &bl);
    uint16_t p = b.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&b)->sin6_port)
                                        : ntohs(reinterpret_cast<sockaddr_in*>(&b)->sin_port);
    if (la.family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&la.ss)->sin6_port = htons(p);
    else reinterpret_cast<sockaddr_in*>(&la.ss)->sin_port = htons(p);
    close(probe);
    err = open(true, &fd0);
    if (!err.empty()) return err;
    std::vector<int> more;
    for (size_t i = 0; i < gWorkers.size(); i++) {
      int fd = -1;
      err = open(true, &fd);
      if (!err.empty()) break;
      more.push_back(fd);
    }
    if (err.empty()) {
      std::string cmd = "A " + a[1] + " " + a[5] + " " + a[6] + " " + a[7] + " " + a[8];
      for (size_t i = 0; i < gWorkers.size(); i++) {
        std::string r = Ask(gWorkers[i], cmd, more[i]);
        if (r != "OK") {
          err = r;
          for (size_t j = 0; j < i; j++) Ask(gWorkers[j], "D " + a[1], -1);
          break;
        }
      }
    }
    // SAFETY: every worker received its own copy via SCM_RIGHTS (or failed);
    // the master's copies of the worker listeners are closed here.
    for (int fd : more) close(fd);
    if (!err.empty()) {
      close(fd0);
      return err;
    }
  }
  sockaddr_storage b{};
  socklen_t bl = sizeof b;
  getsockname(fd0, reinterpret_cast<sockaddr*>(&b), &bl);
  uint16_t p = b.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&b)->sin6_port)
                                      : ntohs(reinterpret_cast<sockaddr_in*>(&b)->sin_port);
  if (tcp) gEngine->AddTcp(static_cast<uint32_t>(id), fd0, ta, static_cast<int>(t), m);
  else gEngine->AddUdp(static_cast<uint32_t>(id), fd0, ta, static_cast<int>(t), static_cast<size_t>(m));
  return "OK " + std::to_string(p);
}

std::string MasterCommand(const std::string& line) {
  std::vector<std::string> a = Split(line);
  if (a.empty()) return "ERR usage 22";
  uint64_t id = 0, port = 0;
  if (a[0] == "A" && a.size() == 9) return MasterAdd(a);
  if (a[0] == "T" && a.size() == 4 && ParseU(a[1], kSlots - 1, &id) && ParseU(a[3], 65535, &port) && port > 0) {
    Addr t;
    if (!ParseAddr(a[2], static_cast<int>(port), &t)) return "ERR usage 22";
    for (auto& w : gWorkers) Ask(w, line, -1);
    gEngine->Retarget(static_cast<uint32_t>(id), t);
    return "OK";
  }
  if (a[0] == "D" && a.size() == 2 && ParseU(a[1], kSlots - 1, &id)) {
    for (auto& w : gWorkers) Ask(w, line, -1);
    gEngine->Remove(static_cast<uint32_t>(id));
    return "OK";
  }
  if (a[0] == "F") {
    long n = CountFds();
    for (auto& w : gWorkers) {
      std::string r = Ask(w, "F", -1);
      if (r.rfind("OK ", 0) == 0) n += atol(r.c_str() + 3);
    }
    return "OK " + std::to_string(n);
  }
  return "ERR usage 22";
}

void WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t k = write(fd, s.data() + off, s.size() - off);
    if (k > 0) off += static_cast<size_t>(k);
    else if (k < 0 && errno == EINTR) continue;
    else if (k < 0 && errno == EAGAIN) {
      pollfd p{fd, POLLOUT, 0};
      poll(&p, 1, 1000);
    } else {
      exit(0);  // vmmd is gone
    }
  }
}

bool MasterControl() {
  char buf[4096];
  ssize_t n = read(0, buf, sizeof buf);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
  if (n <= 0) return false;  // vmmd closed our stdin: shut down
  gIn.append(buf, static_cast<size_t>(n));
  size_t nl;
  while ((nl = gIn.find('\n')) != std::string::npos) {
    std::string line = gIn.substr(0, nl);
    gIn.erase(0, nl + 1);
    WriteAll(1, MasterCommand(line) + "\n");
  }
  if (gIn.size() > 65536) return false;  // not our protocol
  return true;
}

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
  // SAFETY: mapped once, before fork, shared by every relay process for its
  // life; zero-filled, which is the initial state of every field.
  void* shared = mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED) {
    perror("vmm-relayd: mmap (shared process counts)");
    return 1;
  }
  gShared = static_cast<Shared*>(shared);
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
  WriteAll(1, ready + "\n");
  e.Run(MasterControl);
  for (auto& w : gWorkers) close(w.sock);  // workers see EOF and exit
  for (auto& w : gWorkers) waitpid(w.pid, nullptr, 0);
  return 0;
}
