#include "control.h"

#include <vector>

#include "slots.h"
#include "util.h"

namespace relayd {

bool ParseCommand(const std::string& line, Command* out) {
  std::vector<std::string> a = Split(line);
  if (a.empty()) return false;
  uint64_t id = 0, lport = 0, tport = 0, t = 0, m = 0;
  if (a[0] == "A" && a.size() == 9) {
    bool tcp = a[2] == "tcp";
    if ((!tcp && a[2] != "udp") || !ParseU(a[1], kSlots - 1, &id) || id == 0 || !ParseU(a[4], 65535, &lport) ||
        !ParseU(a[6], 65535, &tport) || tport == 0 || !ParseU(a[7], 1u << 31, &t) || t == 0 ||
        !ParseU(a[8], 1u << 31, &m) || m == 0)
      return false;
    if (!ParseAddr(a[3], static_cast<int>(lport), &out->listen) || !ParseAddr(a[5], static_cast<int>(tport), &out->target))
      return false;
    out->op = Op::kAdd;
    out->tcp = tcp;
    out->limitMs = static_cast<int>(t);
    out->max = m;
  } else if (a[0] == "T" && a.size() == 4) {
    if (!ParseU(a[1], kSlots - 1, &id) || id == 0 || !ParseU(a[3], 65535, &tport) || tport == 0) return false;
    if (!ParseAddr(a[2], static_cast<int>(tport), &out->target)) return false;
    out->op = Op::kRetarget;
  } else if (a[0] == "D" && a.size() == 2) {
    if (!ParseU(a[1], kSlots - 1, &id) || id == 0) return false;
    out->op = Op::kRemove;
  } else if (a[0] == "F" && a.size() == 1) {
    out->op = Op::kFds;
  } else {
    return false;
  }
  out->id = static_cast<uint32_t>(id);
  return true;
}

}  // namespace relayd
