import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, readlinkSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openSync, closeSync } from "node:fs";
import {
  childFdOf,
  isAlive,
  isOurProcess,
  pidExists,
  processRef,
  readPidFile,
  signalProcess,
  spawnDetached,
  stopProcess,
  waitForExit,
  waitUntil,
  type ProcessRef,
} from "./process.js";

const stat = (pid: number) => {
  const s = readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = s.slice(s.lastIndexOf(")") + 2).split(" ");
  return { pgrp: Number(rest[5 - 3]), session: Number(rest[6 - 3]) };
};

describe("pidExists (the runner's cheap poll) and isAlive (its full check)", () => {
  it("a running process exists; a reaped one does not; a zombie exists for pidExists only", async () => {
    expect(pidExists(process.pid)).toBe(true);
    // A parent that never reaps: its child stays a zombie.
    const { spawn } = await import("node:child_process");
    const parent = spawn("sh", ["-c", "sleep 0.1 & echo $!; exec sleep 30"], { stdio: ["ignore", "pipe", "ignore"] });
    try {
      const child = Number(await new Promise<string>((r) => parent.stdout.once("data", (b: Buffer) => r(String(b).trim()))));
      const ref = await processRef(child);
      expect(ref).toBeDefined();
      expect(await waitUntil(() => readFileSync(`/proc/${child}/stat`, "utf8").includes(") Z "), 5000, 20)).toBe(true);
      expect(pidExists(child)).toBe(true);
      expect(await isAlive(ref!)).toBe(false);
    } finally {
      parent.kill("SIGKILL");
    }
    await new Promise((r) => parent.once("exit", r));
    expect(pidExists(parent.pid!)).toBe(false);
  });
});

describe("detached processes", () => {
  let dir: string;
  const started: ProcessRef[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "vmm-proc-"));
  });
  afterAll(async () => {
    for (const p of started) await stopProcess(p, { graceMs: 1000 });
    rmSync(dir, { recursive: true, force: true });
  });

  it("runs in its own session and process group, logging to a file", async () => {
    const p = await spawnDetached({ argv: ["sleep", "30"], logFile: join(dir, "sleep.log") });
    started.push(p);
    expect(p.startTime).toBeGreaterThan(0);
    const st = stat(p.pid);
    expect(st.session).toBe(p.pid);
    expect(st.pgrp).toBe(p.pid);
    expect(st.session).not.toBe(stat(process.pid).session);
    // stdout/stderr are the log file, not pipes to us
    expect(readlinkSync(`/proc/${p.pid}/fd/1`)).toBe(join(dir, "sleep.log"));
    expect(readlinkSync(`/proc/${p.pid}/fd/2`)).toBe(join(dir, "sleep.log"));
    expect(await isAlive(p)).toBe(true);
    expect(await isOurProcess(p, "30")).toBe(true);
    expect(await isOurProcess(p, "/no/such/qmp.sock")).toBe(false);
    expect(await processRef(p.pid)).toEqual(p);
  });

  it("appends stdout and stderr to the log file", async () => {
    const log = join(dir, "ls.log");
    const p = await spawnDetached({ argv: ["ls", "-d", "/", "/no-such-dir-vmm"], logFile: log });
    expect(await waitForExit(p, 5000)).toBe(true);
    const text = readFileSync(log, "utf8");
    expect(text).toContain("/\n");
    expect(text).toContain("no-such-dir-vmm");
  });

  it("passes extra fds as fd 3, 4, ...", async () => {
    const a = join(dir, "a.txt");
    const b = join(dir, "b.txt");
    const fa = openSync(a, "w");
    const fb = openSync(b, "w");
    const log = join(dir, "readlink.log");
    try {
      const p = await spawnDetached({
        argv: ["readlink", `/proc/self/fd/${childFdOf(0)}`, `/proc/self/fd/${childFdOf(1)}`],
        logFile: log,
        extraFds: [fa, fb],
      });
      expect(await waitForExit(p, 5000)).toBe(true);
    } finally {
      closeSync(fa);
      closeSync(fb);
    }
    expect(readFileSync(log, "utf8")).toBe(`${a}\n${b}\n`);
  });

  it("reports a missing program", async () => {
    await expect(spawnDetached({ argv: ["/no/such/qemu"], logFile: join(dir, "x.log") })).rejects.toThrow(
      /spawn \/no\/such\/qemu failed: ENOENT/,
    );
  });

  it("does not signal a reused pid", async () => {
    const p = await spawnDetached({ argv: ["sleep", "30"], logFile: join(dir, "sleep2.log") });
    started.push(p);
    const impostor = { pid: p.pid, startTime: p.startTime - 1 };
    expect(await signalProcess(impostor, "SIGKILL")).toBe(false);
    expect(await isAlive(p)).toBe(true);
  });

  it("stops with SIGTERM, and with SIGKILL when TERM is ignored", async () => {
    const p = await spawnDetached({ argv: ["sleep", "30"], logFile: join(dir, "sleep3.log") });
    const t0 = Date.now();
    await stopProcess(p, { graceMs: 2000 });
    expect(await isAlive(p)).toBe(false);
    expect(Date.now() - t0).toBeLessThan(2000);

    // node ignoring SIGTERM: needs the SIGKILL step
    const stubborn = await spawnDetached({
      argv: [process.execPath, "-e", "process.on('SIGTERM',()=>{}); console.log('ready'); setTimeout(()=>{}, 30000)"],
      logFile: join(dir, "stubborn.log"),
    });
    // wait until its SIGTERM handler is installed (it says so in its log)
    expect(await waitUntil(async () => (await readFile(join(dir, "stubborn.log"))).includes("ready"), 5000)).toBe(true);
    const t1 = Date.now();
    await stopProcess(stubborn, { graceMs: 300 });
    expect(await isAlive(stubborn)).toBe(false);
    expect(Date.now() - t1).toBeGreaterThanOrEqual(300);
  });

  it("waitForExit is bounded", async () => {
    const p = await spawnDetached({ argv: ["sleep", "30"], logFile: join(dir, "sleep4.log") });
    started.push(p);
    const t0 = Date.now();
    expect(await waitForExit(p, 200)).toBe(false);
    expect(Date.now() - t0).toBeLessThan(1000);
  });

  it("reads pid files", async () => {
    const f = join(dir, "x.pid");
    expect(await readPidFile(f)).toBeUndefined();
    const fd = openSync(f, "w");
    closeSync(fd);
    expect(await readPidFile(f)).toBeUndefined();
    await import("node:fs/promises").then((m) => m.writeFile(f, "1234\n"));
    expect(await readPidFile(f)).toBe(1234);
  });
});

async function readFile(p: string): Promise<string> {
  return (await import("node:fs/promises")).readFile(p, "utf8").catch(() => "");
}
