import { describe, expect, it } from "vitest";
import { localIpv4 } from "./addresses.js";

describe("host addresses from /proc/net/fib_trie", () => {
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
});
