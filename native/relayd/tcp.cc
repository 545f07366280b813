// TCP: accepting, connecting to the guest, and relaying bytes both ways.
//
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
//     are in flight; the pool is emptied when a process has no connection,
//     and the per-process buffer is given back after a second without one
//     (Engine::ReleaseWhenIdle).
//
// Why one file of ~500 lines: accept, connect, pump and close share the
// connection struct and the pipe pool on the hot path; splitting them would
// put the data path's inline helpers behind headers for no reader's gain.
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <new>

#include "engine.h"
#include "proxy.h"
#include "slots.h"
#include "steer.h"
#include "util.h"

namespace relayd {

namespace {
constexpr size_t kPipeSize = 1024 * 1024;  // F_SETPIPE_SZ wish
constexpr size_t kPoolMax = 32;
constexpr size_t kPumpBudget = 4 << 20;   // bytes per direction per wakeup
constexpr int kAcceptBatch = 64;
// Page-aligned for ReleaseCopyBuffer's madvise().
alignas(4096) char gBuf[kBuf];

// A Pend holding a copy of `n` bytes at `b` (n <= kBuf); null when out of memory.
Pend* NewPend(const void* b, size_t n) {
  void* mem = malloc(sizeof(Pend) + n);
  if (!mem) return nullptr;
  Pend* p = new (mem) Pend();
  p->len = static_cast<uint32_t>(n);
  memcpy(p->bytes(), b, n);
  return p;
}

}  // namespace

void Engine::CloseListener(Listener* l) {
  if (l->dead) return;
  l->dead = true;
  while (l->head) Abort(l->head, -1);
  // SAFETY: the listener fd was handed to this engine (AddTcp); the engine
  // is its only owner and closes it exactly once, here.
  close(l->fd);
  l->fd = -1;
  deadListeners_.push_back(l);
}

void Engine::Accept(Listener* l) {
  AcceptBatch(l);
  if (!l->dead) Steer(l->id, l->fd);
}

void Engine::AcceptBatch(Listener* l) {
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
    // Light load (epoll reported this listener and at most one other fd):
    // one connection per wakeup. The listener is level-triggered, so a
    // second pending connection is reported by the next epoll_wait, which
    // runs anyway; trying accept4 again would only fetch EAGAIN, one system
    // call per connection of a client that connects one at a time (its
    // next connection usually arrives with the previous one's FIN: two
    // events).
    if (readyEvents_ <= 2) return;
  }
}

void Engine::ResumeListeners() {
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
void Engine::StartConnect(Listener* l, int cfd) {
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
  Conn* c;
  if (!freeConns_.empty()) {
    c = freeConns_.back();
    freeConns_.pop_back();
    *c = Conn();
  } else {
    c = new Conn();
  }
  if (l->proxy && !QueueProxyHeader(c, cfd)) {
    delete c;  // no Pend: QueueProxyHeader failed before allocating it
    close(gfd);
    s.active.fetch_sub(1);
    s.errors.fetch_add(1, std::memory_order_relaxed);
    SetLingerZero(cfd);
    close(cfd);
    return;
  }
  c->l = l;
  c->cfd = cfd;
  c->gfd = gfd;
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
    RefuseClient(c, errno);
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
  c->deadline = Ms32(NowMs() + static_cast<uint64_t>(l->connectTimeoutMs));
  c->hasTimer = true;
  c->tprev = l->ttail;
  if (l->ttail) l->ttail->tnext = c;
  else l->thead = c;
  l->ttail = c;
}

void Engine::FinishConnect(Conn* c, uint32_t events) {
  // Writable without error or hangup: the handshake is done (no syscall).
  if ((events & EPOLLOUT) && !(events & (EPOLLERR | EPOLLHUP))) {
    // A guest that answered and closed at once (data and FIN with the
    // handshake): this edge is the only one the FIN gets, so the direction
    // must read on to EOF, or the client never sees the end.
    if (events & EPOLLRDHUP) c->down.rdhup = true;
    Connected(c, (events & (EPOLLIN | EPOLLRDHUP)) != 0);
    return;
  }
  if (!(events & (EPOLLERR | EPOLLHUP))) return;  // e.g. EPOLLIN alone: wait
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->gfd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) err = errno;
  RefuseClient(c, err != 0 ? err : ECONNRESET);  // a hangup without an error: reset at once
}

// `guestReadable`: the connect-completion event also reported EPOLLIN.
void Engine::Connected(Conn* c, bool guestReadable) {
  DropTimer(c);
  c->connecting = false;
  // Bytes (or a FIN: up.rdhup) the client sent while we were connecting
  // are waiting; their edge was consumed, so read them now. Without such
  // an edge there is nothing to read yet: no recv() bound to fail with
  // EAGAIN (one syscall less per connection), and the next arrival is a
  // new edge. The same holds for a guest that has not spoken yet.
  if (c->upReady || c->up.pend) Pump(c, true);  // up.pend: a PROXY header waits
  if (!c->dead && guestReadable) Pump(c, false);
}

// The PROXY v2 header of connection `cfd`, queued as `c`'s first bytes to
// the guest. False when the addresses cannot be read.
bool Engine::QueueProxyHeader(Conn* c, int cfd) {
  sockaddr_storage peer{}, local{};
  socklen_t pl = sizeof peer, ll = sizeof local;
  if (getpeername(cfd, reinterpret_cast<sockaddr*>(&peer), &pl) < 0 ||
      getsockname(cfd, reinterpret_cast<sockaddr*>(&local), &ll) < 0)
    return false;
  unsigned char hdr[kProxyHeaderMax];
  size_t n = ProxyV2Header(peer, local, hdr);
  if (n == 0) return false;
  Pend* p = NewPend(hdr, n);
  if (!p) return false;
  p->uncounted = static_cast<uint8_t>(n);
  c->up.pend = p;
  return true;
}

// The guest refused, is unreachable or did not answer in time (`err`): the
// client sees a reset, as it would had it connected to a closed port itself.
// Counted as an error after the connection left `active`, so a reader that
// sees the error also sees the connection gone; the connect failure and its
// errno are set before either.
void Engine::RefuseClient(Conn* c, int err) {
  Slot& s = gSlots[c->l->id];
  s.lastConnectErrno.store(static_cast<uint32_t>(err), std::memory_order_relaxed);
  s.connectFailures.fetch_add(1, std::memory_order_relaxed);
  SetLingerZero(c->cfd);
  Close(c, true);
}

void Engine::Expire() {
  uint64_t now = 0;
  for (auto& kv : listeners_) {
    Listener* l = kv.second;
    if (!l->thead) continue;
    if (!now) now = NowMs();
    ExpireListener(l, now);
  }
}

// Refuses the connections of `l` whose connect deadline passed: those at the
// front of its list (in deadline order), or all of the list when an update
// left it unordered.
void Engine::ExpireListener(Listener* l, uint64_t now) {
  uint32_t now32 = Ms32(now);
  if (!l->timersUnordered) {
    while (l->thead && Due(l->thead->deadline, now32)) RefuseClient(l->thead, ETIMEDOUT);
    return;
  }
  for (Conn* c = l->thead; c;) {
    Conn* n = c->tnext;
    if (Due(c->deadline, now32)) RefuseClient(c, ETIMEDOUT);
    c = n;
  }
  if (!l->thead) l->timersUnordered = false;
}

void Engine::DropTimer(Conn* c) {
  if (!c->hasTimer) return;
  Listener* l = c->l;
  if (c->tprev) c->tprev->tnext = c->tnext;
  else l->thead = c->tnext;
  if (c->tnext) c->tnext->tprev = c->tprev;
  else l->ttail = c->tprev;
  c->tprev = c->tnext = nullptr;
  c->hasTimer = false;
  if (!l->thead) l->timersUnordered = false;
}

bool Engine::AcquirePipe(Pipe* p) {
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

void Engine::ReleasePipe(Pipe* p) {
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
}

// Sends what is in flight in `d` (the pipe's bytes, or the bytes a short
// send() left over) to `dst`: kAll when nothing is left, kBlocked when `dst`
// is full (EPOLLOUT resumes), kFailed on an error of `dst`.
Engine::Sent Engine::Deliver(Dir& d, int dst, uint32_t id, bool upward) {
  Slot& s = gSlots[id];
  std::atomic<uint64_t>& counter = upward ? s.toGuest : s.fromGuest;
  while (d.pipe.n > 0 || d.pend) {
    Pend* p = d.pend;
    ssize_t k = d.pipe.n > 0 ? splice(d.pipe.r, nullptr, dst, nullptr, d.pipe.n, SPLICE_F_MOVE | SPLICE_F_NONBLOCK)
                             : send(dst, p->bytes() + p->off, p->len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (k > 0) {
      uint64_t counted = static_cast<uint64_t>(k);
      if (d.pipe.n > 0) {
        d.pipe.n -= static_cast<uint32_t>(k);
      } else {
        p->off += static_cast<uint32_t>(k);
        p->len -= static_cast<uint32_t>(k);
        if (p->uncounted) {  // a PROXY header is not the client's bytes
          uint64_t ours = std::min<uint64_t>(p->uncounted, counted);
          p->uncounted = static_cast<uint8_t>(p->uncounted - ours);
          counted -= ours;
        }
        if (p->len == 0) FreePending(&d);
      }
      if (counted) counter.fetch_add(counted, std::memory_order_relaxed);
      continue;
    }
    if (k < 0 && errno == EINTR) continue;
    if (k < 0 && errno == EAGAIN) return Sent::kBlocked;
    return Sent::kFailed;
  }
  return Sent::kAll;
}

// Moves bytes in one direction: up (client -> guest) or down (guest -> client).
void Engine::Pump(Conn* c, bool upward) {
  Dir& d = upward ? c->up : c->down;
  int src = upward ? c->cfd : c->gfd;
  int dst = upward ? c->gfd : c->cfd;
  Slot& s = gSlots[c->l->id];
  std::atomic<uint64_t>& counter = upward ? s.toGuest : s.fromGuest;
  d.blocked = false;
  size_t budget = kPumpBudget;
  for (;;) {
    // 1. Deliver what is in flight.
    Sent sent = Deliver(d, dst, c->l->id, upward);
    if (sent == Sent::kBlocked) {
      d.blocked = true;
      return;
    }
    if (sent == Sent::kFailed) {
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
      ssize_t k = splice(src, nullptr, d.pipe.w, nullptr, std::min(budget, kPipeSize), SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (k > 0) {
        spliced_ = true;
        d.pipe.n = static_cast<uint32_t>(k);
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
    copyBufUsed_ = true;
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
    size_t done = 0;
    while (done < got) {
      ssize_t w = send(dst, gBuf + done, got - done, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0) {
        done += static_cast<size_t>(w);
        continue;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && errno == EAGAIN) break;
      Abort(c, dst);
      return;
    }
    if (done) counter.fetch_add(done, std::memory_order_relaxed);
    if (done < got) {
      d.pend = NewPend(gBuf + done, got - done);
      if (!d.pend) {
        s.errors.fetch_add(1, std::memory_order_relaxed);
        Abort(c, -1);
        return;
      }
      d.blocked = true;
      return;
    }
    // A short read emptied the receive queue; the next arrival is a new
    // edge. After RDHUP the FIN is queued behind the data: read on.
    if (got < kBuf && !d.rdhup) return;
  }
}

void Engine::ReleaseCopyBuffer() {
  // Back to zero pages (.bss is private anonymous memory).
  madvise(gBuf, sizeof gBuf, MADV_DONTNEED);
  copyBufUsed_ = false;
}

void Engine::RunReady() {
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
void Engine::Abort(Conn* c, int bad) {
  if (c->dead) return;
  if (bad != c->cfd) SetLingerZero(c->cfd);
  if (bad != c->gfd) SetLingerZero(c->gfd);
  Close(c, bad != -1);
}

// `error`: count one error. The counters change before the sockets close,
// so a client that saw its RST also sees them; `active` drops before
// `errors` grows (see Slot).
void Engine::Close(Conn* c, bool error) {
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
    for (auto& kv : listeners_)
      if (!kv.second->dead) Steer(kv.first, kv.second->fd);
  deadConns_.push_back(c);
}

}  // namespace relayd
