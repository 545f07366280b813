// `vmm-cli top` in a pseudo-terminal (Python's pty module: a real tty with a
// window size, so the CLI redraws the screen as it does for a person) with
// a real guest: the guest's row shows non-zero CPU and traffic through its
// NIC. GetVmStats itself: a running guest's sample, a stopped VM's status.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { client, ROOT, startDaemon, transport, type DaemonHandle } from "../helpers/daemon.js";
import { requireNetns } from "../guest/netns.js";
import { httpGet } from "../helpers/net.js";
import { VmmService, VmStatus } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { bootServedGuest, removeAll, servedGuestToml, type ServedGuest } from "./served-guest.js";

const ADMIN = "top-admin-token-01234567";
const CLI = join(ROOT, "dist", "clients", "cli", "main.js");
let d: DaemonHandle | undefined;
let guest: ServedGuest;

/** Runs argv on a pty of 50x160 and returns everything it wrote (bounded by timeoutS). */
const PTY_RUN = `
import fcntl, os, select, signal, struct, sys, termios, time
master, slave = os.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 160, 0, 0))
pid = os.fork()
if pid == 0:
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    os.close(master)
    os.close(slave)
    os.execvp(sys.argv[2], sys.argv[2:])
os.close(slave)
out = b""
deadline = time.time() + float(sys.argv[1])
while time.time() < deadline:
    r, _, _ = select.select([master], [], [], 0.2)
    if not r:
        continue
    try:
        data = os.read(master, 65536)
    except OSError:
        break
    if not data:
        break
    out += data
else:
    os.kill(pid, signal.SIGKILL)
sys.stdout.buffer.write(out)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status))
`;

/** Runs argv without blocking the event loop (the test keeps loading the guest meanwhile). */
function runAsync(argv: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.setEncoding("latin1").on("data", (s: string) => (stdout += s));
    p.stderr.setEncoding("utf8").on("data", (s: string) => (stderr += s));
    const t = setTimeout(() => p.kill("SIGKILL"), 90_000);
    p.once("error", reject);
    p.once("close", (status) => {
      clearTimeout(t);
      resolve({ status, stdout, stderr });
    });
  });
}

beforeAll(async () => {
  requireNetns();
  d = await startDaemon({ tcp: false, toml: servedGuestToml(ADMIN) });
});
afterAll(async () => {
  if (d) {
    await removeAll(d, ADMIN);
    await d.stop();
    d.cleanup();
  }
});

describe("vmm-cli top", () => {
  it("shows the booted guest with non-zero CPU in a terminal", async () => {
    guest = await bootServedGuest(d!, ADMIN, "top-1", "10.83.0.0/24");
    const vmm = client(VmmService, transport(d!, "connect", "unix", { token: ADMIN }));
    await vmm.createVm({ id: "top-idle", config: { name: "never started" } });

    // GetVmStats directly: the running guest and the stopped record.
    const st = await vmm.getVmStats({ id: "top-1" });
    expect(st.status).toBe(VmStatus.RUNNING);
    expect(st.sampledAt).toBeDefined();
    expect(st.cpuSeconds).toBeGreaterThan(0);
    expect(st.cpuWindowSeconds).toBeGreaterThanOrEqual(0.5);
    expect(st.memoryRssBytes).toBeGreaterThan(50n * 1024n * 1024n);
    expect(st.memoryConfiguredBytes).toBe(256n * 1024n * 1024n);
    expect(st.threads).toBeGreaterThan(1);
    expect(st.nics).toHaveLength(1);
    expect(st.nics[0]!.hostInterface).toMatch(/^vt[0-9a-f]{10}n0$/);
    const before = st.nics[0]!.rxBytes;
    for (let i = 0; i < 5; i++) await httpGet(`http://127.0.0.1:${guest.port}/`);
    const st2 = await vmm.getVmStats({ id: "top-1" });
    expect(st2.nics[0]!.rxBytes).toBeGreaterThan(before);
    expect(st2.nics[0]!.txPackets).toBeGreaterThan(0n);
    const idle = await vmm.getVmStats({ id: "top-idle" });
    expect(idle.status).toBe(VmStatus.STOPPED);
    expect(idle.sampledAt).toBeUndefined();
    await expect(vmm.getVmStats({ id: "no-such-vm" })).rejects.toThrow(/not found/);
    await expect(vmm.getVmStats({ id: "Bad Id" })).rejects.toThrow(/id: must be/);

    // Keep the guest busy enough to be seen: requests while top runs.
    let load = true;
    const loading = (async () => {
      while (load) await httpGet(`http://127.0.0.1:${guest.port}/`).catch(() => undefined);
    })();
    const r = await runAsync(["python3", "-c", PTY_RUN, "60", process.execPath, CLI, "--socket", d!.socket, "--token", ADMIN, "top", "--interval", "1", "--iterations", "3"]);
    load = false;
    await loading;
    expect(r.status, r.stderr + r.stdout).toBe(0);
    const screen = r.stdout;
    // Redrawn in place: clear-screen before every frame.
    expect(screen.split("\x1b[H\x1b[2J").length - 1).toBe(3);
    const last = screen.split("\x1b[H\x1b[2J").pop()!.replace(/\r/g, "");
    expect(last).toMatch(/2 VMs, 1 running/);
    const row = last.split("\n").find((l) => l.startsWith("top-1 "));
    expect(row, last).toBeDefined();
    const cols = row!.split(/\s{3,}/);
    // ID NAME STATUS CPU% RSS MEMORY UPTIME RX TX
    expect(cols[1]).toBe("top-1 guest");
    expect(cols[2]).toBe("running");
    expect(Number(cols[3])).toBeGreaterThan(0);
    expect(cols[5]).toBe("256 MiB");
    expect(cols[7]).toMatch(/\/s$/);
    expect(last).toMatch(/^ {2}nic0 {3,}vt[0-9a-f]{10}n0 .* \d+p/m);
    const idleRow = last.split("\n").find((l) => l.startsWith("top-idle "));
    expect(idleRow!.split(/\s{3,}/).slice(2, 4)).toEqual(["stopped", "-"]);
  }, 300_000);

  it("refuses bad flags with a usage error", () => {
    const r = spawnSync(process.execPath, [CLI, "--socket", d!.socket, "--token", ADMIN, "top", "--interval", "0", "--iterations", "x"], { encoding: "utf8", timeout: 30_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("--interval \"0\": must be an integer 1-3600");
    expect(r.stderr).toContain("--iterations \"x\": must be an integer 1-1000000");
  });
});
