// The dnsmasq hook, both implementations behind its one entry point (the
// compiled one the script execs, and the script itself with real curl):
// the lease token stays out of every command line and environment. The
// hook posts to a recording server that holds the request open for a
// while; meanwhile every process's /proc/PID/cmdline and /proc/PID/environ
// is read, the client's included, and none may contain the token -- though
// the server did receive it. Then the
// same hook against a real vmmd: its lease token is accepted (the call gets
// as far as "no VM has this MAC"), a wrong one is refused, and a token with
// characters that curl's config syntax escapes still arrives intact. And
// what the hook sends: hostile arguments and environment (a guest picks its
// hostname) are cut down to their fields' character sets, so the body is
// always the JSON it should be.
import { execFileSync, spawn } from "node:child_process";
import { closeSync, constants, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, startDaemon, type DaemonHandle } from "../helpers/daemon.js";

const HOOK = resolve(ROOT, "clients", "dnsmasq-hook", "vmm-dhcp-hook");
const COMPILED = resolve(ROOT, "native", "build", "Release", "vmm-dhcp-hook");
/**
 * The two implementations behind the one entry point: the script execs the
 * compiled hook when it is built (scripts/build-native.sh), and runs itself
 * with VMM_HOOK_SHELL=1. `client`: the process that holds the connection to
 * vmmd while the request is in flight (argv[0] in /proc/PID/cmdline).
 */
const IMPLS = [
  { name: "compiled", entry: HOOK, env: {} as Record<string, string>, client: (argv0: string) => argv0.endsWith("native/build/Release/vmm-dhcp-hook") },
  { name: "shell", entry: HOOK, env: { VMM_HOOK_SHELL: "1" } as Record<string, string>, client: (argv0: string) => argv0.endsWith("curl") },
  // What vmmd's networks and setup-bridge.sh give dnsmasq when the compiled hook is built.
  { name: "compiled, run directly", entry: COMPILED, env: {} as Record<string, string>, client: (argv0: string) => argv0.endsWith("native/build/Release/vmm-dhcp-hook") },
];
/** The program runHook starts: the entry point of the implementation under test. */
let entry = HOOK;
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

/** Runs the hook as dnsmasq would (add MAC IP HOSTNAME by default), with `env`; resolves with its exit status and stderr. */
function runHook(env: Record<string, string>, args = ["add", "02:00:00:00:00:01", "10.77.0.9", "guest"]): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolveRun) => {
    const p = spawn(entry, args, { env: { PATH: process.env.PATH!, ...env } });
    let stderr = "";
    p.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
    p.on("close", (status) => resolveRun({ status, stderr }));
  });
}

/** Writes `content` to the token file `name` (mode 0600) and runs the hook with it and `env`. */
function runHookWithToken(name: string, content: string, env: Record<string, string>): Promise<{ status: number | null; stderr: string }> {
  const file = join(dir, name);
  writeFileSync(file, content, { mode: 0o600 });
  return runHook({ ...env, VMM_LEASE_TOKEN_FILE: file });
}

/** Runs the hook with the token file `name` holding `content` and expects it refused: exit 1, `message` on stderr. */
async function expectTokenRefused(name: string, content: string, env: Record<string, string>, message: string): Promise<void> {
  const r = await runHookWithToken(name, content, env);
  expect(r.status, r.stderr).toBe(1);
  expect(r.stderr).toContain(message);
}

/** Every readable /proc/PID/{cmdline,environ} that contains `needle`, and whether a process whose argv[0] `isClient` accepts was seen. */
function scanProc(needle: string, isClient: (argv0: string) => boolean): { hits: string[]; sawClient: boolean } {
  const hits: string[] = [];
  let sawClient = false;
  for (const pid of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    for (const f of ["cmdline", "environ"]) {
      let text: string;
      try {
        text = readFileSync(`/proc/${pid}/${f}`, "latin1");
      } catch {
        continue; // exited meanwhile
      }
      if (f === "cmdline" && isClient(text.split("\0")[0]!)) sawClient = true;
      if (text.includes(needle)) hits.push(`/proc/${pid}/${f}: ${text.replace(/\0/g, " ").slice(0, 120)}`);
    }
  }
  return { hits, sawClient };
}

/** A server on 127.0.0.1 that answers 200 and records each request's headers and body. */
async function recorder(): Promise<{ url: string; got: { headers: IncomingHttpHeaders; body: string }[]; close: () => Promise<void> }> {
  const got: { headers: IncomingHttpHeaders; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    req.on("end", () => {
      got.push({ headers: req.headers, body });
      res.writeHead(200, { "content-type": "application/json" }).end('{"vmId":"x"}');
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return { url: `http://127.0.0.1:${port}`, got, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe.each(IMPLS)("the $name hook", (impl) => {
  beforeAll(() => {
    // Without it the script would quietly run itself: fail instead.
    if (impl.entry === COMPILED || impl.name === "compiled") {
      if (!existsSync(COMPILED)) throw new Error(`${COMPILED} missing: run scripts/build-native.sh`);
    }
    entry = impl.entry;
  });

  describe("its settings file", () => {
    it("applies VMM_HOOK_CONF where the environment has no value, its last line without a newline too; the environment wins", async () => {
      const rec = await recorder();
      try {
        const conf = join(dir, `hook-${impl.name.replace(/\W+/g, "-")}.conf`);
        writeFileSync(conf, `# settings\nVMM_HOOK_TIMEOUT=5\nVMM_URL=${rec.url}`);
        const r = await runHook({ ...impl.env, VMM_HOOK_CONF: conf });
        expect(r.status, r.stderr).toBe(0);
        expect(rec.got).toHaveLength(1);
        const env = await runHook({ ...impl.env, VMM_HOOK_CONF: conf, VMM_URL: "http://127.0.0.1:1" });
        expect(env.status).toBe(1);
        expect(env.stderr).toContain("unreachable");
        expect(rec.got).toHaveLength(1);
      } finally {
        await rec.close();
      }
    });

    it("is not read when it is a FIFO (which would hold the hook, and dnsmasq behind it): one log line, and the report goes on", async () => {
      const rec = await recorder();
      const fifo = join(dir, `hook-${impl.name.replace(/\W+/g, "-")}.fifo`);
      try {
        execFileSync("mkfifo", [fifo]);
        let timer: NodeJS.Timeout | undefined;
        const held = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error("the hook is still running after 10 s: it opened the FIFO and waits for a writer")), 10_000);
        });
        const r = await Promise.race([runHook({ ...impl.env, VMM_HOOK_CONF: fifo, VMM_URL: rec.url }), held]).finally(() => clearTimeout(timer));
        expect(r.status, r.stderr).toBe(0);
        expect(r.stderr.split(`settings file ${fifo} is not a regular file; not read`)).toHaveLength(2);
        expect(rec.got).toHaveLength(1);
      } finally {
        // A hook still blocked in open() gets a writer, then end of file.
        try {
          closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
        } catch {
          // no reader left: nothing held
        }
        rmSync(fifo, { force: true });
        await rec.close();
      }
    });
  });

  describe("its token", () => {
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
        const run = runHook({ ...impl.env, VMM_URL: `http://127.0.0.1:${port}`, VMM_LEASE_TOKEN_FILE: tokenFile });
        // While the hook waits for the held response, read every process's cmdline and environ.
        let sawClient = false;
        const hits: string[] = [];
        const until = Date.now() + 1500;
        while (Date.now() < until) {
          const s = scanProc(token, impl.client);
          sawClient ||= s.sawClient && received !== undefined;
          hits.push(...s.hits);
          await new Promise((r) => setTimeout(r, 20));
        }
        release();
        const r = await run;
        expect(r.status, r.stderr).toBe(0);
        expect(hits).toEqual([]);
        expect(sawClient, `the ${impl.name} hook's client was running while /proc was read`).toBe(true);
        expect(received?.authorization).toBe(`Bearer ${token}`);
      } finally {
        release();
        await new Promise<void>((r) => server.close(() => r()));
      }
    });

    it("authenticates against a real vmmd over the unix socket; a wrong token is refused", async () => {
      const good = join(dir, "lease.token");
      writeFileSync(good, LEASE + "\n", { mode: 0o600 });
      const ok = await runHook({ ...impl.env, VMM_SOCKET: d.socket, VMM_LEASE_TOKEN_FILE: good });
      // Authenticated: the daemon looked the MAC up (no VM has it).
      expect(ok.status).toBe(1);
      expect(ok.stderr).toContain("refused (HTTP 404)");
      expect(ok.stderr).toContain("no VM has MAC 02:00:00:00:00:01");

      await expectTokenRefused("wrong.token", "wrong-token-0123456789abcdef\n", { ...impl.env, VMM_SOCKET: d.socket }, "refused (HTTP 401)");

      await expectTokenRefused("empty.token", "\n", { ...impl.env, VMM_SOCKET: d.socket }, "is empty");
    });
  });

  describe("its request", () => {
    it("cuts every value to its field's characters: hostile arguments and environment still give the intended JSON", async () => {
      const rec = await recorder();
      try {
        const r = await runHook(
          { ...impl.env, VMM_URL: rec.url, DNSMASQ_INTERFACE: 'br0"},{"x":"', DNSMASQ_LEASE_EXPIRES: '17$(id)99"' },
          ["add", '02:00:00:00:00:0A","ip":"6.6.6.6', "10.77.0.9\",\"x", 'gu\u0001est"}, {"evil": `id` $(id) ;\n\t\\ host-1.lan'],
        );
        expect(r.status, r.stderr).toBe(0);
        expect(rec.got).toHaveLength(1);
        const body = JSON.parse(rec.got[0]!.body) as Record<string, string>;
        expect(body).toEqual({
          action: "LEASE_ACTION_ADD",
          mac: "02:00:00:00:00:0A:6666",
          ip: "10.77.0.9",
          hostname: "guestevilididhost-1.lan",
          expiresUnix: "1799",
          interface: "br0x",
        });
        expect(rec.got[0]!.headers["content-type"]).toBe("application/json");
        expect(rec.got[0]!.headers["connect-protocol-version"]).toBe("1");
      } finally {
        await rec.close();
      }
    });

    it("bounds what it reads of a huge argument, and of a token file", async () => {
      const rec = await recorder();
      try {
        // A 100,000-character hostname: the hook looks at its first 1,024 characters only.
        const r = await runHook({ ...impl.env, VMM_URL: rec.url }, ["add", "02:00:00:00:00:01", "10.77.0.9", "!".repeat(1000) + "abc" + "d".repeat(100_000)]);
        expect(r.status, r.stderr).toBe(0);
        expect((JSON.parse(rec.got[0]!.body) as { hostname: string }).hostname).toBe("abc" + "d".repeat(21));

        await expectTokenRefused("big.token", "t".repeat(5000), { ...impl.env, VMM_URL: rec.url }, "holds more than 4096 characters");
        expect(rec.got).toHaveLength(1);
      } finally {
        await rec.close();
      }
    });

    it("takes the token file as vmmd does (whitespace around it dropped), escapes it for curl, and refuses one with whitespace or a control character inside, or over 512 characters", async () => {
      const rec = await recorder();
      try {
        const r = await runHookWithToken("spaced.token", ' \r\n\tab\\c"d-0123456789\r\n\n', { ...impl.env, VMM_URL: rec.url });
        expect(r.status, r.stderr).toBe(0);
        expect(rec.got[0]!.headers.authorization).toBe('Bearer ab\\c"d-0123456789');
        await expectTokenRefused("inside.token", "abcd-0123456789\nefgh\n", { ...impl.env, VMM_URL: rec.url }, "whitespace inside the token");
        await expectTokenRefused("control.token", "abcd\u0001efgh-0123456789\n", { ...impl.env, VMM_URL: rec.url }, "whitespace inside the token");
        await expectTokenRefused("long.token", "t".repeat(513) + "\n", { ...impl.env, VMM_URL: rec.url }, "longer than 512 characters");
        const missing = await runHook({ ...impl.env, VMM_URL: rec.url, VMM_LEASE_TOKEN_FILE: join(dir, "no-such.token") });
        expect(missing.status).toBe(1);
        expect(missing.stderr).toContain("cannot read token file");
        expect(rec.got).toHaveLength(1);
      } finally {
        await rec.close();
      }
    });
  });
});

describe("the compiled hook, run directly", () => {
  beforeAll(() => {
    if (!existsSync(COMPILED)) throw new Error(`${COMPILED} missing: run scripts/build-native.sh`);
    entry = COMPILED;
  });

  it("hands VMM_HOOK_SHELL=1 and an https:// URL to the script", async () => {
    const rec = await recorder();
    try {
      const shell = await runHook({ VMM_HOOK_SHELL: "1", VMM_URL: rec.url, VMM_HOOK_CONF: join(dir, "none.conf") });
      expect(shell.status, shell.stderr).toBe(0);
      expect(rec.got[0]!.headers["user-agent"]).toMatch(/^curl\//); // the script's curl made the report
      const tls = await runHook({ VMM_URL: "https://127.0.0.1:1", VMM_HOOK_CONF: join(dir, "none.conf") });
      expect(tls.status).toBe(1);
      expect(tls.stderr).toContain("unreachable");
      expect(tls.stderr).not.toContain("is not http://"); // not the compiled hook's own refusal
    } finally {
      await rec.close();
    }
  });
});
