// UDP: one session per client address, each a socket connect()ed to the
// guest (the kernel drops datagrams from any other source) in the same epoll
// loop. recvmmsg batches from clients; consecutive datagrams of one session
// leave in one sendmmsg; replies are read with recvmmsg and sent back with
// sendmmsg on the rule's socket. Idle sessions are closed, socket included.
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include "engine.h"
#include "slots.h"
#include "util.h"

namespace relayd {

namespace {
constexpr int kUdpBatch = 32;
constexpr size_t kUdpMax = 65536;

// The receive buffers of one recvmmsg batch, in .bss: zero pages until the
// kernel writes a datagram into them, so a process holds only the pages its
// datagrams reached (one page per buffer for small ones), not 2 MiB. Shared
// by both directions: a batch is sent on before the next one is read.
// Page-aligned: madvise() refuses an unaligned start (EINVAL), which left
// them resident before.
alignas(4096) char gUdpBufs[kUdpBatch][kUdpMax];

// One recvmmsg batch over gUdpBufs; `names` (optional) receives the sources.
struct Batch {
  mmsghdr msgs[kUdpBatch];
  iovec iov[kUdpBatch];
  sockaddr_storage names[kUdpBatch];

  explicit Batch(bool withNames) {
    for (int i = 0; i < kUdpBatch; i++) {
      iov[i] = {gUdpBufs[i], kUdpMax};
      memset(&msgs[i], 0, sizeof msgs[i]);
      msgs[i].msg_hdr.msg_iov = &iov[i];
      msgs[i].msg_hdr.msg_iovlen = 1;
      if (withNames) {
        msgs[i].msg_hdr.msg_name = &names[i];
        msgs[i].msg_hdr.msg_namelen = sizeof names[i];
      }
    }
  }
};
}  // namespace

void Engine::ReleaseUdpBuffers() {
  // Back to zero pages: the memory goes back to the system (.bss is private
  // anonymous memory, so MADV_DONTNEED drops the pages).
  madvise(gUdpBufs, sizeof gUdpBufs, MADV_DONTNEED);
  udpBufsUsed_ = false;
}

int Engine::SweepEvery(const UdpRule* u) { return std::max(10, std::min(1000, u->idleMs / 4)); }

void Engine::CloseUdp(UdpRule* u) {
  while (!u->sessions.empty()) EndSession(u->sessions.begin()->second);
  // SAFETY: the UDP listener fd was handed to this engine (AddUdp) and is
  // closed exactly once, here.
  close(u->fd);
  u->fd = -1;
  deadUdp_.push_back(u);
}

void Engine::EndSession(Session* se) {
  UdpRule* u = se->r;
  u->sessions.erase(se->key);
  gSlots[u->id].sessions.store(u->sessions.size(), std::memory_order_relaxed);
  // SAFETY: the session socket is owned by the Session; closed once, here.
  close(se->fd);
  se->fd = -1;
  se->r = nullptr;
  deadSessions_.push_back(se);
}

Session* Engine::OpenSession(UdpRule* u, const sockaddr_storage& from, socklen_t fromLen, const std::string& key) {
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

void Engine::UdpFromClients(UdpRule* u) {
  if (u->fd < 0) return;
  udpBufsUsed_ = true;
  Slot& s = gSlots[u->id];
  Batch b(true);
  int n = recvmmsg(u->fd, b.msgs, kUdpBatch, MSG_DONTWAIT, nullptr);
  if (n <= 0) return;
  uint64_t now = NowMs();
  Session* of[kUdpBatch];
  for (int i = 0; i < n; i++) {
    socklen_t fl = b.msgs[i].msg_hdr.msg_namelen;
    std::string key = KeyOf(b.names[i], fl);
    auto it = u->sessions.find(key);
    Session* se = it != u->sessions.end() ? it->second : OpenSession(u, b.names[i], fl, key);
    of[i] = se;
    if (!se) continue;
    se->last = now;
    b.iov[i].iov_len = b.msgs[i].msg_len;
    b.msgs[i].msg_hdr.msg_name = nullptr;  // the session socket is connected
    b.msgs[i].msg_hdr.msg_namelen = 0;
  }
  // Consecutive datagrams of one session leave in one sendmmsg.
  for (int i = 0; i < n;) {
    int j = i + 1;
    while (j < n && of[j] == of[i]) j++;
    if (of[i]) {
      int done = i;
      while (done < j) {
        int k = sendmmsg(of[i]->fd, b.msgs + done, static_cast<unsigned>(j - done), MSG_DONTWAIT);
        if (k <= 0) {
          s.errors.fetch_add(static_cast<uint64_t>(j - done), std::memory_order_relaxed);
          break;
        }
        for (int m = done; m < done + k; m++) s.toGuest.fetch_add(b.msgs[m].msg_len, std::memory_order_relaxed);
        done += k;
      }
    }
    i = j;
  }
}

void Engine::UdpFromGuest(Session* se) {
  if (!se->r || se->fd < 0) return;
  udpBufsUsed_ = true;
  UdpRule* u = se->r;
  Slot& s = gSlots[u->id];
  Batch b(false);
  int n = recvmmsg(se->fd, b.msgs, kUdpBatch, MSG_DONTWAIT, nullptr);
  if (n < 0) {
    if (errno != EAGAIN && errno != EINTR) s.errors.fetch_add(1, std::memory_order_relaxed);  // ICMP refused
    return;
  }
  if (n == 0) return;
  se->last = NowMs();
  uint64_t bytes = 0;
  for (int i = 0; i < n; i++) {
    b.iov[i].iov_len = b.msgs[i].msg_len;
    b.msgs[i].msg_hdr.msg_name = &se->client.ss;
    b.msgs[i].msg_hdr.msg_namelen = se->client.len;
    bytes += b.msgs[i].msg_len;
  }
  s.fromGuest.fetch_add(bytes, std::memory_order_relaxed);
  int done = 0;
  while (done < n) {
    int k = sendmmsg(u->fd, b.msgs + done, static_cast<unsigned>(n - done), MSG_DONTWAIT);
    if (k <= 0) {
      s.errors.fetch_add(static_cast<uint64_t>(n - done), std::memory_order_relaxed);
      break;
    }
    done += k;
  }
}

void Engine::SweepUdp() {
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

}  // namespace relayd
