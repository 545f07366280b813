#include "util.h"

#include <dirent.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <time.h>

namespace relayd {

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000 + static_cast<uint64_t>(ts.tv_nsec);
}

uint64_t NowMs() { return NowNs() / 1000000; }

void SetLingerZero(int fd) {
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

void SetNoDelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

void DropStartupPages() {
  // The ranges first, unmapped after: reading the program headers faults
  // their page back in.
  struct Ranges {
    uintptr_t from[8], to[8];
    int n = 0;
  } r;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* arg) -> int {
        auto* r = static_cast<Ranges*>(arg);
        const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
        for (int i = 0; i < info->dlpi_phnum && r->n < 8; i++) {
          const ElfW(Phdr)& ph = info->dlpi_phdr[i];
          if (ph.p_type != PT_LOAD || (ph.p_flags & PF_W) || ph.p_memsz == 0) continue;
          // Whole pages only: a page shared with a writable segment holds
          // data of this process that the file does not have.
          r->from[r->n] = (info->dlpi_addr + ph.p_vaddr + page - 1) & ~(page - 1);
          r->to[r->n] = (info->dlpi_addr + ph.p_vaddr + ph.p_memsz) & ~(page - 1);
          r->n++;
        }
        return 1;  // the first object is the executable itself
      },
      &r);
  for (int i = 0; i < r.n; i++)
    if (r.to[i] > r.from[i]) madvise(reinterpret_cast<void*>(r.from[i]), r.to[i] - r.from[i], MADV_DONTNEED);
}

int CountFds() {
  int n = 0;
  DIR* d = opendir("/proc/self/fd");
  if (!d) return -1;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - 1;  // the directory's own fd
}

std::vector<std::string> Split(const std::string& line) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && line[i] == ' ') i++;
    size_t j = i;
    while (j < line.size() && line[j] != ' ') j++;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

bool ParseU(const std::string& s, uint64_t max, uint64_t* out) {
  if (s.empty() || s.size() > 10) return false;
  uint64_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return false;
    v = v * 10 + static_cast<uint64_t>(ch - '0');
  }
  if (v > max) return false;
  *out = v;
  return true;
}

}  // namespace relayd
