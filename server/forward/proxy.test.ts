// PROXY protocol v2 headers: the bytes of the spec's examples, a round
// trip through the parser, and IPv6 through both relays.
import { afterEach, describe, expect, it } from "vitest";
import { parseProxyV2, proxyV2Header } from "./proxy.js";
import { ForwardService } from "./service.js";
import { connect } from "../../test/helpers/forward.js";
import { CleanupStack } from "../cleanup.js";
import { freePort } from "../../test/helpers/net.js";
import { createServer, type Socket } from "node:net";

describe("proxyV2Header", () => {
  it("builds the TCP over IPv4 header byte by byte", () => {
    const h = proxyV2Header("192.0.2.1", 51000, "198.51.100.7", 8080)!;
    expect(h.toString("hex")).toBe(
      "0d0a0d0a000d0a515549540a" + "21" + "11" + "000c" + "c0000201" + "c6336407" + "c738" + "1f90",
    );
  });

  it.each([
    ["192.0.2.1", 1, "10.0.0.1", 65535, "tcp4"],
    ["2001:db8::1", 443, "::1", 8443, "tcp6"],
    ["::ffff:192.0.2.1", 5, "fe80::1", 6, "tcp6"],
  ] as const)("round-trips %s:%d -> %s:%d", (src, sp, dst, dp, family) => {
    const h = proxyV2Header(src, sp, dst, dp)!;
    const p = parseProxyV2(Buffer.concat([h, Buffer.from("payload")]))!;
    expect(p.family).toBe(family);
    expect([p.srcPort, p.dstPort, p.length]).toEqual([sp, dp, h.length]);
    const canon = (ip: string) => (ip.includes(":") ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip);
    expect([p.srcAddress, p.dstAddress]).toEqual([canon(src), canon(dst)]);
  });

  it("refuses mixed families and parses no header where there is none", () => {
    expect(proxyV2Header("192.0.2.1", 1, "::1", 2)).toBeUndefined();
    expect(parseProxyV2(Buffer.from("GET / HTTP/1.1\r\n\r\n"))).toBeUndefined();
  });
});

describe.each(["native", "sockets"] as const)("PROXY v2 over IPv6 (%s)", (kind) => {
  const cleanup = new CleanupStack();
  afterEach(() => cleanup.run());

  it("names the IPv6 client", async () => {
    const svc = new ForwardService({ relay: kind });
    cleanup.push(() => svc.close());
    const socks = new Set<Socket>();
    const guest = createServer((s) => {
      socks.add(s);
      s.pipe(s);
    });
    await new Promise<void>((r) => guest.listen(0, "::1", () => r()));
    cleanup.push(() => new Promise<void>((r) => (socks.forEach((s) => s.destroy()), guest.close(() => r()))));
    const lp = await freePort("tcp", "::1");
    const gp = (guest.address() as { port: number }).port;
    await svc.apply("vm", [{ protocol: "tcp", listenAddress: "::1", listenPort: lp, targetAddress: "::1", targetPort: gp, proxyProtocol: true }]);
    const c = await connect(lp, "::1");
    cleanup.push(() => c.destroy());
    const clientPort = c.localPort;
    const got: Buffer[] = [];
    c.on("data", (b: Buffer) => got.push(b));
    c.end("x");
    await new Promise<void>((r) => c.once("end", () => r()));
    expect(parseProxyV2(Buffer.concat(got))).toEqual({ family: "tcp6", srcAddress: "::1", srcPort: clientPort, dstAddress: "::1", dstPort: lp, length: 52 });
  });
});
