import { describe, expect, it } from "vitest";
import { inet6Addresses, localIpv4 } from "./addresses.js";

describe("host addresses from /proc", () => {
  it("localIpv4: the /32 host LOCAL leaves of fib_trie, each once, not /8 or broadcast", () => {
    const trie = `Main:
  +-- 0.0.0.0/0 3 0 5
     +-- 10.57.0.0/24 2 0 2
        |-- 10.57.0.0
           /24 link UNICAST
        |-- 10.57.0.1
           /32 host LOCAL
        |-- 10.57.0.255
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 10.57.0.1
           /32 host LOCAL
`;
    expect(localIpv4(trie)).toEqual(["10.57.0.1", "127.0.0.1"]);
    expect(localIpv4("")).toEqual([]);
  });

  it("inet6Addresses: RFC 5952 text (as Node writes it) and the interface", () => {
    const text = [
      "00000000000000000000000000000001 01 80 10 80       lo",
      "fe80000000000000b4d3c1fffe2a9b01 05 40 20 80  br-hostpol",
      "fd000001000000000000000000000000 06 40 00 80   vmbr0",
      "20010db8000000010000000000000001 07 40 00 80   eth0",
      "garbage",
    ].join("\n");
    expect(inet6Addresses(text)).toEqual([
      ["::1", "lo"],
      ["fe80::b4d3:c1ff:fe2a:9b01", "br-hostpol"],
      ["fd00:1::", "vmbr0"],
      ["2001:db8:0:1::1", "eth0"],
    ]);
  });
});
