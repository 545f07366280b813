#include "engine.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>

#include "steer.h"
#include "util.h"

namespace relayd {

Engine::Engine() : evs_(512) {
  // SAFETY: epfd_ is owned by the engine for the life of the process.
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ < 0) {
    perror("vmm-relayd: epoll_create1");
    exit(1);
  }
}

void Engine::Watch(int fd, Tag* tag, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = tag;
  epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
}

uint32_t gPollMaxNs = 0;

// Busy polling. On a VM whose idle vCPUs halt (no guest halt polling), every
// sleep in epoll_wait ends with a wake-up through the hypervisor: tens of µs
// on each leg of a request and its answer, more than the relaying itself.
// Like the kernel's haltpoll governor, the loop first polls (epoll_wait with
// a zero timeout) for up to pollNs_, and adapts that window to how long it
// actually waited for its events (AdaptPoll): waits a longer window would
// have caught grow it, up to gPollMaxNs; longer waits halve it, down to 0.
// So an idle relay never polls, and one whose events come further apart
// than gPollMaxNs polls once per pause, for half as long each time, until
// it does not poll at all; one carrying requests and answers stays awake
// between them.
//
// The poll yields the CPU at every turn (sched_yield): a task waiting for
// this CPU (the client, the backend, a guest) runs first, instead of
// waiting for the poll to end; the poll goes on when it is back, within
// the same window. (Without the yield, a full benchmark run had keep-alive
// and 128-client rates below those of the loop that never polls.) A poll
// that was itself held up (one epoll_wait took longer than kPreemptedNs:
// preempted) ends at once, and the window shrinks. After a batch that
// spliced (bulk) the loop sleeps at once: the kernel's buffers keep a
// stream going, and polling would only burn CPU per GB. So it does while
// it is crowded: kCrowded or more connections had an event within the
// current epoch (kEpochNs) or the last one, or one epoll_wait returned
// kCrowded events or more. Many connections are busy at once, one wake-up
// is shared by the events that piled up meanwhile, and the next batch
// comes whether the loop polls or not (in the benchmark's 32-connection
// keep-alive run, polling there cost 11-18% more CPU per request than not
// polling, for a rate 3% above or below). Connections are counted, not
// events per batch: polling itself makes batches small (each poll catches
// an event or two), so with the batch rule alone a relay carrying 32 or
// 128 clients' new connections polled on (1-5 polls per connection, where
// it needs none). One connection, or a few, still get the poll's latency.
namespace {
constexpr uint64_t kPreemptedNs = 20000;
constexpr int kCrowded = 4;
constexpr uint64_t kEpochNs = 250000;
}

int Engine::Wait() {
  int timeout = ComputeTimeout();
  bool bulk = spliced_;
  spliced_ = false;
  if (gPollMaxNs == 0) return Sleep(timeout);  // no poll: the epoch count is not needed
  uint64_t start = NowNs();
  if (start - epochStart_ >= kEpochNs) {
    crowded_ = busyConns_ >= kCrowded;
    busyConns_ = 0;
    epoch_ = static_cast<uint8_t>(epoch_ % 7 + 1);
    epochStart_ = start;
  }
  if (timeout == 0 || bulk || crowded_ || readyEvents_ >= kCrowded) return Sleep(timeout);
  bool contended = false;
  if (pollNs_ > 0) {
    uint64_t last = start;
    for (;;) {
      int n = epoll_wait(epfd_, evs_.data(), static_cast<int>(evs_.size()), 0);
      if (n > 0 || (n < 0 && errno != EINTR)) return n;  // caught: the window stays
      uint64_t now = NowNs();
      if (now - last > kPreemptedNs) {
        contended = true;
        break;
      }
      if (now - start >= pollNs_) break;
      sched_yield();  // a task waiting for this CPU runs first
      last = NowNs();
    }
  }
  // `timeout` was computed before the poll: a deadline may fire up to
  // gPollMaxNs late, well inside its millisecond resolution.
  int n = Sleep(timeout);
  if (n >= 0) AdaptPoll(NowNs() - start, contended);
  return n;
}

int Engine::Sleep(int timeoutMs) {
  for (;;) {
    int n = epoll_wait(epfd_, evs_.data(), static_cast<int>(evs_.size()), timeoutMs);
    if (n >= 0) return n;
    if (errno != EINTR) return -1;
  }
}

// haltpoll's rule (drivers/cpuidle/governors/haltpoll.c), with its factors:
// a wait longer than the window but within gPollMaxNs doubles the window
// (from a quarter of the maximum), a longer one halves it (to 0 below that
// quarter).
void Engine::AdaptPoll(uint64_t waitedNs, bool contended) {
  uint32_t start = gPollMaxNs / 4;
  if (!contended && waitedNs > pollNs_ && waitedNs <= gPollMaxNs) {
    uint64_t grown = std::max<uint64_t>(uint64_t{pollNs_} * 2, start);
    pollNs_ = static_cast<uint32_t>(std::min<uint64_t>(grown, gPollMaxNs));
  } else if (contended || waitedNs > gPollMaxNs) {
    pollNs_ = pollNs_ / 2 < start ? 0 : pollNs_ / 2;
  }
}

void Engine::SetPollMax(uint32_t ns) {
  gPollMaxNs = ns;
  pollNs_ = std::min(pollNs_, ns);
}

void Engine::AfterEvents() {
  RunReady();
  Expire();
  ResumeListeners();
  SweepUdp();
  Reap();
  ReleaseWhenIdle();
}

// The TCP copy buffer (64 KiB) goes back to the system once a process has
// had no connection for kIdleReleaseMs: not at every idle moment, where a
// client connecting one at a time would pay a madvise and a page fault per
// connection.
void Engine::ReleaseWhenIdle() {
  if (liveConns_ > 0 || !copyBufUsed_) {
    idleSince_ = 0;
    return;
  }
  uint64_t now = NowMs();
  if (idleSince_ == 0) {
    idleSince_ = now;
  } else if (now - idleSince_ >= kIdleReleaseMs) {
    ReleaseCopyBuffer();
    idleSince_ = 0;
  }
}

void Engine::CloseAll() {
  for (auto& kv : listeners_) CloseListener(kv.second);
  listeners_.clear();
  for (auto& kv : udp_) CloseUdp(kv.second);
  udp_.clear();
  Reap();
}

void Engine::AddTcp(uint32_t id, int fd, const RuleSettings& s) {
  auto* l = new Listener();
  l->id = id;
  l->fd = fd;
  l->tag.owner = l;
  l->target = s.target;
  l->connectTimeoutMs = s.limitMs;
  l->maxConnections = s.max;
  l->proxy = s.proxy;
  epoll_event ev{};
  ev.events = EPOLLIN;  // level-triggered: bounded accept batches
  ev.data.ptr = &l->tag;
  epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  listeners_[id] = l;
  if (gProcIndex == 0) Steer(id, fd);  // every process's listener has joined the group
}

void Engine::AddUdp(uint32_t id, int fd, const RuleSettings& s) {
  auto* u = new UdpRule();
  u->id = id;
  u->fd = fd;
  u->tag.owner = u;
  u->target = s.target;
  u->idleMs = s.limitMs;
  u->maxSessions = static_cast<size_t>(s.max);
  u->nextSweep = NowMs() + SweepEvery(u);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &u->tag;
  epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev);
  udp_[id] = u;
}

static bool SameAddr(const Addr& a, const Addr& b) {
  return a.len == b.len && KeyOf(a.ss, a.len) == KeyOf(b.ss, b.len);
}

void Engine::Update(uint32_t id, const RuleSettings& s) {
  auto it = listeners_.find(id);
  if (it != listeners_.end()) {
    Listener* l = it->second;
    bool moved = !SameAddr(l->target, s.target);
    l->target = s.target;
    if (l->thead && l->connectTimeoutMs != s.limitMs) l->timersUnordered = true;
    l->connectTimeoutMs = s.limitMs;
    l->maxConnections = s.max;
    l->proxy = s.proxy;
    if (moved)
      while (l->head) Abort(l->head, -1);
  }
  auto ut = udp_.find(id);
  if (ut != udp_.end()) {
    UdpRule* u = ut->second;
    bool moved = !SameAddr(u->target, s.target);
    u->target = s.target;
    u->idleMs = s.limitMs;
    u->maxSessions = static_cast<size_t>(s.max);
    if (moved)
      while (!u->sessions.empty()) EndSession(u->sessions.begin()->second);
  }
  // No Reap() here: a control command runs inside an event batch, whose
  // later events may still name the objects just closed (AfterEvents reaps).
}

void Engine::Remove(uint32_t id) {
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
}

int Engine::ComputeTimeout() {
  if (!ready_.empty()) return 0;
  uint64_t next = UINT64_MAX;
  uint64_t nowMs = 0;  // read once, when needed
  auto now = [&nowMs] { return nowMs ? nowMs : (nowMs = NowMs()); };
  for (auto& kv : listeners_) {
    Listener* l = kv.second;
    if (l->pausedUntil && l->pausedUntil < next) next = l->pausedUntil;
    if (l->timersUnordered) {  // rare (see Listener): look at every deadline
      for (Conn* c = l->thead; c; c = c->tnext) next = std::min(next, Unwrap(c->deadline, now()));
    } else if (l->thead) {
      next = std::min(next, Unwrap(l->thead->deadline, now()));
    }
  }
  for (auto& kv : udp_)
    if (!kv.second->sessions.empty() && kv.second->nextSweep < next) next = kv.second->nextSweep;
  if (idleSince_) next = std::min(next, idleSince_ + kIdleReleaseMs);
  if (next == UINT64_MAX) return -1;
  return next <= now() ? 0 : static_cast<int>(std::min<uint64_t>(next - now(), 60000));
}

// The Conn whose ctag (client) or gtag (guest) `k` is.
static Conn* ConnOf(Kind* k, bool client) {
  size_t off = client ? offsetof(Conn, ctag) : offsetof(Conn, gtag);
  return reinterpret_cast<Conn*>(reinterpret_cast<char*>(k) - off);
}

void Engine::Dispatch(void* p, uint32_t events) {
  Kind* k = static_cast<Kind*>(p);
  Tag* t = static_cast<Tag*>(p);  // read only for the kinds a Tag carries
  switch (*k) {
    case Kind::kControl:
      break;
    case Kind::kListener: {
      auto* l = static_cast<Listener*>(t->owner);
      if (!l->dead) Accept(l);
      break;
    }
    case Kind::kClient:
    case Kind::kGuest: {
      bool client = *k == Kind::kClient;
      Conn* c = ConnOf(k, client);
      if (c->dead) break;
      if (c->seen != epoch_) {
        c->seen = epoch_;
        if (++busyConns_ >= kCrowded) crowded_ = true;
      }
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

void Engine::Reap() {
  for (Conn* c : deadConns_) {
    if (freeConns_.size() < kFreeConns) freeConns_.push_back(c);
    else delete c;
  }
  deadConns_.clear();
  for (Listener* l : deadListeners_) delete l;
  deadListeners_.clear();
  for (Session* se : deadSessions_) delete se;
  deadSessions_.clear();
  for (UdpRule* u : deadUdp_) delete u;
  deadUdp_.clear();
  if (liveConns_ == 0 && !freeConns_.empty()) {
    for (Conn* c : freeConns_) delete c;
    freeConns_.clear();
    freeConns_.shrink_to_fit();
  }
  if (liveConns_ == 0 && !pool_.empty()) {
    for (Pipe& p : pool_) {
      close(p.r);
      close(p.w);
    }
    pool_.clear();
  }
  if (liveConns_ == 0 && udp_.empty() && udpBufsUsed_) ReleaseUdpBuffers();
}

}  // namespace relayd
