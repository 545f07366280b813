// `vmm-cli logs -f` and `vmm-cli console` on a real guest (QEMU TCG):
//
//   scripts/in-netns.sh npx vitest run test/e2e/console-cli.test.ts
//
// logs -f runs before the VM starts and must print the boot lines while the
// guest boots. console runs in a pseudo-terminal (util-linux `script`),
// types a command into the guest's shell (vmm.shell=1 in the test guest),
// reads the answer, and detaches with Ctrl-].
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { existsSync, statSync } from "node:fs";
import { ROOT, client, startDaemon, transport, type DaemonHandle } from "../helpers/daemon.js";
import { guestInitrd, guestKernel } from "../guest/paths.js";
import { requireNetns } from "../guest/netns.js";
import { VmmService } from "../../gen/ts/vmm/v1/vmm_pb.js";

const CLI = join(ROOT, "dist", "clients", "cli", "main.js");
let d: DaemonHandle | undefined;
const procs: ChildProcess[] = [];

function cli(args: string[], viaPty = false): { p: ChildProcess; out: () => string; exited: Promise<number | null> } {
  const argv = [process.execPath, CLI, "--socket", d!.socket, ...args];
  // script(1) gives the CLI a pseudo-terminal; its own stdin feeds the terminal.
  const p = viaPty
    ? spawn("script", ["-qfec", argv.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" "), "/dev/null"], { stdio: ["pipe", "pipe", "pipe"] })
    : spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
  procs.push(p);
  let out = "";
  p.stdout!.on("data", (b: Buffer) => (out += b.toString("utf8")));
  p.stderr!.on("data", (b: Buffer) => (out += b.toString("utf8")));
  const exited = new Promise<number | null>((r) => p.once("exit", (code) => r(code)));
  return { p, out: () => out, exited };
}

async function until(what: string, f: () => string, re: RegExp, ms = 90_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!re.test(f())) {
    if (Date.now() > deadline) throw new Error(`${what}: no ${re} after ${ms} ms; got:\n${f().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  requireNetns();
  // A small cap, so that the boot's output is rotated while the guest boots.
  d = await startDaemon({ tcp: false, toml: "[console]\nlog_max_bytes = 8192\nlog_files = 2\n" });
});
afterAll(async () => {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  if (d) {
    const c = client(VmmService, transport(d, "connect", "unix"));
    await c.removeVm({ id: "con", force: true }).catch(() => undefined);
    await d.stop();
    d.cleanup();
  }
});

describe("console and logs on a real guest", () => {
  it("logs -f prints boot lines as they happen; console types a command and reads the answer", async () => {
    const c = cli(["create", "console guest", "--id", "con", "--net", "user", "--kernel", guestKernel(), "--initrd", guestInitrd(), "--cmdline", "console=ttyS0 panic=-1 vmm.shell=1 vmm.hostname=con"]);
    expect(await c.exited).toBe(0);

    const logs = cli(["logs", "-f", "console guest"]);
    const start = cli(["start", "con"]);
    expect(await start.exited).toBe(0);
    // The kernel's first line, then the guest's ready line, while logs -f still runs.
    await until("logs -f", logs.out, /Linux version \d/);
    await until("logs -f", logs.out, /VMM-GUEST-READY .*hostname=con/);
    expect(logs.p.exitCode).toBeNull();

    const con = cli(["console", "con"], true);
    await until("console", con.out, /attached to con \(con\); Ctrl-\] detaches/, 20_000);
    // The shell may still be starting: type until it answers.
    for (let i = 0; i < 30 && !/answer-42/.test(con.out()); i++) {
      con.p.stdin!.write("echo answer-$((6*7))\r");
      await new Promise((r) => setTimeout(r, 1000));
    }
    await until("console", con.out, /answer-42/, 5000);
    // An idle console stays attached (longer than the daemon's 10 s body timeout).
    await new Promise((r) => setTimeout(r, 13_000));
    con.p.stdin!.write("echo second-$((2*3))\r");
    await until("console after 13 s idle", con.out, /second-6/, 10_000);
    con.p.stdin!.write("\x1d");
    expect(await con.exited).toBe(0);
    expect(con.out()).toMatch(/detached from con/);
    // The command the console typed shows in the log as well.
    await until("logs -f", logs.out, /answer-42/, 5000);

    logs.p.kill("SIGINT");
    expect(await logs.exited).toBe(0);

    // The log was capped: rotated copies exist, the kept bytes stay bounded,
    // and ReadConsole reports where the kept output starts.
    const vmDir = join(d!.stateDir, "vms", "con");
    await until("rotation", () => (existsSync(join(vmDir, "serial.log.1")) ? "rotated" : ""), /rotated/, 10_000);
    const kept = ["serial.log", "serial.log.1", "serial.log.2", "serial.log.3"].map((f) => (existsSync(join(vmDir, f)) ? statSync(join(vmDir, f)).size : 0));
    expect(kept[3]).toBe(0);
    const c2 = client(VmmService, transport(d!, "connect", "unix"));
    const chunks = [];
    for await (const r of c2.readConsole({ id: "con" })) chunks.push(r);
    // What ReadConsole serves from its first kept offset is exactly what the kept files hold.
    expect(chunks[0]!.offset).toBe(chunks[0]!.firstOffset);
    const data = Buffer.concat(chunks.map((x) => x.data));
    expect(data.length).toBe(kept.reduce((a, b) => a + b, 0));
    expect(data.toString()).toMatch(/answer-42/);
    const tail = cli(["logs", "--tail", "5", "con"]);
    expect(await tail.exited).toBe(0);
  });

  it("console refuses a stopped VM", async () => {
    const stop = cli(["stop", "con", "--force"]);
    expect(await stop.exited).toBe(0);
    const con = cli(["console", "con"], true);
    expect(await con.exited).toBe(1);
    expect(con.out()).toMatch(/failed_precondition: VM "con" is stopped; its console can be attached only while it runs/);
  });
});
