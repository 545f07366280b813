// The control protocol of vmm-relayd: one line per command, one line per
// answer. vmmd sends commands to the master; the master forwards the same
// lines (with a listener fd for TCP adds) to its workers. Both parse them
// here.
//
//   A <id> tcp|udp <laddr> <lport> <taddr> <tport> <timeoutMs|idleMs> <maxConns|maxSessions>
//        -> "OK <bound port>" | "ERR <syscall> <errno>"
//   T <id> <taddr> <tport>   retarget; connections/sessions to the old target are reset -> "OK"
//   D <id>                   close listener and every connection/session (RST) -> "OK"
//   F                        fds held by all relay processes (tests) -> "OK <n>"
// A line that does not parse is answered "ERR usage 22" (EINVAL).
#pragma once

#include <cstdint>
#include <string>

#include "addr.h"

namespace relayd {

enum class Op : uint8_t { kAdd, kRetarget, kRemove, kFds };

struct Command {
  Op op = Op::kFds;
  uint32_t id = 0;
  bool tcp = true;
  Addr listen;      // A
  Addr target;      // A, T
  int limitMs = 0;  // A: connect timeout (TCP) or idle time (UDP)
  uint64_t max = 0; // A: connections (TCP) or sessions (UDP)
};

// Parses one command line (without its newline); false when it is not one.
bool ParseCommand(const std::string& line, Command* out);

// The answer to a line that did not parse.
inline const char* kUsage = "ERR usage 22";

}  // namespace relayd
