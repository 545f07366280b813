// Socket addresses: IP literals parsed and printed, ports read and set.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

namespace relayd {

struct Addr {
  sockaddr_storage ss{};
  socklen_t len = 0;
  int family() const { return ss.ss_family; }
};

// An IPv4 or IPv6 literal and a port; false when `ip` is neither.
bool ParseAddr(const std::string& ip, int port, Addr* out);

// The port of an AF_INET or AF_INET6 address (host order).
uint16_t PortOf(const sockaddr_storage& ss);

// Sets the port of an AF_INET or AF_INET6 address.
void SetPort(Addr* a, uint16_t port);

// The bytes of an address, as a map key.
std::string KeyOf(const sockaddr_storage& ss, socklen_t len);

}  // namespace relayd
