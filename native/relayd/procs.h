// The relay's processes: the master talks to vmmd and binds every socket;
// workers get their listeners and commands from the master over a
// SOCK_SEQPACKET socketpair (with SCM_RIGHTS).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "engine.h"

namespace relayd {

struct Worker {
  pid_t pid;
  int sock;  // the master's end of the socketpair
};

extern Engine* gEngine;              // this process's engine
extern std::vector<Worker> gWorkers; // master only

// Master: handles a readable control channel (vmmd's commands on stdin);
// false when vmmd closed it.
bool MasterControl();

// Master: writes the first line vmmd waits for ("READY <pid>...").
void SayReady(const std::string& line);

// Worker: handles one command from the master on `sock`; false when the
// master is gone.
bool WorkerControl(int sock);

}  // namespace relayd
