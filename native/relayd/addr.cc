#include "addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

namespace relayd {

bool ParseAddr(const std::string& ip, int port, Addr* out) {
  memset(&out->ss, 0, sizeof out->ss);
  auto* a4 = reinterpret_cast<sockaddr_in*>(&out->ss);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&out->ss);
  if (inet_pton(AF_INET, ip.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(static_cast<uint16_t>(port));
    out->len = sizeof *a4;
    return true;
  }
  if (inet_pton(AF_INET6, ip.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(static_cast<uint16_t>(port));
    out->len = sizeof *a6;
    return true;
  }
  return false;
}

uint16_t PortOf(const sockaddr_storage& ss) {
  return ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port)
                                  : ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
}

void SetPort(Addr* a, uint16_t port) {
  if (a->family() == AF_INET6) reinterpret_cast<sockaddr_in6*>(&a->ss)->sin6_port = htons(port);
  else reinterpret_cast<sockaddr_in*>(&a->ss)->sin_port = htons(port);
}

std::string KeyOf(const sockaddr_storage& ss, socklen_t len) {
  return std::string(reinterpret_cast<const char*>(&ss), len);
}

}  // namespace relayd
