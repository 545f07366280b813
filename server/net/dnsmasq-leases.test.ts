import { describe, expect, it } from "vitest";
import { parseLeaseFile } from "./dnsmasq-leases.js";

describe("parseLeaseFile", () => {
  it.each([
    { name: "empty file", text: "", leases: [], skipped: 0 },
    {
      name: "one lease with hostname and client id",
      text: "1767225600 52:54:00:97:b1:d8 10.20.0.57 web 01:52:54:00:97:b1:d8\n",
      leases: [{ expiresUnix: 1767225600, mac: "52:54:00:97:b1:d8", ip: "10.20.0.57", hostname: "web" }],
      skipped: 0,
    },
    {
      name: "no hostname, no client id, never expires, upper-case MAC",
      text: "0 52:54:00:AA:BB:CC 10.20.0.58 * *\n",
      leases: [{ expiresUnix: 0, mac: "52:54:00:aa:bb:cc", ip: "10.20.0.58", hostname: "" }],
      skipped: 0,
    },
    {
      name: "four fields (no client id column) and blank lines",
      text: "\n1767225600 52:54:00:00:00:01 10.20.0.60 a\n\n",
      leases: [{ expiresUnix: 1767225600, mac: "52:54:00:00:00:01", ip: "10.20.0.60", hostname: "a" }],
      skipped: 0,
    },
    {
      name: "IPv6 section after the duid line is not read",
      text: "1767225600 52:54:00:00:00:01 10.20.0.60 a *\nduid 00:01:00:01:2c:aa\n1767225600 1234 fd00::5 a 00:01\n",
      leases: [{ expiresUnix: 1767225600, mac: "52:54:00:00:00:01", ip: "10.20.0.60", hostname: "a" }],
      skipped: 0,
    },
    {
      name: "non-Ethernet hardware address, bad IP, bad expiry, injected hostname, extra fields: skipped",
      text: [
        "1767225600 06-52:54:00:00:00:01 10.20.0.61 b *",
        "1767225600 52:54:00:00:00:02 10.20.0.300 c *",
        "soon 52:54:00:00:00:03 10.20.0.62 d *",
        "1767225600 52:54:00:00:00:04 10.20.0.63 e\"vil *",
        "1767225600 52:54:00:00:00:05 10.20.0.64 f * extra",
        "1767225600 52:54:00:00:00:06 10.20.0.65 ok *",
      ].join("\n"),
      leases: [{ expiresUnix: 1767225600, mac: "52:54:00:00:00:06", ip: "10.20.0.65", hostname: "ok" }],
      skipped: 5,
    },
  ])("$name", ({ text, leases, skipped }) => {
    expect(parseLeaseFile(text)).toEqual({ leases, skipped });
  });

  it("reads a line dnsmasq 2.90 wrote", () => {
    // Written by dnsmasq 2.90 for the test guest (udhcpc sends its MAC as client id).
    const text = "1796623693 52:54:00:12:34:56 10.66.0.57 vmm-guest 01:52:54:00:12:34:56\n";
    expect(parseLeaseFile(text)).toEqual({ leases: [{ expiresUnix: 1796623693, mac: "52:54:00:12:34:56", ip: "10.66.0.57", hostname: "vmm-guest" }], skipped: 0 });
  });
});
