// Master side: reads vmmd's commands, binds every listener itself (so bind
// errors come back with the syscall and errno), hands each worker its own
// SO_REUSEPORT listener, and forwards rule changes to the workers.
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
    if (err.empty()) {
      for (size_t i = 0; i < gWorkers.size(); i++) {
        std::string r = Ask(gWorkers[i], line, more[i]);
        if (r != "OK") {
          err = r;
          for (size_t j = 0; j < i; j++) Ask(gWorkers[j], "D " + std::to_string(cmd.id), -1);
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
  uint16_t port = BoundPort(fd0);
  if (cmd.tcp) gEngine->AddTcp(cmd.id, fd0, cmd.target, cmd.limitMs, cmd.max);
  else gEngine->AddUdp(cmd.id, fd0, cmd.target, cmd.limitMs, static_cast<size_t>(cmd.max));
  return "OK " + std::to_string(port);
}

std::string Execute(const std::string& line) {
  Command cmd;
  if (!ParseCommand(line, &cmd)) return kUsage;
  switch (cmd.op) {
    case Op::kAdd:
      return Add(cmd, line);
    case Op::kRetarget:
      for (auto& w : gWorkers) Ask(w, line, -1);
      gEngine->Retarget(cmd.id, cmd.target);
      return "OK";
    case Op::kRemove:
      for (auto& w : gWorkers) Ask(w, line, -1);
      gEngine->Remove(cmd.id);
      return "OK";
    case Op::kFds: {
      long n = CountFds();
      for (auto& w : gWorkers) {
        std::string r = Ask(w, "F", -1);
        if (r.rfind("OK ", 0) == 0) n += atol(r.c_str() + 3);
      }
      return "OK " + std::to_string(n);
    }
  }
  return kUsage;
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

}  // namespace

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
    WriteAll(1, Execute(line) + "\n");
  }
  if (gIn.size() > 65536) return false;  // not our protocol
  return true;
}

// Announces the relay to vmmd once it is running.
void SayReady(const std::string& line) { WriteAll(1, line + "\n"); }

}  // namespace relayd
