// PROXY protocol version 2 (haproxy's proxy-protocol.txt, section 2.2): the
// binary header a proxy sends first on a forwarded TCP connection, naming the
// client's address and the address it connected to, so the guest learns who
// the client is although its peer is the relay.
#pragma once

#include <sys/socket.h>

#include <cstddef>

namespace relayd {

// The longest header we build (IPv6): 16 + 36 bytes.
constexpr size_t kProxyHeaderMax = 52;

// Writes the header for a TCP connection from `client` to `local` (both
// AF_INET or both AF_INET6) into `out`; returns its length, or 0 when the
// families differ or are neither (then a LOCAL header is not sent either:
// the caller resets the connection).
size_t ProxyV2Header(const sockaddr_storage& client, const sockaddr_storage& local, unsigned char* out);

}  // namespace relayd
