// Real clients against a real daemon: the Go client tests (connect-go and
// grpc-go), the Python client tests (grpcio), grpcurl and `buf curl` through
// server reflection, and curl speaking the Connect JSON protocol for the
// DHCP-lease hook's call. Everything they need is prepared by
// scripts/setup-clients.sh (outside the namespace); a missing tool fails.
//
// Two daemons: one with admin and lease tokens and a bridge subnet (for lease
// reports), one without authentication.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { client, ROOT, startDaemon, transport, type DaemonHandle } from "../helpers/daemon.js";
import { NetworkingMode, VmmService } from "../../gen/ts/vmm/v1/vmm_pb.js";

const ADMIN = "admin-token-clients-0123456789";
const LEASE = "lease-token-clients-0123456789";
const GRPCURL = join(ROOT, ".tools", "bin", "grpcurl");
const BUF = join(ROOT, "node_modules", ".bin", "buf");
const PYTHON = join(ROOT, ".tools", "venv", "bin", "python");
const SETUP_HINT = "run `bash scripts/setup-clients.sh` (outside the namespace) first";

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program without a shell; never rejects (the result says how it went). */
function run(file: string, args: string[], opts: { cwd?: string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Result> {
  return new Promise((resolve) => {
    const p = spawn(file, args, { cwd: opts.cwd ?? ROOT, env: { ...process.env, ...opts.env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      stderr += `\n[killed after ${opts.timeoutMs ?? 60_000} ms]`;
      p.kill("SIGKILL");
    }, opts.timeoutMs ?? 60_000);
    p.on("error", (e) => {
      clearTimeout(timer);
      resolve({ code: -1, stdout, stderr: `${stderr}\nspawn ${file}: ${e.message}` });
    });
    p.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Expects exit 0, showing the command's whole output when it is not. */
function ok(r: Result, what: string): string {
  expect(r.code, `${what} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`).toBe(0);
  return r.stdout;
}

let authed: DaemonHandle;
let open: DaemonHandle;

beforeAll(async () => {
  for (const [tool, path] of [["grpcurl", GRPCURL], ["buf", BUF], ["python venv", PYTHON]]) {
    if (!existsSync(path!)) throw new Error(`${tool} missing at ${path}: ${SETUP_HINT}`);
  }
  [authed, open] = await Promise.all([
    startDaemon({
      toml: [
        "[auth]",
        `tokens = ["${ADMIN}"]`,
        `lease_tokens = ["${LEASE}"]`,
        "[networking]",
        'bridge = "br-test"',
        'bridge_subnets = { "br-test" = "10.77.0.0/24" }',
      ].join("\n"),
    }),
    startDaemon(),
  ]);
});

afterAll(async () => {
  for (const d of [authed, open]) {
    await d?.stop();
    d?.cleanup();
  }
});

function clientEnv(d: DaemonHandle, token: string): Record<string, string> {
  return { VMM_URL: `http://${d.tcp}`, VMM_SOCKET: d.socket, VMM_TOKEN: token };
}

describe.each([
  ["with tokens", () => authed, ADMIN],
  ["without auth", () => open, ""],
] as const)("client packages %s", (_, daemon, token) => {
  it("go test ./... in clients/go (connect-go and grpc-go, TCP and unix socket)", async () => {
    const r = await run("go", ["test", "-count=1", "./..."], {
      cwd: join(ROOT, "clients", "go"),
      // Offline: everything was downloaded and compiled by setup-clients.sh.
      env: { ...clientEnv(daemon(), token), GOFLAGS: "-mod=readonly -buildvcs=false", GOPROXY: "off", GOTOOLCHAIN: "local" },
      timeoutMs: 240_000,
    });
    ok(r, "go test");
    expect(r.stdout).toMatch(/^ok\s+vmm\.dev\/vmm\/clients\/go\s/m);
  }, 300_000);

  it("pytest clients/python (grpcio, TCP and unix socket)", async () => {
    const r = await run(PYTHON, ["-m", "pytest", "-q", "-p", "no:cacheprovider", "clients/python"], {
      env: { ...clientEnv(daemon(), token), PYTHONDONTWRITEBYTECODE: "1" },
      timeoutMs: 120_000,
    });
    ok(r, "pytest");
    expect(r.stdout).toMatch(/\d+ passed/);
    expect(r.stdout).not.toMatch(/skipped|failed|error/);
  }, 150_000);
});

describe("grpcurl", () => {
  const auth = ["-H", `authorization: Bearer ${ADMIN}`];
  const targets = () => [
    { via: "tcp", addr: ["-plaintext", authed.tcp] },
    { via: "unix", addr: ["-plaintext", "-unix", authed.socket] },
  ];

  it("lists the services through reflection (TCP and unix socket)", async () => {
    for (const t of targets()) {
      const out = ok(await run(GRPCURL, [...auth, ...t.addr, "list"]), `grpcurl list (${t.via})`);
      const services = out.trim().split("\n");
      expect(services, t.via).toEqual(expect.arrayContaining(["vmm.v1.VmmService", "vmm.v1.NetworkService", "grpc.health.v1.Health"]));
    }
  });

  it("describes VmmService", async () => {
    const out = ok(await run(GRPCURL, [...auth, "-plaintext", authed.tcp, "describe", "vmm.v1.VmmService"]), "grpcurl describe");
    expect(out).toContain("vmm.v1.VmmService is a service");
    for (const m of ["CreateVm", "UpdateVm", "StartVm", "StopVm", "RemoveVm", "ListVms", "GetInfo", "ReportDhcpLease", "GetMeta"])
      expect(out).toMatch(new RegExp(`rpc ${m} \\( \\.vmm\\.v1\\.${m}Request \\) returns \\( \\.vmm\\.v1\\.${m}Response \\)`));
    expect(out).toMatch(/rpc WatchEvents \( \.vmm\.v1\.WatchEventsRequest \) returns \( stream \.vmm\.v1\.WatchEventsResponse \)/);
    const msg = ok(await run(GRPCURL, [...auth, "-plaintext", authed.tcp, "describe", "vmm.v1.UpdateVmRequest"]), "grpcurl describe message");
    expect(msg).toMatch(/optional string name = 2;/);
  });

  it("calls GetMeta and ListVms (TCP and unix socket)", async () => {
    const c = client(VmmService, transport(authed, "connect", "tcp", { token: ADMIN }));
    await c.createVm({ id: "grpcurl-vm", config: { name: "seen by grpcurl" } });
    try {
      for (const t of targets()) {
        const meta = JSON.parse(ok(await run(GRPCURL, [...auth, "-d", "{}", ...t.addr, "vmm.v1.VmmService/GetMeta"]), `GetMeta (${t.via})`));
        expect(meta.version).toMatch(/^\d+\.\d+\.\d+/);
        expect(meta.authRequired).toBe(true);
        const list = JSON.parse(
          ok(await run(GRPCURL, [...auth, "-d", '{"ids":["grpcurl-vm"]}', ...t.addr, "vmm.v1.VmmService/ListVms"]), `ListVms (${t.via})`),
        );
        expect(list.vms).toHaveLength(1);
        expect(list.vms[0]).toMatchObject({ id: "grpcurl-vm", name: "seen by grpcurl", status: "VM_STATUS_STOPPED" });
        expect(list.totalSize).toBe(1);
      }
    } finally {
      await c.removeVm({ id: "grpcurl-vm" });
    }
  });

  it("is refused without a token, with the gRPC code", async () => {
    const r = await run(GRPCURL, ["-plaintext", authed.tcp, "list"]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Unauthenticated/);
    const wrong = await run(GRPCURL, ["-H", `authorization: Bearer ${LEASE}`, "-d", "{}", "-plaintext", authed.tcp, "vmm.v1.VmmService/GetMeta"]);
    expect(wrong.code).not.toBe(0);
    expect(wrong.stderr).toMatch(/PermissionDenied|Unauthenticated/);
  });

  it("checks health without an RPC token (reflection still needs one)", async () => {
    for (const t of targets()) {
      for (const service of ["", "vmm.v1.VmmService", "vmm.v1.NetworkService"]) {
        const out = ok(
          await run(GRPCURL, ["-reflect-header", `authorization: Bearer ${ADMIN}`, "-d", JSON.stringify({ service }), ...t.addr, "grpc.health.v1.Health/Check"]),
          `Health/Check ${service} (${t.via})`,
        );
        expect(JSON.parse(out)).toEqual({ status: "SERVING" });
      }
    }
    const unknown = await run(GRPCURL, ["-reflect-header", `authorization: Bearer ${ADMIN}`, "-d", '{"service":"no.such.Service"}', "-plaintext", authed.tcp, "grpc.health.v1.Health/Check"]);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toMatch(/NotFound/);
  });

  it("works against the daemon without auth", async () => {
    const out = ok(await run(GRPCURL, ["-plaintext", open.tcp, "list"]), "grpcurl list (no auth)");
    expect(out).toContain("vmm.v1.VmmService");
    const meta = JSON.parse(ok(await run(GRPCURL, ["-plaintext", "-unix", open.socket, "vmm.v1.VmmService/GetMeta"]), "GetMeta (no auth)"));
    expect(meta.authRequired ?? false).toBe(false);
  });
});

describe("buf curl", () => {
  const auth = ["-H", `authorization: Bearer ${ADMIN}`, "--reflect-header", "*"];
  const variants = () => [
    { name: "grpc/tcp", args: ["--protocol", "grpc", "--http2-prior-knowledge"], base: `http://${authed.tcp}` },
    { name: "connect/tcp", args: ["--protocol", "connect"], base: `http://${authed.tcp}` },
    { name: "grpcweb/tcp", args: ["--protocol", "grpcweb"], base: `http://${authed.tcp}` },
    { name: "grpc/unix", args: ["--protocol", "grpc", "--http2-prior-knowledge", "--unix-socket", authed.socket], base: "http://localhost" },
    { name: "connect/unix", args: ["--protocol", "connect", "--unix-socket", authed.socket], base: "http://localhost" },
  ];

  it("lists services through reflection (TCP and unix socket)", async () => {
    for (const where of [[`http://${authed.tcp}`], ["--unix-socket", authed.socket, "http://localhost"]]) {
      const out = ok(await run(BUF, ["curl", ...auth, "--list-services", ...where]), `buf curl --list-services ${where[0]}`);
      expect(out.trim().split("\n")).toEqual(expect.arrayContaining(["vmm.v1.VmmService", "vmm.v1.NetworkService", "grpc.health.v1.Health"]));
    }
  });

  // Every listed service must be describable, the reflection services too.
  it("lists methods through reflection", async () => {
    const out = ok(await run(BUF, ["curl", ...auth, "--list-methods", `http://${authed.tcp}`]), "buf curl --list-methods");
    const methods = out.trim().split("\n");
    expect(methods).toEqual(
      expect.arrayContaining([
        "vmm.v1.VmmService/GetMeta",
        "vmm.v1.VmmService/ListVms",
        "vmm.v1.VmmService/WatchEvents",
        "vmm.v1.NetworkService/AcquireNetwork",
        "grpc.health.v1.Health/Check",
        "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      ]),
    );
  });

  it("calls GetMeta and ListVms with every protocol", async () => {
    const c = client(VmmService, transport(authed, "grpc", "unix", { token: ADMIN }));
    await c.createVm({ id: "bufcurl-vm", config: { name: "seen by buf curl" } });
    try {
      for (const v of variants()) {
        const meta = JSON.parse(ok(await run(BUF, ["curl", ...auth, ...v.args, "-d", "{}", `${v.base}/vmm.v1.VmmService/GetMeta`]), `GetMeta ${v.name}`));
        expect(meta.version, v.name).toMatch(/^\d+\.\d+\.\d+/);
        const list = JSON.parse(ok(await run(BUF, ["curl", ...auth, ...v.args, "-d", '{"keyword":"bufcurl"}', `${v.base}/vmm.v1.VmmService/ListVms`]), `ListVms ${v.name}`));
        expect(list.vms.map((x: { id: string }) => x.id), v.name).toEqual(["bufcurl-vm"]);
      }
    } finally {
      await c.removeVm({ id: "bufcurl-vm" });
    }
  });

  it("reports the Connect error code of a refused call", async () => {
    const r = await run(BUF, ["curl", ...auth, "--protocol", "connect", "-d", '{"id":"no-such-vm"}', `http://${authed.tcp}/vmm.v1.VmmService/GetInfo`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/"code":\s*"not_found"/);
    expect(r.stderr).toContain("no-such-vm");
  });
});

describe("curl with the Connect JSON protocol (the DHCP hook's call)", () => {
  async function curlLease(token: string, body: unknown, method = "ReportDhcpLease"): Promise<{ status: number; json: Record<string, unknown> }> {
    const r = await run("curl", [
      "-sS",
      "--unix-socket", authed.socket,
      "-H", "content-type: application/json",
      "-H", `authorization: Bearer ${token}`,
      "-d", JSON.stringify(body),
      "-w", "\n%{http_code}",
      `http://localhost/vmm.v1.VmmService/${method}`,
    ]);
    ok(r, "curl");
    const i = r.stdout.lastIndexOf("\n");
    return { status: Number(r.stdout.slice(i + 1)), json: JSON.parse(r.stdout.slice(0, i)) };
  }

  it("gets not_found (HTTP 404) for a MAC no VM has", async () => {
    const r = await curlLease(LEASE, { action: "LEASE_ACTION_ADD", mac: "02:00:00:00:00:01", ip: "10.77.0.9" });
    expect(r.status).toBe(404);
    expect(r.json.code).toBe("not_found");
    expect(r.json.message).toContain("02:00:00:00:00:01");
  });

  it("reads answer a Connect GET with the same token rules; writes refuse GET", async () => {
    const get = async (method: string, message: unknown, token?: string) => {
      const r = await run("curl", [
        "-sS", "-G",
        ...(token ? ["-H", `authorization: Bearer ${token}`] : []),
        "--data-urlencode", "encoding=json",
        "--data-urlencode", `message=${JSON.stringify(message)}`,
        "-w", "\n%header{cache-control}\n%{http_code}",
        `http://${authed.tcp}/vmm.v1.VmmService/${method}`,
      ]);
      ok(r, "curl -G");
      const [code, cache, ...body] = r.stdout.split("\n").reverse();
      return { status: Number(code), cache, body: body.reverse().join("\n") };
    };
    const meta = await get("GetMeta", {}, ADMIN);
    expect(meta.status).toBe(200);
    expect(meta.cache).toBe("no-store");
    expect(JSON.parse(meta.body).authRequired).toBe(true);
    const missing = await get("GetInfo", { id: "no-such-vm" }, ADMIN);
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body).message).toBe('id: VM "no-such-vm" not found');
    expect((await get("ListVms", {})).status).toBe(401);
    expect((await get("ListVms", {}, LEASE)).status).toBe(403);
    const before = await client(VmmService, transport(authed, "connect", "unix", { token: ADMIN })).listVms({});
    for (const [method, message] of [["CreateVm", { id: "by-get", config: { name: "x" } }], ["RemoveVm", { id: "x" }], ["ReportDhcpLease", { action: "LEASE_ACTION_ADD" }]] as const) {
      expect((await get(method, message, ADMIN)).status, method).toBe(405);
    }
    const after = await client(VmmService, transport(authed, "connect", "unix", { token: ADMIN })).listVms({});
    expect(after.vms.map((v) => v.id)).toEqual(before.vms.map((v) => v.id));
  });

  it("a lease token may not call anything else", async () => {
    const r = await curlLease(LEASE, { config: { name: "x" } }, "CreateVm");
    expect(r.status).toBe(403);
    expect(r.json.code).toBe("permission_denied");
  });

  it("refuses a lease of a bridge-mode VM that does not run (leases live with the guest), and nothing is recorded", async () => {
    const c = client(VmmService, transport(authed, "connect", "unix", { token: ADMIN }));
    const created = await c.createVm({ id: "lease-vm", config: { name: "lease target", nics: [{ mode: NetworkingMode.BRIDGE }] } });
    try {
      const before = await c.getInfo({ id: "lease-vm" });
      expect(before.vm!.nics[0]!.bridge).toBe("br-test");
      expect(before.vm!.nics[0]!.lease).toBeUndefined();
      const mac = before.vm!.nics[0]!.mac;
      expect(mac).toBe(created.vm!.nics[0]!.mac);

      // dnsmasq passes the MAC as it saw it; any case is accepted, and the
      // stopped VM is named. (A running guest's lease: test/e2e/bridge-forward.)
      const expires = Math.floor(Date.now() / 1000) + 3600;
      const r = await curlLease(LEASE, { action: "LEASE_ACTION_ADD", mac: mac.toUpperCase(), ip: "10.77.0.50", hostname: "guest-1", expiresUnix: String(expires), interface: "br-test" });
      expect(r.status).toBe(400);
      expect(r.json.code).toBe("failed_precondition");
      expect(r.json.message).toBe('mac: VM "lease-vm" is not running; its leases begin when it runs');

      // Outside the bridge's subnet, the network or broadcast address: invalid_argument naming ip.
      for (const ip of ["10.78.0.50", "10.77.0.0", "10.77.0.255"]) {
        const bad = await curlLease(LEASE, { action: "LEASE_ACTION_OLD", mac, ip });
        expect(bad.status).toBe(400);
        expect(bad.json.code).toBe("invalid_argument");
        expect(bad.json.message).toMatch(/^ip: /);
      }
      const after = await c.getInfo({ id: "lease-vm" });
      expect(after.vm!.nics[0]!.lease).toBeUndefined();
      expect(after.vm!.events.some((e) => e.kind.startsWith("lease"))).toBe(false);
    } finally {
      await c.removeVm({ id: "lease-vm" });
    }
  });
});
