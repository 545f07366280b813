// Small helpers shared by every part of vmm-relayd.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace relayd {

constexpr size_t kBuf = 64 * 1024;  // recv buffer; a full read switches to splice

// Milliseconds of CLOCK_MONOTONIC.
uint64_t NowMs();

// SO_LINGER {1, 0}: close() sends an RST.
void SetLingerZero(int fd);

// TCP_NODELAY on.
void SetNoDelay(int fd);

// fds this process holds (from /proc/self/fd), -1 when unreadable.
int CountFds();

// Space-separated fields of a line (runs of spaces are one separator).
std::vector<std::string> Split(const std::string& line);

// A decimal of at most 10 digits, at most `max`.
bool ParseU(const std::string& s, uint64_t max, uint64_t* out);

}  // namespace relayd
