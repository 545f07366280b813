// Worker side of the control protocol: commands from the master over a
// SOCK_SEQPACKET socketpair, parsed by the same parser (control.h); a TCP
// add carries the worker's own listener with SCM_RIGHTS.
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "control.h"
#include "procs.h"
#include "util.h"

namespace relayd {

namespace {

// Handles one command from the master; false when the master is gone.
bool WorkerControl(int sock) {
  char buf[1024];
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
  Command cmd;
  std::string reply = "OK";
  if (!ParseCommand(buf, &cmd) || (cmd.op == Op::kAdd && (!cmd.tcp || fd < 0))) {
    reply = kUsage;
  } else if (cmd.op == Op::kAdd) {
    // SAFETY: fd arrived with SCM_RIGHTS; this process's copy now belongs to
    // the engine, which closes it when the rule is removed.
    gEngine->AddTcp(cmd.id, fd, {cmd.target, cmd.limitMs, cmd.max, cmd.proxy});
    fd = -1;
  } else if (cmd.op == Op::kUpdate) {
    gEngine->Update(cmd.id, {cmd.target, cmd.limitMs, cmd.max, cmd.proxy});
  } else if (cmd.op == Op::kRemove) {
    gEngine->Remove(cmd.id);
  } else if (cmd.op == Op::kFds) {
    reply = "OK " + std::to_string(CountFds());
  } else if (cmd.op == Op::kSettings) {
    std::string err = ApplySettings(cmd);
    if (!err.empty()) reply = err;
  } else {
    reply = kUsage;  // L and Q are the master's
  }
  if (fd >= 0) close(fd);
  if (send(sock, reply.data(), reply.size(), MSG_NOSIGNAL) < 0) return false;
  return true;
}

}  // namespace

void RunWorker(int sock) {
  Engine e;
  gEngine = &e;
  Tag tag{Kind::kControl, nullptr};
  e.Watch(sock, &tag, EPOLLIN);
  DropStartupPages();
  e.Run([&](Tag*, uint32_t) { return WorkerControl(sock); });
}

}  // namespace relayd
