// The dnsmasq hook's lease token stays out of every command line and
// environment. The hook (real, with real curl) posts to a recording server
// that holds the request open for a while; meanwhile every process's
// /proc/PID/cmdline and /proc/PID/environ is read, curl's included, and
// none may contain the token -- though the server did receive it. Then the
// same hook against a real vmmd: its lease token is accepted (the call gets
// as far as "no VM has this MAC"), a wrong one is refused, and a token with
// characters that curl's config syntax escapes still arrives intact.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, startDaemon, type DaemonHandle } from "../helpers/daemon.js";

const HOOK = resolve(ROOT, "clients", "dnsmasq-hook", "vmm-dhcp-hook");
const ADMIN = "admin-token-hooktest-0123456789";
const LEASE = 'lease-token-"quoted"\\back-0123456789';

let dir = "";
let d: DaemonHandle;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "vmm-hook-"));
  d = await startDaemon({ toml: `[auth]\ntokens = ["${ADMIN}"]\nlease_tokens = [${JSON.stringify(LEASE)}]\n` });
});

afterAll(async () => {
  await d?.stop();
  d?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs the hook as dnsmasq would (add MAC IP), with `env`; resolves with its exit status and stderr. */
function runHook(env: Record<string, string>): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolveRun) => {
    const p = spawn(HOOK, ["add", "02:00:00:00:00:01", "10.77.0.9", "guest"], { env: { PATH: process.env.PATH!, ...env } });
    let stderr = "";
    p.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    p.on("close", (status) => resolveRun({ status, stderr }));
  });
}

/** Every readable /proc/PID/{cmdline,environ} that contains `needle`, and whether a curl was seen at all. */
function scanProc(needle: string): { hits: string[]; sawCurl: boolean } {
  const hits: string[] = [];
  let sawCurl = false;
  for (const pid of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    for (const f of ["cmdline", "environ"]) {
      let text: string;
      try {
        text = readFileSync(`/proc/${pid}/${f}`, "latin1");
      } catch {
        continue; // exited meanwhile
      }
      if (f === "cmdline" && text.split("\0")[0]!.endsWith("curl")) sawCurl = true;
      if (text.includes(needle)) hits.push(`/proc/${pid}/${f}: ${text.replace(/\0/g, " ").slice(0, 120)}`);
    }
  }
  return { hits, sawCurl };
}

describe("the hook's token", () => {
  it("is in no /proc/*/cmdline or /proc/*/environ while the hook runs, yet reaches the server", async () => {
    const token = "hook-secret-" + "x".repeat(20) + Date.now();
    const tokenFile = join(dir, "token");
    writeFileSync(tokenFile, token + "\n", { mode: 0o600 });
    let received: IncomingHttpHeaders | undefined;
    let release: () => void = () => undefined;
    const held = new Promise<void>((r) => (release = r));
    const server: Server = createServer((req, res) => {
      received = req.headers;
      req.resume();
      void held.then(() => res.writeHead(200, { "content-type": "application/json" }).end('{"vmId":"x"}'));
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const port = (server.address() as { port: number }).port;
      const run = runHook({ VMM_URL: `http://127.0.0.1:${port}`, VMM_LEASE_TOKEN_FILE: tokenFile });
      // While curl waits for the held response, read every process's cmdline and environ.
      let sawCurl = false;
      const hits: string[] = [];
      const until = Date.now() + 1500;
      while (Date.now() < until) {
        const s = scanProc(token);
        sawCurl ||= s.sawCurl && received !== undefined;
        hits.push(...s.hits);
        await new Promise((r) => setTimeout(r, 20));
      }
      release();
      const r = await run;
      expect(r.status, r.stderr).toBe(0);
      expect(hits).toEqual([]);
      expect(sawCurl, "curl was running while /proc was read").toBe(true);
      expect(received?.authorization).toBe(`Bearer ${token}`);
    } finally {
      release();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it("authenticates against a real vmmd over the unix socket; a wrong token is refused", async () => {
    const good = join(dir, "lease.token");
    writeFileSync(good, LEASE + "\n", { mode: 0o600 });
    const ok = await runHook({ VMM_SOCKET: d.socket, VMM_LEASE_TOKEN_FILE: good });
    // Authenticated: the daemon looked the MAC up (no VM has it).
    expect(ok.status).toBe(1);
    expect(ok.stderr).toContain("refused (HTTP 404)");
    expect(ok.stderr).toContain("no VM has MAC 02:00:00:00:00:01");

    const bad = join(dir, "wrong.token");
    writeFileSync(bad, "wrong-token-0123456789abcdef\n", { mode: 0o600 });
    const refused = await runHook({ VMM_SOCKET: d.socket, VMM_LEASE_TOKEN_FILE: bad });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain("refused (HTTP 401)");

    const empty = join(dir, "empty.token");
    writeFileSync(empty, "\n", { mode: 0o600 });
    const none = await runHook({ VMM_SOCKET: d.socket, VMM_LEASE_TOKEN_FILE: empty });
    expect(none.status).toBe(1);
    expect(none.stderr).toContain("is empty");
  });
});
