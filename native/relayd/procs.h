// The relay's processes: the master talks to vmmd over the control socket
// and binds every socket; workers get their listeners and commands from the
// master over a SOCK_SEQPACKET socketpair (with SCM_RIGHTS).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "control.h"
#include "engine.h"

namespace relayd {

struct Worker {
  pid_t pid;
  int sock;  // the master's end of the socketpair
  Tag tag;   // hangup of `sock`: the worker died
};

extern Engine* gEngine;               // this process's engine
extern std::vector<Worker> gWorkers;  // master only

// What the master serves: the control socket's directory and the counter
// file (a memfd) whose fd number HELLO announces.
struct MasterSetup {
  std::string dir;
  int countersFd = -1;
};

// Master: serves the control socket in `setup.dir` until told to quit (Q,
// SIGTERM, SIGINT), until its control socket is removed, or until it has no
// controller and no rule (30 s after start, or when the controller leaves).
// Returns the exit status.
int RunMaster(const MasterSetup& setup);

// Worker: serves commands from the master on `sock` until the master is gone.
void RunWorker(int sock);

// Applies the settings of an S command to this process (main.cc): "" or
// the error answer.
std::string ApplySettings(const Command& cmd);

}  // namespace relayd
