// Neighbour lookups and ARP probes for lease verification: the daemon
// believes a guest's DHCP lease only when the guest's MAC answers ARP for
// the leased address on the NIC's bridge (server/host/neighbour.ts).
//
// Fd ownership: every socket here is opened and closed within the call that
// needs it (an ARP exchange that has to wait hands its socket to its worker
// thread, which closes it); no fd crosses into JavaScript.
#include "neigh.h"

#include <errno.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <system_error>
#include <thread>

#include "../platform.h"

namespace vmm {
namespace neigh {

namespace {

// Closes `fd` on scope exit: no early return leaks it.
class Fd {
 public:
  explicit Fd(int fd, bool close_later = false) : fd_(fd), close_later_(close_later) {}
  ~Fd() {
    if (fd_ < 0) return;
    if (!close_later_) {
      close(fd_);
      return;
    }
    // Closing a packet socket that is bound to a protocol waits out an RCU
    // grace period (synchronize_net() in packet_release): milliseconds that
    // the answer must not wait for. A detached thread closes it instead.
    // SAFETY: the fd is ours alone; nothing uses it after this point, and
    // the thread is its last owner.
    int fd = fd_;
    try {
      std::thread([fd] { close(fd); }).detach();
    } catch (const std::system_error&) {
      close(fd);  // no thread to be had: close it here
    }
  }
  int get() const { return fd_; }
  // Gives up ownership: the destructor leaves the fd open.
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

 private:
  int fd_;
  bool close_later_;
};

int Fail(SysError* e, const std::string& call, int err) {
  e->call = call;
  e->err = err;
  return -1;
}

}  // namespace

int64_t NowMs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

int Get(int ifindex, uint32_t ip, Entry* out, SysError* e) {
  int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (s < 0) return Fail(e, "socket(AF_NETLINK)", errno);
  // SAFETY: `s` is ours and closed by `guard` on every path.
  Fd guard(s);
  struct timeval tv = {1, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  struct {
    struct nlmsghdr nh;
    struct ndmsg ndm;
    char attrs[RTA_SPACE(4)];
  } req;
  memset(&req, 0, sizeof req);
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg)) + RTA_SPACE(4);
  req.nh.nlmsg_type = RTM_GETNEIGH;
  req.nh.nlmsg_flags = NLM_F_REQUEST;
  req.nh.nlmsg_seq = 1;
  req.ndm.ndm_family = AF_INET;
  req.ndm.ndm_ifindex = ifindex;
  struct rtattr* rta = reinterpret_cast<struct rtattr*>(req.attrs);
  rta->rta_type = NDA_DST;
  rta->rta_len = RTA_LENGTH(4);
  memcpy(RTA_DATA(rta), &ip, 4);

  struct sockaddr_nl kernel;
  memset(&kernel, 0, sizeof kernel);
  kernel.nl_family = AF_NETLINK;
  // SAFETY: `req` is a local, fully initialized message of nlmsg_len bytes.
  if (sendto(s, &req, req.nh.nlmsg_len, 0, reinterpret_cast<struct sockaddr*>(&kernel), sizeof kernel) < 0) {
    return Fail(e, "sendto(RTM_GETNEIGH)", errno);
  }
  alignas(struct nlmsghdr) char buf[8192];
  ssize_t n = recv(s, buf, sizeof buf, 0);
  if (n < 0) return Fail(e, "recv(RTM_GETNEIGH)", errno);
  int len = static_cast<int>(n);
  for (struct nlmsghdr* h = reinterpret_cast<struct nlmsghdr*>(buf); NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
    if (h->nlmsg_type == NLMSG_ERROR) {
      const struct nlmsgerr* err = static_cast<const struct nlmsgerr*>(NLMSG_DATA(h));
      if (err->error == -ENOENT) return 0;
      if (err->error == 0) continue;
      return Fail(e, "RTM_GETNEIGH", -err->error);
    }
    if (h->nlmsg_type != RTM_NEWNEIGH) continue;
    const struct ndmsg* ndm = static_cast<const struct ndmsg*>(NLMSG_DATA(h));
    out->state = ndm->ndm_state;
    out->lladdr.clear();
    int alen = static_cast<int>(h->nlmsg_len - NLMSG_LENGTH(sizeof(struct ndmsg)));
    for (struct rtattr* a = reinterpret_cast<struct rtattr*>(reinterpret_cast<char*>(NLMSG_DATA(h)) + NLMSG_ALIGN(sizeof(struct ndmsg)));
         RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
      if (a->rta_type == NDA_LLADDR) {
        const uint8_t* p = static_cast<const uint8_t*>(RTA_DATA(a));
        out->lladdr.assign(p, p + RTA_PAYLOAD(a));
      }
    }
    return 1;
  }
  return Fail(e, "RTM_GETNEIGH (no answer from the kernel)", EPROTO);
}

int Send(int ifindex, const std::vector<uint8_t>& frame, int* fd, SysError* e) {
  // Protocol 0: the socket receives nothing until bind() names the protocol
  // and interface. (Opening it with ETH_P_ARP would register it for every
  // interface at once, and bind() would then have to wait out an RCU grace
  // period, synchronize_net(), to re-register it: milliseconds per probe.)
  int s = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (s < 0) return Fail(e, "socket(AF_PACKET)", errno);
  // SAFETY: `s` is closed by `guard` on every failure; on success it is
  // released to *fd, and Collect's caller closes it (CloseLater).
  Fd guard(s, true);
  struct sockaddr_ll sll;
  memset(&sll, 0, sizeof sll);
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ARP);
  sll.sll_ifindex = ifindex;
  if (bind(s, reinterpret_cast<struct sockaddr*>(&sll), sizeof sll) < 0) return Fail(e, "bind(AF_PACKET)", errno);
  sll.sll_halen = ETH_ALEN;
  memcpy(sll.sll_addr, frame.data(), ETH_ALEN);
  if (sendto(s, frame.data(), frame.size(), 0, reinterpret_cast<struct sockaddr*>(&sll), sizeof sll) < 0) {
    return Fail(e, "sendto(AF_PACKET)", errno);
  }
  *fd = guard.release();
  return 0;
}

int Collect(int s, int ifindex, const std::vector<uint8_t>& match, int64_t deadline_ms, size_t max_frames,
            std::vector<std::vector<uint8_t>>* frames, SysError* e) {
  uint8_t buf[1600];
  bool last = false;
  for (bool first = true;; first = false) {
    if (frames->size() >= max_frames) return 1;
    if (!first || deadline_ms != 0) {
      if (deadline_ms == 0) return 0;  // nothing queued yet; the caller waits elsewhere
      int64_t left = deadline_ms - NowMs();
      // Past the deadline, what is queued is still read, once: a worker
      // thread that started late (every thread of the pool busy) must not
      // drop an answer that came in time.
      if (left <= 0) {
        last = true;
        left = 0;
      }
      struct pollfd p = {s, POLLIN, 0};
      int r = poll(&p, 1, static_cast<int>(left));
      if (r < 0) {
        if (errno == EINTR) continue;
        return Fail(e, "poll(AF_PACKET)", errno);
      }
      if (r == 0) return 1;
    }
    for (;;) {
      struct sockaddr_ll from;
      socklen_t fromlen = sizeof from;
      ssize_t n = recvfrom(s, buf, sizeof buf, 0, reinterpret_cast<struct sockaddr*>(&from), &fromlen);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        if (errno == EINTR) continue;
        return Fail(e, "recvfrom(AF_PACKET)", errno);
      }
      // Frames sent by this host (our own request among them) are not answers.
      if (from.sll_pkttype == PACKET_OUTGOING || from.sll_ifindex != ifindex) continue;
      frames->emplace_back(buf, buf + n);
      // Ethernet header (14) + ARP: op at 20, sender MAC at 22, sender IPv4 at 28.
      if (match.size() == 10 && n >= 42 && buf[20] == 0 && buf[21] == 2 && memcmp(buf + 22, match.data(), 10) == 0) {
        return 1;
      }
      if (frames->size() >= max_frames) return 1;
    }
    if (last) return 1;
  }
}

void CloseLater(int fd) {
  // SAFETY: the caller hands over its last reference to `fd`.
  Fd guard(fd, true);
}

}  // namespace neigh

namespace {

int IfIndex(Napi::Env env, const Napi::Value& v, const char* usage) {
  if (!v.IsString()) throw Napi::TypeError::New(env, usage);
  std::string name = v.As<Napi::String>().Utf8Value();
  if (name.empty() || name.size() >= IFNAMSIZ || name.find('\0') != std::string::npos) {
    throw Napi::TypeError::New(env, std::string(usage) + ": ifname must be an interface name of at most 15 bytes");
  }
  unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0) throw SysErrorToJs(env, SysError{"if_nametoindex(" + name + ")", errno});
  return static_cast<int>(idx);
}

std::vector<uint8_t> Bytes(const Napi::Value& v) {
  Napi::Buffer<uint8_t> b = v.As<Napi::Buffer<uint8_t>>();
  return std::vector<uint8_t>(b.Data(), b.Data() + b.Length());
}

// neighbourGet(ifname, ip /* 4-byte Buffer */): { lladdr: Buffer, state: number } | null
Napi::Value NeighbourGetJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage = "Usage: neighbourGet(ifname: string, ipv4: Buffer /* 4 bytes */)";
  if (info.Length() != 2 || !info[1].IsBuffer()) throw Napi::TypeError::New(env, usage);
  int ifindex = IfIndex(env, info[0], usage);
  std::vector<uint8_t> ip = Bytes(info[1]);
  if (ip.size() != 4) throw Napi::TypeError::New(env, usage);
  uint32_t addr;
  memcpy(&addr, ip.data(), 4);
  neigh::Entry entry;
  SysError e;
  int r = neigh::Get(ifindex, addr, &entry, &e);
  if (r < 0) throw SysErrorToJs(env, e);
  if (r == 0) return env.Null();
  Napi::Object out = Napi::Object::New(env);
  out.Set("lladdr", Napi::Buffer<uint8_t>::Copy(env, entry.lladdr.data(), entry.lladdr.size()));
  out.Set("state", Napi::Number::New(env, entry.state));
  return out;
}

Napi::Array FramesToJs(Napi::Env env, const std::vector<std::vector<uint8_t>>& frames) {
  Napi::Array out = Napi::Array::New(env, frames.size());
  for (size_t i = 0; i < frames.size(); i++) {
    out.Set(static_cast<uint32_t>(i), Napi::Buffer<uint8_t>::Copy(env, frames[i].data(), frames[i].size()));
  }
  return out;
}

// Waits for the rest of an ARP exchange on a worker thread: a probe waits
// up to its timeout and must not block the event loop.
class CollectWorker : public Napi::AsyncWorker {
 public:
  // SAFETY: takes over `fd` (a socket of neigh::Send); closed in the destructor.
  CollectWorker(Napi::Env env, Napi::Promise::Deferred deferred, int fd, int ifindex, std::vector<uint8_t> match,
                int64_t deadline_ms, std::vector<std::vector<uint8_t>> frames)
      : Napi::AsyncWorker(env),
        deferred_(deferred),
        fd_(fd),
        ifindex_(ifindex),
        match_(std::move(match)),
        deadline_ms_(deadline_ms),
        frames_(std::move(frames)) {}
  ~CollectWorker() override { neigh::CloseLater(fd_); }

  void Execute() override {
    if (neigh::Collect(fd_, ifindex_, match_, deadline_ms_, kMaxFrames, &frames_, &error_) < 0) failed_ = true;
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (failed_) deferred_.Reject(SysErrorToJs(env, error_).Value());
    else deferred_.Resolve(FramesToJs(env, frames_));
  }

  void OnError(const Napi::Error& err) override { deferred_.Reject(err.Value()); }

  static constexpr size_t kMaxFrames = 64;

 private:
  Napi::Promise::Deferred deferred_;
  int fd_;
  int ifindex_;
  std::vector<uint8_t> match_;
  int64_t deadline_ms_;
  std::vector<std::vector<uint8_t>> frames_;
  SysError error_;
  bool failed_ = false;
};

// arpExchange(ifname, frame, match | null, timeoutMs): Promise<Buffer[]>
//
// Sends on this thread and takes what is already queued: a guest whose
// answer comes back within the sendto() (a veth peer: the kernel answers in
// the same softirq) settles the probe with no thread hop at all. Otherwise
// a worker thread waits for the rest.
Napi::Value ArpExchangeJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* usage =
      "Usage: arpExchange(ifname: string, frame: Buffer /* 42..1514 bytes */, match: Buffer /* 10 bytes */ | null, "
      "timeoutMs: number /* 1..10000 */)";
  if (info.Length() != 4 || !info[1].IsBuffer() || !(info[2].IsNull() || info[2].IsBuffer()) || !info[3].IsNumber()) {
    throw Napi::TypeError::New(env, usage);
  }
  int ifindex = IfIndex(env, info[0], usage);
  std::vector<uint8_t> frame = Bytes(info[1]);
  std::vector<uint8_t> match = info[2].IsNull() ? std::vector<uint8_t>() : Bytes(info[2]);
  double t = info[3].As<Napi::Number>().DoubleValue();
  if (frame.size() < 42 || frame.size() > 1514 || !(match.empty() || match.size() == 10) || !(t >= 1 && t <= 10000)) {
    throw Napi::TypeError::New(env, usage);
  }
  Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
  const int64_t deadline = neigh::NowMs() + static_cast<int64_t>(t);
  SysError e;
  int fd = -1;
  std::vector<std::vector<uint8_t>> frames;
  int done = neigh::Send(ifindex, frame, &fd, &e);
  if (done == 0) done = neigh::Collect(fd, ifindex, match, 0, CollectWorker::kMaxFrames, &frames, &e);
  if (done < 0) {
    if (fd >= 0) neigh::CloseLater(fd);
    deferred.Reject(SysErrorToJs(env, e).Value());
  } else if (done == 1) {
    neigh::CloseLater(fd);
    deferred.Resolve(FramesToJs(env, frames));
  } else {
    auto* w = new CollectWorker(env, deferred, fd, ifindex, std::move(match), deadline, std::move(frames));
    // SAFETY (ownership): Queue() hands `w` (and with it `fd`) to N-API,
    // which deletes it after OnOK/OnError.
    w->Queue();
  }
  return deferred.Promise();
}

}  // namespace

void InitNeigh(Napi::Env env, Napi::Object exports) {
  exports.Set("neighbourGet", Napi::Function::New(env, NeighbourGetJs, "neighbourGet"));
  exports.Set("arpExchange", Napi::Function::New(env, ArpExchangeJs, "arpExchange"));
}

}  // namespace vmm
