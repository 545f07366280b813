// Splice relay: the TCP data path of the port forwarder (server/forward).
//
// One process-wide epoll thread owns every forwarded connection: it accepts,
// connects to the guest without blocking (with a deadline), and moves bytes
// with splice(2) socket -> pipe -> socket, so no byte and no connection ever
// reaches JavaScript. JavaScript only opens listeners (relayListen binds and
// listens synchronously, so bind errors are thrown to the caller), closes
// them (relayClose returns once the listener and all its connections are
// closed) and reads counters (relayStats, plain atomics, synchronous).
//
// Per connection:
//   * half-close: read EOF on one side -> drain its pipe -> shutdown(SHUT_WR)
//     on the other side; the other direction keeps flowing. The connection is
//     closed once both directions have delivered their EOF.
//   * reset: an error on one side (ECONNRESET, EPIPE, ...) -> SO_LINGER {1, 0}
//     on the other side and close both, so the peer sees an RST too.
//   * guest refused / connect deadline passed -> the client gets an RST.
//   * TCP_NODELAY on both sockets; every fd is O_CLOEXEC | O_NONBLOCK.
//   * pipes come from a small pool and are held by a connection only while
//     bytes are in flight, so an idle connection costs two fds (its sockets)
//     and ~200 bytes of heap. The pool is emptied whenever no connection is
//     active, so an idle relay holds exactly its epoll fd and its eventfd.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "../platform.h"

namespace vmm {
namespace {

constexpr size_t kPipeSize = 256 * 1024;   // F_SETPIPE_SZ wish; the kernel may give less.
constexpr size_t kPoolMax = 32;            // free pipes kept for reuse
constexpr size_t kPumpBudget = 4 << 20;    // bytes per direction per wakeup (fairness)
constexpr int kAcceptBatch = 64;           // accepts per listener wakeup
constexpr int kListenBacklog = 4096;

uint64_t NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

struct Stats {
  std::atomic<uint64_t> active{0};
  std::atomic<uint64_t> total{0};
  std::atomic<uint64_t> toGuest{0};
  std::atomic<uint64_t> fromGuest{0};
  std::atomic<uint64_t> errors{0};
};

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

enum class Kind : uint8_t { kWake, kListener, kClient, kGuest };

struct Tag {
  Kind kind;
  void* owner;
};

struct Pipe {
  int r = -1;
  int w = -1;
  size_t n = 0;  // bytes buffered in the pipe
  bool held() const { return r >= 0; }
};

struct Listener;

struct Conn {
  Listener* l = nullptr;
  int cfd = -1;  // client side (accepted)
  int gfd = -1;  // guest side (connected by us)
  Tag ctag{Kind::kClient, nullptr};
  Tag gtag{Kind::kGuest, nullptr};
  Pipe up;    // client -> guest
  Pipe down;  // guest -> client
  bool connecting = true;
  bool dead = false;
  bool queued = false;  // in Engine::ready_
  bool cEof = false, gEof = false;    // EOF read from client / guest
  bool gShut = false, cShut = false;  // we sent FIN to guest / client
  bool upBlocked = false, downBlocked = false;  // waiting for EPOLLOUT on the destination
  std::multimap<uint64_t, Conn*>::iterator timer;
  bool hasTimer = false;
  Conn* prev = nullptr;
  Conn* next = nullptr;
};

struct Listener {
  uint32_t id = 0;
  int fd = -1;
  Tag tag{Kind::kListener, nullptr};
  Addr target;
  int connectTimeoutMs = 10000;
  uint32_t maxConnections = 4096;
  std::shared_ptr<Stats> stats;
  Conn* head = nullptr;  // intrusive list of live connections
  uint64_t pausedUntil = 0;  // accept paused (EMFILE) until this time
  bool dead = false;
};

struct Command {
  enum Op { kAdd, kRemove, kRetarget, kStop } op;
  Listener* add = nullptr;  // kAdd: ownership moves to the engine thread
  uint32_t id = 0;
  Addr target;
  std::promise<void> done;
};

void SetLingerZero(int fd) {
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

void SetNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

class Engine {
 public:
  // Starts the thread. Throws std::runtime_error naming the syscall.
  Engine() {
    // SAFETY: epfd_ and wakefd_ are owned by the engine; closed in the
    // destructor after the thread has been joined.
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) throw std::runtime_error(std::string("epoll_create1: ") + strerror(errno));
    wakefd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wakefd_ < 0) {
      int e = errno;
      close(epfd_);
      throw std::runtime_error(std::string("eventfd: ") + strerror(e));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &waketag_;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev);
    thread_ = std::thread([this] { Run(); });
  }

  ~Engine() {
    Command c;
    c.op = Command::kStop;
    auto f = c.done.get_future();
    Post(std::move(c));
    f.wait();
    thread_.join();
    close(wakefd_);
    close(epfd_);
  }

  // Called from the JS thread. The listener's fd is already listening.
  void Add(Listener* l) {
    {
      std::lock_guard<std::mutex> g(statsMu_);
      stats_[l->id] = l->stats;
    }
    Command c;
    c.op = Command::kAdd;
    c.add = l;
    Post(std::move(c));
  }

  // Blocks until the listener and all of its connections are closed.
  bool Remove(uint32_t id) {
    Command c;
    c.op = Command::kRemove;
    c.id = id;
    auto f = c.done.get_future();
    Post(std::move(c));
    bool ok = f.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
    std::lock_guard<std::mutex> g(statsMu_);
    stats_.erase(id);
    return ok;
  }

  bool Retarget(uint32_t id, const Addr& target) {
    Command c;
    c.op = Command::kRetarget;
    c.id = id;
    c.target = target;
    auto f = c.done.get_future();
    Post(std::move(c));
    return f.wait_for(std::chrono::seconds(10)) == std::future_status::ready;
  }

  std::shared_ptr<Stats> StatsOf(uint32_t id) {
    std::lock_guard<std::mutex> g(statsMu_);
    auto it = stats_.find(id);
    return it == stats_.end() ? nullptr : it->second;
  }

  uint32_t NextId() { return nextId_.fetch_add(1) + 1; }

 private:
  void Post(Command&& c) {
    {
      std::lock_guard<std::mutex> g(cmdMu_);
      cmds_.push_back(std::move(c));
    }
    uint64_t one = 1;
    ssize_t r = write(wakefd_, &one, sizeof one);
    (void)r;  // EAGAIN only if the counter is saturated: already awake.
  }

  void Run() {
    std::vector<epoll_event> evs(256);
    while (!stop_) {
      int timeout = ComputeTimeout();
      int n = epoll_wait(epfd_, evs.data(), static_cast<int>(evs.size()), timeout);
      if (n < 0 && errno != EINTR) break;  // EBADF/EINVAL: cannot continue
      for (int i = 0; i < n; i++) Dispatch(evs[i]);
      RunReady();
      Expire();
      ResumeListeners();
      Reap();
    }
    // Stop: close every listener and connection.
    for (auto& kv : listeners_) CloseListener(kv.second);
    listeners_.clear();
    Reap();
    for (Pipe& p : pool_) {
      close(p.r);
      close(p.w);
    }
    pool_.clear();
    if (stopDone_) stopDone_->set_value();
  }

  int ComputeTimeout() {
    if (!ready_.empty()) return 0;
    uint64_t next = UINT64_MAX;
    if (!timers_.empty()) next = timers_.begin()->first;
    for (auto& kv : listeners_)
      if (kv.second->pausedUntil && kv.second->pausedUntil < next) next = kv.second->pausedUntil;
    if (next == UINT64_MAX) return -1;
    uint64_t now = NowMs();
    return next <= now ? 0 : static_cast<int>(std::min<uint64_t>(next - now, 60000));
  }

  void Dispatch(const epoll_event& ev) {
    Tag* t = static_cast<Tag*>(ev.data.ptr);
    switch (t->kind) {
      case Kind::kWake:
        DrainCommands();
        break;
      case Kind::kListener: {
        auto* l = static_cast<Listener*>(t->owner);
        if (!l->dead) Accept(l);
        break;
      }
      case Kind::kClient: {
        auto* c = static_cast<Conn*>(t->owner);
        if (c->dead) break;
        if (c->connecting) {
          // Client vanished (RST) while we were still connecting: give up now.
          if (ev.events & EPOLLERR) Abort(c, c->cfd);
          break;
        }
        if (ev.events & EPOLLERR) {
          Abort(c, c->cfd);
          break;
        }
        // EPOLLOUT is reported with every edge; only a blocked direction cares.
        if (ev.events & (EPOLLIN | EPOLLHUP)) Pump(c, true);
        if (!c->dead && c->downBlocked && (ev.events & (EPOLLOUT | EPOLLHUP))) Pump(c, false);
        break;
      }
      case Kind::kGuest: {
        auto* c = static_cast<Conn*>(t->owner);
        if (c->dead) break;
        if (c->connecting) {
          FinishConnect(c);
          break;
        }
        if (ev.events & EPOLLERR) {
          Abort(c, c->gfd);
          break;
        }
        if (ev.events & (EPOLLIN | EPOLLHUP)) Pump(c, false);
        if (!c->dead && c->upBlocked && (ev.events & (EPOLLOUT | EPOLLHUP))) Pump(c, true);
        break;
      }
    }
  }

  void DrainCommands() {
    uint64_t v;
    while (read(wakefd_, &v, sizeof v) > 0) {
    }
    std::deque<Command> cmds;
    {
      std::lock_guard<std::mutex> g(cmdMu_);
      cmds.swap(cmds_);
    }
    for (Command& c : cmds) {
      switch (c.op) {
        case Command::kAdd: {
          Listener* l = c.add;
          l->tag.owner = l;
          epoll_event ev{};
          ev.events = EPOLLIN;  // level-triggered: accept in bounded batches
          ev.data.ptr = &l->tag;
          epoll_ctl(epfd_, EPOLL_CTL_ADD, l->fd, &ev);
          listeners_[l->id] = l;
          c.done.set_value();
          break;
        }
        case Command::kRemove: {
          auto it = listeners_.find(c.id);
          if (it != listeners_.end()) {
            CloseListener(it->second);
            listeners_.erase(it);
          }
          c.done.set_value();
          break;
        }
        case Command::kRetarget: {
          auto it = listeners_.find(c.id);
          if (it != listeners_.end()) {
            Listener* l = it->second;
            l->target = c.target;
            // Connections to the old target belonged to the old rule.
            while (l->head) Abort(l->head, -1);
          }
          c.done.set_value();
          break;
        }
        case Command::kStop:
          stop_ = true;
          stopDone_ = std::make_unique<std::promise<void>>(std::move(c.done));
          break;
      }
    }
  }

  void CloseListener(Listener* l) {
    if (l->dead) return;
    l->dead = true;
    while (l->head) Abort(l->head, -1);
    // SAFETY: the listener fd was handed to the engine by relayListen (Add);
    // the engine is its only owner and closes it exactly once, here.
    epoll_ctl(epfd_, EPOLL_CTL_DEL, l->fd, nullptr);
    close(l->fd);
    l->fd = -1;
    deadListeners_.push_back(l);
  }

  void Accept(Listener* l) {
    for (int i = 0; i < kAcceptBatch; i++) {
      // SAFETY: accept4 gives the engine a new fd, owned by the Conn created
      // below (or closed right here when the connection is refused).
      int cfd = accept4(l->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (cfd < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        if (errno == ECONNABORTED || errno == EPROTO || errno == EPERM) continue;
        // EMFILE, ENFILE, ENOBUFS, ENOMEM: stop accepting for a moment rather
        // than spin on a level-triggered listener that stays readable.
        l->stats->errors++;
        l->pausedUntil = NowMs() + 100;
        epoll_event ev{};
        ev.events = 0;
        ev.data.ptr = &l->tag;
        epoll_ctl(epfd_, EPOLL_CTL_MOD, l->fd, &ev);
        return;
      }
      if (l->stats->active.load(std::memory_order_relaxed) >= l->maxConnections) {
        l->stats->errors++;
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

  void StartConnect(Listener* l, int cfd) {
    // SAFETY: gfd is created here and owned by the Conn; Close/Abort closes it.
    int gfd = socket(l->target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (gfd < 0) {
      l->stats->errors++;
      SetLingerZero(cfd);
      close(cfd);
      return;
    }
    SetNoDelay(gfd);
    SetNoDelay(cfd);
    auto* c = new Conn();
    c->l = l;
    c->cfd = cfd;
    c->gfd = gfd;
    c->ctag.owner = c;
    c->gtag.owner = c;
    c->next = l->head;
    if (l->head) l->head->prev = c;
    l->head = c;
    l->stats->active++;
    l->stats->total++;
    liveConns_++;

    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.ptr = &c->ctag;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, cfd, &ev);
    ev.data.ptr = &c->gtag;
    epoll_ctl(epfd_, EPOLL_CTL_ADD, gfd, &ev);

    int r = connect(gfd, reinterpret_cast<const sockaddr*>(&l->target.ss), l->target.len);
    if (r == 0) {
      Connected(c);
      return;
    }
    if (errno != EINPROGRESS) {
      l->stats->errors++;
      RefuseClient(c);
      return;
    }
    c->timer = timers_.emplace(NowMs() + static_cast<uint64_t>(l->connectTimeoutMs), c);
    c->hasTimer = true;
  }

  void FinishConnect(Conn* c) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->gfd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
    if (err == 0) {
      // A spurious wakeup before the handshake finished would show as
      // ENOTCONN on getpeername; wait for the next event in that case.
      sockaddr_storage ss;
      socklen_t sl = sizeof ss;
      if (getpeername(c->gfd, reinterpret_cast<sockaddr*>(&ss), &sl) < 0) return;
      Connected(c);
      return;
    }
    c->l->stats->errors++;
    RefuseClient(c);
  }

  void Connected(Conn* c) {
    DropTimer(c);
    c->connecting = false;
    // Bytes (or a FIN) the client sent while we were connecting are waiting.
    Pump(c, true);
    if (!c->dead) Pump(c, false);
  }

  // The guest could not be reached: the client sees a reset, as it would had
  // it connected to a closed port itself.
  void RefuseClient(Conn* c) {
    SetLingerZero(c->cfd);
    Close(c);
  }

  void Expire() {
    if (timers_.empty()) return;
    uint64_t now = NowMs();
    while (!timers_.empty() && timers_.begin()->first <= now) {
      Conn* c = timers_.begin()->second;
      c->l->stats->errors++;
      RefuseClient(c);  // DropTimer erases the entry
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
    // SAFETY: the pipe's two fds belong to the pool or to exactly one
    // connection direction at a time; ReleasePipe/ClosePipe close or return them.
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) return false;
    fcntl(fds[1], F_SETPIPE_SZ, static_cast<int>(kPipeSize));  // best effort
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

  // Moves bytes in one direction: up (client -> guest) or down (guest -> client).
  void Pump(Conn* c, bool upward) {
    Pipe& p = upward ? c->up : c->down;
    int src = upward ? c->cfd : c->gfd;
    int dst = upward ? c->gfd : c->cfd;
    bool& srcEof = upward ? c->cEof : c->gEof;
    bool& dstShut = upward ? c->gShut : c->cShut;
    std::atomic<uint64_t>& counter = upward ? c->l->stats->toGuest : c->l->stats->fromGuest;
    bool& blocked = upward ? c->upBlocked : c->downBlocked;
    blocked = false;
    size_t budget = kPumpBudget;
    for (;;) {
      if (p.n > 0) {
        ssize_t k = splice(p.r, nullptr, dst, nullptr, p.n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (k > 0) {
          p.n -= static_cast<size_t>(k);
          counter.fetch_add(static_cast<uint64_t>(k), std::memory_order_relaxed);
          continue;
        }
        if (k < 0 && errno == EINTR) continue;
        if (k < 0 && errno == EAGAIN) {  // dst full: wait for EPOLLOUT on dst
          blocked = true;
          return;
        }
        Abort(c, dst);  // EPIPE, ECONNRESET, ...
        return;
      }
      if (dstShut) {  // direction finished
        ReleasePipe(&p);
        return;
      }
      if (srcEof) {
        ReleasePipe(&p);
        shutdown(dst, SHUT_WR);
        dstShut = true;
        if (c->cEof && c->gEof && c->cShut && c->gShut) Close(c);
        return;
      }
      if (budget == 0) {
        if (!c->queued) {
          c->queued = true;
          ready_.push_back(c);
        }
        return;
      }
      if (!p.held() && !AcquirePipe(&p)) {
        c->l->stats->errors++;
        Abort(c, -1);
        return;
      }
      ssize_t k = splice(src, nullptr, p.w, nullptr, std::min(budget, kPipeSize),
                         SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (k > 0) {
        p.n = static_cast<size_t>(k);
        budget = budget > static_cast<size_t>(k) ? budget - static_cast<size_t>(k) : 0;
        continue;
      }
      if (k == 0) {
        srcEof = true;
        continue;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        ReleasePipe(&p);  // idle: give the pipe back
        return;
      }
      Abort(c, src);
      return;
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

  // Error on `bad` (or a forced close when bad == -1): the other side (both
  // sides when forced) gets an RST.
  void Abort(Conn* c, int bad) {
    if (c->dead) return;
    if (bad != -1) c->l->stats->errors++;
    if (bad != c->cfd) SetLingerZero(c->cfd);
    if (bad != c->gfd) SetLingerZero(c->gfd);
    Close(c);
  }

  void Close(Conn* c) {
    if (c->dead) return;
    c->dead = true;
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
    // here; close(2) also removes them from the epoll set. Pipes holding
    // unsent bytes are closed (never pooled).
    close(c->cfd);
    close(c->gfd);
    c->cfd = c->gfd = -1;
    ReleasePipe(&c->up);
    ReleasePipe(&c->down);
    Listener* l = c->l;
    if (c->prev) c->prev->next = c->next;
    else l->head = c->next;
    if (c->next) c->next->prev = c->prev;
    l->stats->active--;
    liveConns_--;
    deadConns_.push_back(c);
  }

  // Frees what was closed during this iteration, after every event of the
  // batch that might still point at it has been dispatched.
  void Reap() {
    for (Conn* c : deadConns_) delete c;
    deadConns_.clear();
    for (Listener* l : deadListeners_) delete l;
    deadListeners_.clear();
    if (liveConns_ == 0 && !pool_.empty()) {
      for (Pipe& p : pool_) {
        close(p.r);
        close(p.w);
      }
      pool_.clear();
    }
  }

  int epfd_ = -1;
  int wakefd_ = -1;
  Tag waketag_{Kind::kWake, nullptr};
  std::thread thread_;
  bool stop_ = false;
  std::unique_ptr<std::promise<void>> stopDone_;

  std::mutex cmdMu_;
  std::deque<Command> cmds_;

  std::mutex statsMu_;
  std::unordered_map<uint32_t, std::shared_ptr<Stats>> stats_;
  std::atomic<uint32_t> nextId_{0};

  // Engine thread only.
  std::unordered_map<uint32_t, Listener*> listeners_;
  std::multimap<uint64_t, Conn*> timers_;
  std::vector<Conn*> ready_;
  std::vector<Conn*> deadConns_;
  std::vector<Listener*> deadListeners_;
  std::vector<Pipe> pool_;
  size_t liveConns_ = 0;
};

std::mutex gEngineMu;
Engine* gEngine = nullptr;  // process-wide; stopped when the last env unloads
int gEnvs = 0;

Engine* GetEngine(Napi::Env env) {
  std::lock_guard<std::mutex> g(gEngineMu);
  if (!gEngine) {
    try {
      gEngine = new Engine();
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, std::string("relay: ") + e.what());
    }
  }
  return gEngine;
}

Engine* PeekEngine() {
  std::lock_guard<std::mutex> g(gEngineMu);
  return gEngine;
}

Napi::Error SysError(Napi::Env env, const std::string& syscall, const std::string& what, int err) {
  Napi::Error e = Napi::Error::New(env, syscall + " " + what + ": " + strerror(err));
  e.Set("errno", Napi::Number::New(env, -err));
  e.Set("syscall", Napi::String::New(env, syscall));
  return e;
}

uint32_t ArgU32(const Napi::Object& o, const char* key, const char* usage) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), usage);
  double d = v.As<Napi::Number>().DoubleValue();
  if (d < 0 || d > 4294967295.0 || d != static_cast<double>(static_cast<uint32_t>(d)))
    throw Napi::TypeError::New(o.Env(), usage);
  return static_cast<uint32_t>(d);
}

std::string ArgStr(const Napi::Object& o, const char* key, const char* usage) {
  Napi::Value v = o.Get(key);
  if (!v.IsString()) throw Napi::TypeError::New(o.Env(), usage);
  return v.As<Napi::String>().Utf8Value();
}

std::string Show(const std::string& ip, uint32_t port) {
  return (ip.find(':') != std::string::npos ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
}

constexpr const char* kListenUsage =
    "Usage: relayListen({ listenAddress: string, listenPort: number, targetAddress: string, "
    "targetPort: number, connectTimeoutMs: number, maxConnections: number })";

// relayListen(opts) -> { id, port }. Binds and listens on the JS thread so a
// bind error is thrown to the caller (errno, syscall set like Node's).
Napi::Value RelayListen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsObject()) throw Napi::TypeError::New(env, kListenUsage);
  Napi::Object o = info[0].As<Napi::Object>();
  std::string la = ArgStr(o, "listenAddress", kListenUsage);
  uint32_t lp = ArgU32(o, "listenPort", kListenUsage);
  std::string ta = ArgStr(o, "targetAddress", kListenUsage);
  uint32_t tp = ArgU32(o, "targetPort", kListenUsage);
  uint32_t timeout = ArgU32(o, "connectTimeoutMs", kListenUsage);
  uint32_t maxc = ArgU32(o, "maxConnections", kListenUsage);
  if (lp > 65535 || tp == 0 || tp > 65535 || timeout == 0 || maxc == 0)
    throw Napi::RangeError::New(env, kListenUsage);
  Addr laddr, taddr;
  if (!ParseAddr(la, static_cast<int>(lp), &laddr))
    throw Napi::TypeError::New(env, "relayListen: listenAddress is not an IP address: " + la);
  if (!ParseAddr(ta, static_cast<int>(tp), &taddr))
    throw Napi::TypeError::New(env, "relayListen: targetAddress is not an IP address: " + ta);
  Engine* eng = GetEngine(env);

  // SAFETY: fd is owned by this function until eng->Add() hands it to the
  // engine thread (which then closes it in CloseListener); every early
  // return before that closes it here.
  int fd = socket(laddr.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw SysError(env, "socket", Show(la, lp), errno);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (laddr.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&laddr.ss), laddr.len) < 0) {
    int e = errno;
    close(fd);
    throw SysError(env, "bind", Show(la, lp), e);
  }
  if (listen(fd, kListenBacklog) < 0) {
    int e = errno;
    close(fd);
    throw SysError(env, "listen", Show(la, lp), e);
  }
  sockaddr_storage bound{};
  socklen_t bl = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bl);
  uint32_t port = bound.ss_family == AF_INET6
                      ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                      : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);

  auto* l = new Listener();
  l->id = eng->NextId();
  l->fd = fd;
  l->target = taddr;
  l->connectTimeoutMs = static_cast<int>(timeout);
  l->maxConnections = maxc;
  l->stats = std::make_shared<Stats>();
  uint32_t id = l->id;
  eng->Add(l);  // ownership of l and fd moves to the engine thread

  Napi::Object out = Napi::Object::New(env);
  out.Set("id", Napi::Number::New(env, id));
  out.Set("port", Napi::Number::New(env, port));
  return out;
}

// relayClose(id): closes the listener and every connection of it (RST) before
// returning. Unknown ids are ignored (closing twice is harmless).
Napi::Value RelayClose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "Usage: relayClose(id: number)");
  Engine* eng = PeekEngine();
  if (eng && !eng->Remove(info[0].As<Napi::Number>().Uint32Value()))
    throw Napi::Error::New(env, "relayClose: relay thread did not answer within 10 s");
  return env.Undefined();
}

// relayRetarget(id, address, port): new connections go to the new target;
// connections to the old one are reset.
Napi::Value RelayRetarget(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "Usage: relayRetarget(id: number, targetAddress: string, targetPort: number)";
  if (info.Length() != 3 || !info[0].IsNumber() || !info[1].IsString() || !info[2].IsNumber())
    throw Napi::TypeError::New(env, usage);
  uint32_t port = info[2].As<Napi::Number>().Uint32Value();
  Addr t;
  if (port == 0 || port > 65535 || !ParseAddr(info[1].As<Napi::String>().Utf8Value(), static_cast<int>(port), &t))
    throw Napi::TypeError::New(env, usage);
  Engine* eng = PeekEngine();
  if (eng && !eng->Retarget(info[0].As<Napi::Number>().Uint32Value(), t))
    throw Napi::Error::New(env, "relayRetarget: relay thread did not answer within 10 s");
  return env.Undefined();
}

// relayStats(id) -> counters, or undefined for an unknown id.
Napi::Value RelayStats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "Usage: relayStats(id: number)");
  Engine* eng = PeekEngine();
  std::shared_ptr<Stats> s = eng ? eng->StatsOf(info[0].As<Napi::Number>().Uint32Value()) : nullptr;
  if (!s) return env.Undefined();
  Napi::Object o = Napi::Object::New(env);
  o.Set("connectionsActive", Napi::Number::New(env, static_cast<double>(s->active.load())));
  o.Set("connectionsTotal", Napi::Number::New(env, static_cast<double>(s->total.load())));
  o.Set("bytesToGuest", Napi::Number::New(env, static_cast<double>(s->toGuest.load())));
  o.Set("bytesFromGuest", Napi::Number::New(env, static_cast<double>(s->fromGuest.load())));
  o.Set("errors", Napi::Number::New(env, static_cast<double>(s->errors.load())));
  return o;
}

// relayProbe(): throws unless splice(2) moves bytes socket -> pipe -> socket
// on this kernel. Uses (and closes) five fds of its own.
Napi::Value RelayProbe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int sv[2], pp[2];
  // SAFETY: all four fds are local to this function and closed before return.
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0)
    throw SysError(env, "socketpair", "probe", errno);
  if (pipe2(pp, O_CLOEXEC | O_NONBLOCK) < 0) {
    int e = errno;
    close(sv[0]);
    close(sv[1]);
    throw SysError(env, "pipe2", "probe", e);
  }
  int err = 0;
  const char msg[] = "probe";
  char buf[8];
  if (write(sv[0], msg, 5) != 5) err = errno ? errno : EIO;
  if (!err && splice(sv[1], nullptr, pp[1], nullptr, 5, SPLICE_F_NONBLOCK) != 5) err = errno ? errno : EIO;
  if (!err && splice(pp[0], nullptr, sv[1], nullptr, 5, SPLICE_F_NONBLOCK) != 5) err = errno ? errno : EIO;
  if (!err && (read(sv[0], buf, sizeof buf) != 5 || memcmp(buf, msg, 5) != 0)) err = EIO;
  close(sv[0]);
  close(sv[1]);
  close(pp[0]);
  close(pp[1]);
  if (err) throw SysError(env, "splice", "probe", err);
  return env.Undefined();
}

void Cleanup() {
  std::lock_guard<std::mutex> g(gEngineMu);
  if (--gEnvs > 0 || !gEngine) return;
  delete gEngine;  // stops and joins the thread, closes every fd
  gEngine = nullptr;
}

}  // namespace

void InitRelay(Napi::Env env, Napi::Object exports) {
  {
    std::lock_guard<std::mutex> g(gEngineMu);
    gEnvs++;
  }
  env.AddCleanupHook(Cleanup);
  exports.Set("relayListen", Napi::Function::New(env, RelayListen, "relayListen"));
  exports.Set("relayClose", Napi::Function::New(env, RelayClose, "relayClose"));
  exports.Set("relayRetarget", Napi::Function::New(env, RelayRetarget, "relayRetarget"));
  exports.Set("relayStats", Napi::Function::New(env, RelayStats, "relayStats"));
  exports.Set("relayProbe", Napi::Function::New(env, RelayProbe, "relayProbe"));
}

}  // namespace vmm
