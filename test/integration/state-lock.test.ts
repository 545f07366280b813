// One daemon per state directory. A second vmmd on a state dir in use exits
// non-zero naming the first one's pid, and changes nothing: the first keeps
// answering on its unix socket and TCP port, its socket file is the same
// file. A socket file is replaced only when nobody answers on it: after
// kill -9 the next daemon starts (the kernel dropped the lock); a live
// socket of another server is never taken.
import { spawn } from "node:child_process";
import { statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { client, startDaemon, transport, VMMD, type DaemonHandle } from "../helpers/daemon.js";
import { snapshot } from "../helpers/snapshot.js";
import { VmmService } from "../../gen/ts/vmm/v1/vmm_pb.js";

let handles: DaemonHandle[] = [];
afterEach(async () => {
  for (const h of handles) {
    await h.stop();
    h.cleanup();
  }
  handles = [];
});

/** Runs vmmd with `toml` to its exit; resolves with the exit code and stderr. */
function runToExit(dir: string, toml: string): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const cfg = join(dir, `second-${Date.now()}.toml`);
  writeFileSync(cfg, toml);
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [VMMD, "--config", cfg], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    let stdout = "";
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const t = setTimeout(() => {
      p.kill("SIGKILL");
      reject(new Error(`second vmmd still running after 20 s; stderr: ${stderr}`));
    }, 20_000);
    p.once("exit", (code) => {
      clearTimeout(t);
      resolve({ code, stderr, stdout });
    });
  });
}

async function answers(h: DaemonHandle): Promise<void> {
  for (const via of ["unix", "tcp"] as const) {
    const meta = await client(VmmService, transport(h, "connect", via)).getMeta({});
    expect(meta.version).not.toBe("");
  }
}

const tomlOf = (h: DaemonHandle, socket = h.socket) =>
  `state_dir = ${JSON.stringify(h.stateDir)}\n[api]\nsocket = ${JSON.stringify(socket)}\ntcp = ${JSON.stringify(h.tcp)}\n`;

describe("state dir lock", () => {
  it("a second vmmd on the same state dir exits 1, names the first's pid, and changes nothing", async () => {
    const first = await startDaemon();
    handles.push(first);
    await client(VmmService, transport(first, "connect", "unix")).createVm({ id: "keep", config: { name: "keep me" } });
    const before = snapshot(first.dir);
    const sockIno = statSync(first.socket).ino;

    const second = await runToExit(first.dir, tomlOf(first));
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`state dir ${first.stateDir} is in use by vmmd pid ${first.pid}`);
    expect(second.stdout).toBe("");

    // The config file the test wrote is the only new path.
    const after = snapshot(first.dir);
    for (const k of Object.keys(after)) if (k.startsWith("second-")) delete after[k];
    expect(after).toEqual(before);
    expect(statSync(first.socket).ino).toBe(sockIno);
    await answers(first);
    expect((await client(VmmService, transport(first, "connect", "tcp")).listVms({})).vms.map((v) => v.id)).toEqual(["keep"]);
  });

  it("after kill -9 the next vmmd takes the state dir and replaces the dead socket", async () => {
    const first = await startDaemon();
    handles.push(first);
    await first.kill9();
    // The dead daemon's socket file is still there; nobody answers on it.
    expect(statSync(first.socket).isSocket()).toBe(true);
    const next = await startDaemon({ dir: first.dir });
    handles.push(next);
    await answers(next);
    const list = await client(VmmService, transport(next, "connect", "unix")).listVms({});
    expect(list.vms).toEqual([]);
  });

  it("a live socket of another server is never taken", async () => {
    const first = await startDaemon();
    handles.push(first);
    const path = join(first.dir, "other.sock");
    const other = createServer((c) => {
      c.on("error", () => undefined); // the daemon's probe connects and hangs up
      c.end("other server\n");
    });
    await new Promise<void>((r) => other.listen(path, r));
    try {
      const ino = statSync(path).ino;
      // Another state dir, the socket path of a live server.
      const r = await runToExit(first.dir, `state_dir = ${JSON.stringify(join(first.dir, "state2"))}\n[api]\nsocket = ${JSON.stringify(path)}\n`);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`listen on ${path} failed: another server is answering on this socket`);
      expect(statSync(path).ino).toBe(ino);
    } finally {
      await new Promise<void>((r) => other.close(() => r()));
    }
  });
});
