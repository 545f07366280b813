#include "control.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <vector>

#include "slots.h"
#include "util.h"

namespace relayd {

namespace {

bool ParseFlags(const std::string& s, bool* proxy) {
  *proxy = false;
  if (s == "-") return true;
  if (s.empty() || s.size() > 8) return false;
  for (char ch : s) {
    if (ch == 'p') *proxy = true;
    else return false;
  }
  return true;
}

bool IsOwner(const std::string& s) {
  if (s == "-") return true;
  if (s.empty() || s.size() % 2 != 0 || s.size() > 2 * kOwnerMax) return false;
  for (char ch : s)
    if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'))) return false;
  return true;
}

}  // namespace

// Timeouts are ints, and a connection's connect deadline is a wrapping
// 32-bit millisecond clock (util.h: Ms32, Due): at most 2^31 - 1 ms.
constexpr uint64_t kMaxMs = INT32_MAX;

bool ParseCommand(const std::string& line, Command* out) {
  std::vector<std::string> a = Split(line);
  if (a.empty()) return false;
  uint64_t id = 0, lport = 0, tport = 0, t = 0, m = 0;
  if (a[0] == "A" && a.size() == 11) {
    bool tcp = a[2] == "tcp";
    if ((!tcp && a[2] != "udp") || !ParseU(a[1], kSlots - 1, &id) || id == 0 || !ParseU(a[4], 65535, &lport) ||
        !ParseU(a[6], 65535, &tport) || tport == 0 || !ParseU(a[7], kMaxMs, &t) || t == 0 ||
        !ParseU(a[8], 1u << 31, &m) || m == 0 || !ParseFlags(a[9], &out->proxy) || !IsOwner(a[10]))
      return false;
    if (!ParseAddr(a[3], static_cast<int>(lport), &out->listen) || !ParseAddr(a[5], static_cast<int>(tport), &out->target))
      return false;
    if (out->proxy && !tcp) return false;  // PROXY protocol headers are for TCP streams
    out->op = Op::kAdd;
    out->tcp = tcp;
    out->owner = a[10];
  } else if (a[0] == "T" && a.size() == 7) {
    if (!ParseU(a[1], kSlots - 1, &id) || id == 0 || !ParseU(a[3], 65535, &tport) || tport == 0 ||
        !ParseU(a[4], kMaxMs, &t) || t == 0 || !ParseU(a[5], 1u << 31, &m) || m == 0 || !ParseFlags(a[6], &out->proxy))
      return false;
    if (!ParseAddr(a[2], static_cast<int>(tport), &out->target)) return false;
    out->op = Op::kUpdate;
  } else if (a[0] == "D" && a.size() == 2) {
    if (!ParseU(a[1], kSlots - 1, &id) || id == 0) return false;
    out->op = Op::kRemove;
  } else if (a[0] == "S" && a.size() == 3) {
    if (a[1] != "-") {
      bool neg = a[1][0] == '-';
      uint64_t v = 0;
      if (!ParseU(neg ? a[1].substr(1) : a[1], neg ? 20 : 19, &v)) return false;
      out->setNice = true;
      out->nice = neg ? -static_cast<int>(v) : static_cast<int>(v);
    }
    if (a[2] != "-") {
      uint64_t us = 0;
      if (!ParseU(a[2], kMaxPollUs, &us)) return false;
      out->setPoll = true;
      out->pollUs = static_cast<uint32_t>(us);
    }
    out->op = Op::kSettings;
  } else if (a.size() == 1 && (a[0] == "L" || a[0] == "F" || a[0] == "Q")) {
    out->op = a[0] == "L" ? Op::kList : a[0] == "F" ? Op::kFds : Op::kQuit;
  } else {
    return false;
  }
  out->id = static_cast<uint32_t>(id);
  out->limitMs = static_cast<int>(t);
  out->max = m;
  return true;
}

std::string FormatIp(const Addr& a) {
  char buf[INET6_ADDRSTRLEN] = "";
  if (a.family() == AF_INET6) inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&a.ss)->sin6_addr, buf, sizeof buf);
  else inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&a.ss)->sin_addr, buf, sizeof buf);
  return buf;
}

}  // namespace relayd
