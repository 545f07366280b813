#include "slots.h"

namespace relayd {

Slot* gSlots = nullptr;

void ResetSlot(Slot& s) {
  s.active = 0;
  s.total = 0;
  s.toGuest = 0;
  s.fromGuest = 0;
  s.sessions = 0;
  s.errors = 0;
  s.lastConnectErrno = 0;
  s.connectFailures = 0;
}

}  // namespace relayd
