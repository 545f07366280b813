#include "proxy.h"

#include <netinet/in.h>
#include <string.h>

namespace relayd {

size_t ProxyV2Header(const sockaddr_storage& client, const sockaddr_storage& local, unsigned char* out) {
  static const unsigned char kSig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
  if (client.ss_family != local.ss_family) return 0;
  memcpy(out, kSig, sizeof kSig);
  out[12] = 0x21;  // version 2, command PROXY
  size_t n = 16;
  if (client.ss_family == AF_INET) {
    auto* c = reinterpret_cast<const sockaddr_in*>(&client);
    auto* l = reinterpret_cast<const sockaddr_in*>(&local);
    out[13] = 0x11;  // AF_INET, STREAM
    memcpy(out + n, &c->sin_addr, 4);
    memcpy(out + n + 4, &l->sin_addr, 4);
    memcpy(out + n + 8, &c->sin_port, 2);  // network order already
    memcpy(out + n + 10, &l->sin_port, 2);
    n += 12;
  } else if (client.ss_family == AF_INET6) {
    auto* c = reinterpret_cast<const sockaddr_in6*>(&client);
    auto* l = reinterpret_cast<const sockaddr_in6*>(&local);
    out[13] = 0x21;  // AF_INET6, STREAM
    memcpy(out + n, &c->sin6_addr, 16);
    memcpy(out + n + 16, &l->sin6_addr, 16);
    memcpy(out + n + 32, &c->sin6_port, 2);
    memcpy(out + n + 34, &l->sin6_port, 2);
    n += 36;
  } else {
    return 0;
  }
  out[14] = static_cast<unsigned char>((n - 16) >> 8);
  out[15] = static_cast<unsigned char>((n - 16) & 0xff);
  return n;
}

}  // namespace relayd
