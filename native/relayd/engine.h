// The event engine of one relay process: a single-threaded epoll loop over
// the control channel, TCP listeners and connections (tcp.cc) and UDP rules
// and sessions (udp.cc). Every relay process (master and workers) runs one.
#pragma once

#include <sys/epoll.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "addr.h"

namespace relayd {

// Conn objects kept for reuse after their connection closed (no allocation
// per connection under churn).
constexpr size_t kFreeConns = 1024;

// A process without connections for this long gives its TCP copy buffer back.
constexpr uint64_t kIdleReleaseMs = 1000;

enum class Kind : uint8_t { kControl, kListener, kClient, kGuest, kUdpListener, kUdpSession };

// epoll's data.ptr of every registered fd but a connection's: what it is
// and its owner object. A connection's two fds point at the Kind members
// of their Conn (ctag, gtag) instead, which Dispatch maps back to the Conn;
// so data.ptr always points at a Kind first.
struct Tag {
  Kind kind;
  void* owner;
};

struct Pipe {
  int r = -1;
  int w = -1;
  uint32_t n = 0;  // bytes in it (at most kPipeSize)
  bool held() const { return r >= 0; }
};

// Bytes of one direction that a short send() left over, or a PROXY header
// waiting for the guest: a heap block of this header and then the bytes.
struct Pend {
  uint32_t off = 0, len = 0;
  uint8_t uncounted = 0;  // leading bytes that are ours (a PROXY header), not the client's
  char* bytes() { return reinterpret_cast<char*>(this + 1); }
};

// One direction of a connection (24 bytes).
struct Dir {
  Pend* pend = nullptr;  // copy mode: bytes to send before reading on
  Pipe pipe;             // splice mode: bytes in flight
  bool splice : 1;       // switched after a read filled kBuf
  bool eof : 1;          // EOF read from the source
  bool shut : 1;         // FIN sent to the destination
  bool rdhup : 1;        // the source reported EPOLLRDHUP/EPOLLHUP: read on until EOF
  bool blocked : 1;      // waiting for EPOLLOUT on the destination
  Dir() : splice(false), eof(false), shut(false), rdhup(false), blocked(false) {}
};

struct Listener;

// One forwarded TCP connection (104 bytes: an idle connection costs a
// 112-byte heap chunk). Standard layout: Dispatch finds it from ctag/gtag.
struct Conn {
  Listener* l = nullptr;
  Conn* prev = nullptr;   // the listener's connections
  Conn* next = nullptr;
  Conn* tprev = nullptr;  // the listener's connect deadlines, oldest first
  Conn* tnext = nullptr;
  int cfd = -1;
  int gfd = -1;
  Dir up, down;  // client -> guest, guest -> client
  uint32_t deadline = 0;  // connect deadline while hasTimer (Ms32 clock: compare with Due)
  Kind ctag = Kind::kClient;  // cfd's epoll data.ptr points here
  Kind gtag = Kind::kGuest;   // gfd's
  bool connecting : 1;
  bool upReady : 1;  // the client reported data while we were connecting
  bool dead : 1;
  bool queued : 1;
  bool hasTimer : 1;
  uint8_t seen : 3;  // the Engine's epoch (1-7) of its last event: busy connections are counted once per epoch
  Conn() : connecting(true), upReady(false), dead(false), queued(false), hasTimer(false), seen(0) {}
};
static_assert(sizeof(Dir) == 24 && sizeof(Conn) == 104, "an idle connection's memory (see Conn)");

struct Listener {
  uint32_t id = 0;
  int fd = -1;
  Tag tag{Kind::kListener, nullptr};
  Addr target;
  int connectTimeoutMs = 5000;
  uint64_t maxConnections = 4096;
  bool proxy = false;  // send a PROXY protocol v2 header first
  Conn* head = nullptr;
  // Connections waiting for their guest connect, in deadline order (one
  // timeout per rule: appending keeps the order, unless an update changed
  // the timeout while some waited: then `timersUnordered` until it empties).
  Conn* thead = nullptr;
  Conn* ttail = nullptr;
  bool timersUnordered = false;
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

// A rule's settings that an update may change.
struct RuleSettings {
  Addr target;
  int limitMs = 0;   // connect timeout (TCP) or idle time (UDP)
  uint64_t max = 0;  // connections (TCP) or sessions (UDP)
  bool proxy = false;
};

// Longest busy poll before the event loop sleeps, in ns (--poll-us; 0: the
// loop always sleeps at once). Set before the workers are forked.
extern uint32_t gPollMaxNs;

class Engine {
 public:
  Engine();

  // Polls `fd` for `events` (level-triggered); its events go to Run's
  // `onControl` with `tag`, whose kind must be Kind::kControl.
  void Watch(int fd, Tag* tag, uint32_t events);

  // Runs until `onControl(tag, events)` (called for every fd given to
  // Watch) returns false, then closes every rule.
  template <typename F>
  void Run(F onControl) {
    for (;;) {
      bool stop = false;
      int n = Wait();
      if (n < 0) break;
      readyEvents_ = n;
      for (int i = 0; i < n; i++) {
        void* p = evs_[i].data.ptr;
        if (*static_cast<const Kind*>(p) == Kind::kControl) {
          if (!onControl(static_cast<Tag*>(p), evs_[i].events)) stop = true;
        } else {
          Dispatch(p, evs_[i].events);
        }
      }
      AfterEvents();
      if (stop) break;
    }
    CloseAll();
  }

  // ---- control operations (same process) ----------------------------------

  // Takes ownership of fd (a listening socket).
  void AddTcp(uint32_t id, int fd, const RuleSettings& s);
  // Takes ownership of fd (a bound UDP socket).
  void AddUdp(uint32_t id, int fd, const RuleSettings& s);
  // New connections/sessions use `s`; those to an old target are reset.
  void Update(uint32_t id, const RuleSettings& s);
  // Closes the rule's listener and every connection or session (RST).
  void Remove(uint32_t id);

  // Sets gPollMaxNs; the current window shrinks to fit.
  void SetPollMax(uint32_t ns);

 private:
  int Wait();
  int Sleep(int timeoutMs);
  void AdaptPoll(uint64_t waitedNs, bool contended);
  void AfterEvents();
  void CloseAll();
  int ComputeTimeout();
  void Dispatch(void* p, uint32_t events);
  void Reap();

  // ---- TCP (tcp.cc) ----
  void CloseListener(Listener* l);
  void Accept(Listener* l);
  void AcceptBatch(Listener* l);
  void ResumeListeners();
  void StartConnect(Listener* l, int cfd);
  void FinishConnect(Conn* c, uint32_t events);
  void Connected(Conn* c, bool guestReadable);
  bool QueueProxyHeader(Conn* c, int cfd);
  void RefuseClient(Conn* c, int err);
  void Expire();
  void ExpireListener(Listener* l, uint64_t now);
  void DropTimer(Conn* c);
  bool AcquirePipe(Pipe* p);
  void ReleasePipe(Pipe* p);
  enum class Sent { kAll, kBlocked, kFailed };
  Sent Deliver(Dir& d, int dst, uint32_t id, bool upward);
  void Pump(Conn* c, bool upward);
  void RunReady();
  void Abort(Conn* c, int bad);
  void Close(Conn* c, bool error = false);

  // ---- UDP (udp.cc) ----
  static int SweepEvery(const UdpRule* u);
  void CloseUdp(UdpRule* u);
  void EndSession(Session* se);
  Session* OpenSession(UdpRule* u, const sockaddr_storage& from, socklen_t fromLen, const std::string& key);
  void UdpFromClients(UdpRule* u);
  void UdpFromGuest(Session* se);
  void SweepUdp();
  void ReleaseUdpBuffers();

  // ---- idle ----
  void ReleaseCopyBuffer();  // tcp.cc
  void ReleaseWhenIdle();

  int epfd_ = -1;
  std::vector<epoll_event> evs_;
  uint32_t pollNs_ = 0;  // current busy-poll window (Wait), 0..gPollMaxNs
  bool spliced_ = false;  // the last batch spliced (a bulk transfer): Wait does not poll
  // Events the last epoll_wait returned: 2 or fewer with a listener among
  // them is light load (see AcceptBatch).
  int readyEvents_ = 0;
  // Connections with an event in the current epoch (about kEpochNs, see
  // Wait), counted once each through Conn::seen; crowded_: that count
  // reached kCrowded in this epoch or the last.
  uint64_t epochStart_ = 0;
  uint8_t epoch_ = 1;
  int busyConns_ = 0;
  bool crowded_ = false;
  std::unordered_map<uint32_t, Listener*> listeners_;
  std::unordered_map<uint32_t, UdpRule*> udp_;
  std::vector<Conn*> freeConns_;  // reused Conn objects (at most kFreeConns)
  std::vector<Conn*> ready_;
  std::vector<Conn*> deadConns_;
  std::vector<Listener*> deadListeners_;
  std::vector<Session*> deadSessions_;
  std::vector<UdpRule*> deadUdp_;
  std::vector<Pipe> pool_;
  bool udpBufsUsed_ = false;  // a datagram was read since ReleaseUdpBuffers
  bool copyBufUsed_ = false;  // the TCP copy buffer was read into since ReleaseCopyBuffer
  uint64_t idleSince_ = 0;    // NowMs() when the process was last seen without connections, the copy buffer used; 0: not idle
  size_t liveConns_ = 0;
};

}  // namespace relayd
