// Small helpers shared by every part of vmm-relayd.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace relayd {

constexpr size_t kBuf = 64 * 1024;  // recv buffer; a full read switches to splice

// Milliseconds and nanoseconds of CLOCK_MONOTONIC.
uint64_t NowMs();
uint64_t NowNs();

// NowMs() truncated to 32 bits (wraps every ~49.7 days), for deadlines
// less than 2^31 ms ahead; compare them with Due().
inline uint32_t Ms32(uint64_t ms) { return static_cast<uint32_t>(ms); }

// Whether the Ms32 `deadline` is at or before `now` (wrap-safe).
inline bool Due(uint32_t deadline, uint32_t now) { return static_cast<int32_t>(deadline - now) <= 0; }

// The Ms32 `deadline` as a NowMs() value, given `now` (NowMs()); past
// deadlines give `now`.
inline uint64_t Unwrap(uint32_t deadline, uint64_t now) {
  int32_t ahead = static_cast<int32_t>(deadline - Ms32(now));
  return ahead > 0 ? now + static_cast<uint64_t>(ahead) : now;
}

// SO_LINGER {1, 0}: close() sends an RST.
void SetLingerZero(int fd);

// TCP_NODELAY on.
void SetNoDelay(int fd);

// Unmaps the pages of this executable's read-only segments (code and
// constants) from this process. Call once, before the event loop: whatever
// start-up ran (and fault-around mapped with it) stops counting in RSS; the
// pages the loop runs fault back in from the page cache. Segments that were
// ever writable (data, RELRO) are left alone.
void DropStartupPages();

// fds this process holds (from /proc/self/fd), -1 when unreadable.
int CountFds();

// Space-separated fields of a line (runs of spaces are one separator).
std::vector<std::string> Split(const std::string& line);

// A decimal of at most 10 digits, at most `max`.
bool ParseU(const std::string& s, uint64_t max, uint64_t* out);

}  // namespace relayd
