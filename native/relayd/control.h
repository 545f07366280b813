// The control protocol of vmm-relayd: one line per command, one line per
// answer (L: one line per rule, then the answer). vmmd sends commands to the
// master over the control socket (master.cc); the master forwards the same
// lines (with a listener fd for TCP adds) to its workers. Both parse them
// here, with this one parser.
//
// On connect the master greets with
//   HELLO <protocol> <pid>,<pid>... <counters fd>
// (every relay process, master first; the counter file is the master's fd
// <counters fd>, opened by vmmd as /proc/<master pid>/fd/<counters fd>), or
// refuses with "BUSY <pid>" (another controller is connected) or
// "ERR peer 1" (EPERM: the peer is neither root nor the relay's user).
// The HELLO line keeps this form in every protocol version, and so does Q,
// so a vmmd can always tell a relay of another protocol to quit.
//
//   A <id> tcp|udp <laddr> <lport> <taddr> <tport> <timeoutMs|idleMs> <maxConns|maxSessions> <flags> <owner>
//        -> "OK <bound port>" | "ERR <syscall> <errno>"
//   T <id> <taddr> <tport> <timeoutMs|idleMs> <max> <flags>
//        update: new connections/sessions use these; those to an old
//        target are reset -> "OK"
//   D <id>   close listener and every connection/session (RST) -> "OK"
//   L        the rule table: "R <the fields of A, lport as bound>" per rule, then "OK <n>"
//   F        fds held by all relay processes (tests) -> "OK <n>"
//   S <nice|-> <pollUs|->
//            settings of every relay process ("-": unchanged): its nice
//            value (-20..19) and its longest busy poll (0..1000 µs), as
//            --nice and --poll-us at start -> "OK", or "ERR setpriority
//            <errno>" when a process could not take the nice value (the
//            busy poll is set regardless)
//   Q        close everything and exit -> "OK"
// <flags>: "-" or letters: "p" sends a PROXY protocol v2 header to the
// guest first (TCP). <owner>: "-" or the hex of an opaque tag vmmd keeps
// with the rule (at most kOwnerMax bytes), returned by L.
// A line that does not parse is answered "ERR usage 22" (EINVAL); a worker
// that does not answer makes the master answer "ERR worker <errno>" and
// exit, so that vmmd restarts the whole relay with its rules.
#pragma once

#include <cstdint>
#include <string>

#include "addr.h"

namespace relayd {

// Version of this protocol and of the Slot layout (slots.h).
constexpr int kProtocol = 2;
constexpr size_t kOwnerMax = 256;
constexpr uint64_t kMaxPollUs = 1000;  // --poll-us and S

enum class Op : uint8_t { kAdd, kUpdate, kRemove, kList, kFds, kQuit, kSettings };

struct Command {
  Op op = Op::kFds;
  uint32_t id = 0;
  bool tcp = true;
  Addr listen;         // A
  Addr target;         // A, T
  int limitMs = 0;     // A, T: connect timeout (TCP) or idle time (UDP)
  uint64_t max = 0;    // A, T: connections (TCP) or sessions (UDP)
  bool proxy = false;  // A, T: flag "p"
  std::string owner;   // A: the hex text ("-": none)
  bool setNice = false;  // S
  int nice = 0;          // S
  bool setPoll = false;  // S
  uint32_t pollUs = 0;   // S
};

// Parses one command line (without its newline); false when it is not one.
bool ParseCommand(const std::string& line, Command* out);

// The text of an IP address (no port).
std::string FormatIp(const Addr& a);

// The flags field of a command.
inline std::string FormatFlags(bool proxy) { return proxy ? "p" : "-"; }

// The answer to a line that did not parse.
inline const char* kUsage = "ERR usage 22";

}  // namespace relayd
