import { describe, expect, it } from "vitest";
import { ValidationError } from "../errors.js";
import { existsSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { startProcess, workDir } from "../../test/guest/harness.js";
import { CleanupStack } from "../cleanup.js";
import { useNetnsSysfs } from "../../test/guest/netns.js";
import { waitUntil } from "../host/process.js";
import { buildPasstArgv, passtPortSpec, preparePasstRuntimeDir, type PasstOptions, type PasstPortSpec } from "./passt.js";

const base: PasstOptions = { socketPath: "/run/vm-1/passt/passt.sock", ports: [] };

function fieldsOf(o: PasstOptions): string[] {
  try {
    buildPasstArgv(o);
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return (e as ValidationError).problems.map((p) => p.field);
  }
  throw new Error("expected a ValidationError");
}

describe("passtPortSpec", () => {
  it.each([
    { s: { protocol: "tcp", hostPort: 8080, guestPort: 80 }, out: "8080:80" },
    { s: { protocol: "tcp", hostAddress: "127.0.0.1", hostPort: 18080, guestPort: 8080 }, out: "127.0.0.1/18080:8080" },
    { s: { protocol: "udp", hostAddress: "::1", hostPort: 53, guestPort: 5353 }, out: "::1/53:5353" },
  ] as { s: PasstPortSpec; out: string }[])("$out", ({ s, out }) => {
    expect(passtPortSpec(s)).toBe(out);
  });
});

describe("buildPasstArgv", () => {
  it("builds a minimal command line", () => {
    expect(buildPasstArgv(base)).toEqual([
      "--foreground", "--quiet", "--socket", "/run/vm-1/passt/passt.sock", "--ipv4-only",
      "--no-dhcp-dns", "--no-dhcp-search",
      "--tcp-ports", "none", "--udp-ports", "none",
    ]);
  });

  it("passes every option", () => {
    const argv = buildPasstArgv({
      ...base,
      pidFile: "/run/vm-1/passt/passt.pid",
      logFile: "/run/vm-1/passt.log",
      runAs: "nobody",
      ipv4Only: false,
      interface: "lo",
      address: "10.0.2.15",
      prefixLength: 24,
      gateway: "10.0.2.2",
      macAddr: "02-00-00-00-00-01",
      noDhcpDns: false,
      noIcmp: true,
      ports: [
        { protocol: "tcp", hostAddress: "127.0.0.1", hostPort: 18080, guestPort: 8080 },
        { protocol: "udp", hostPort: 5353, guestPort: 53 },
      ],
    });
    expect(argv).toEqual([
      "--foreground", "--quiet", "--socket", "/run/vm-1/passt/passt.sock",
      "--pid", "/run/vm-1/passt/passt.pid",
      "--log-file", "/run/vm-1/passt.log",
      "--runas", "nobody",
      "--interface", "lo", "--address", "10.0.2.15", "--netmask", "24", "--gateway", "10.0.2.2",
      "--mac-addr", "02:00:00:00:00:01",
      "--no-icmp",
      "--tcp-ports", "127.0.0.1/18080:8080",
      "--udp-ports", "5353:53",
    ]);
  });

  it("passes one argument per port, also for 1,000 ports", () => {
    const ports: PasstPortSpec[] = [];
    for (let i = 0; i < 1000; i++) {
      ports.push({ protocol: i % 2 ? "udp" : "tcp", hostAddress: "127.0.0.1", hostPort: 20000 + i, guestPort: 1000 + i });
    }
    const argv = buildPasstArgv({ ...base, ports });
    const tcp = argv.flatMap((a, i) => (a === "--tcp-ports" ? [argv[i + 1]!] : []));
    const udp = argv.flatMap((a, i) => (a === "--udp-ports" ? [argv[i + 1]!] : []));
    expect(tcp).toHaveLength(500);
    expect(udp).toHaveLength(500);
    expect(tcp[0]).toBe("127.0.0.1/20000:1000");
    expect(udp[499]).toBe("127.0.0.1/20999:1999");
    // never comma-joined
    expect(argv.some((a) => a.includes(","))).toBe(false);
  });

  it.each([
    { name: "relative socket", o: { ...base, socketPath: "passt.sock" }, field: "socket_path" },
    { name: "socket path too long", o: { ...base, socketPath: "/" + "s".repeat(120) }, field: "socket_path" },
    { name: "newline in the log path", o: { ...base, logFile: "/x\n" }, field: "log_file" },
    { name: "bad runas", o: { ...base, runAs: "root;id" }, field: "run_as" },
    { name: "bad interface", o: { ...base, interface: "eth0 x" }, field: "interface" },
    { name: "bad address", o: { ...base, address: "10.0.2" }, field: "address" },
    { name: "bad gateway", o: { ...base, gateway: "::1" }, field: "gateway" },
    { name: "bad prefix", o: { ...base, prefixLength: 33 }, field: "prefix_length" },
    { name: "bad MAC", o: { ...base, macAddr: "02:00" }, field: "mac_addr" },
    {
      name: "spec injection through the address",
      o: { ...base, ports: [{ protocol: "tcp", hostAddress: "127.0.0.1/1,~2", hostPort: 1, guestPort: 1 }] },
      field: "ports[0].host_address",
    },
    { name: "port 0", o: { ...base, ports: [{ protocol: "tcp", hostPort: 0, guestPort: 1 }] }, field: "ports[0].host_port" },
    { name: "guest port too big", o: { ...base, ports: [{ protocol: "udp", hostPort: 1, guestPort: 65536 }] }, field: "ports[0].guest_port" },
    { name: "bad protocol", o: { ...base, ports: [{ protocol: "sctp", hostPort: 1, guestPort: 1 }] }, field: "ports[0].protocol" },
    {
      name: "duplicate host port",
      o: {
        ...base,
        ports: [
          { protocol: "tcp", hostPort: 1, guestPort: 1 },
          { protocol: "tcp", hostPort: 1, guestPort: 2 },
        ],
      },
      field: "ports[1].host_port",
    },
  ] as { name: string; o: PasstOptions; field: string }[])("refuses $name", ({ o, field }) => {
    expect(fieldsOf(o)).toContain(field);
  });
});

describe("real passt with 1,000 forwards (private namespace)", () => {
  it("binds every port and its socket", async () => {
    useNetnsSysfs();
    const cleanup = new CleanupStack();
    try {
      const dir = workDir("passt1000");
      cleanup.push(`remove ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
      const socketPath = join(dir, "passt", "passt.sock");
      preparePasstRuntimeDir(socketPath);
      expect(statSync(join(dir, "passt")).mode & 0o777).toBe(0o700);
      const ports: PasstPortSpec[] = [];
      for (let i = 0; i < 1000; i++) ports.push({ protocol: "tcp", hostAddress: "127.0.0.1", hostPort: 30000 + i, guestPort: 1000 + i });
      const argv = buildPasstArgv({
        socketPath,
        ports,
        logFile: join(dir, "passt.log"),
        // a namespace without a default route: passt needs its identity spelled out
        interface: "lo",
        address: "10.0.2.15",
        prefixLength: 24,
        gateway: "10.0.2.2",
        macAddr: "02:00:00:00:00:01",
      });
      const out = join(dir, "passt.out");
      await startProcess(cleanup, "passt", ["passt", ...argv], out);
      const listening = () =>
        readFileSync("/proc/net/tcp", "utf8")
          .split("\n")
          .filter((l) => / 0100007F:([0-9A-F]{4}) 00000000:0000 0A /.test(l))
          .map((l) => parseInt(/ 0100007F:([0-9A-F]{4}) /.exec(l)![1]!, 16))
          .filter((p) => p >= 30000 && p < 31000).length;
      const ok = await waitUntil(() => existsSync(socketPath) && listening() === 1000, 10_000);
      expect(ok, `passt: socket ${existsSync(socketPath)}, ${listening()} ports; ${existsSync(out) ? readFileSync(out, "utf8") : ""}`).toBe(true);
    } finally {
      await cleanup.runOrThrow();
    }
  });
});
