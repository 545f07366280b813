// Test harness for booting the test guest (scripts/setup-guest.sh) with the
// daemon's own building blocks: qemu-argv, process, qmp. Everything it
// starts is registered on a CleanupStack (server/cleanup.ts: LIFO, like lima's onClose) so a
// failing test still removes its interfaces and processes.
import { existsSync, mkdtempSync, readFileSync, writeFileSync, chmodSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildQemuArgv, type NicSpec, type QemuSpec } from "../../server/vm/qemu-argv.js";
import { QmpClient } from "../../server/vm/qmp.js";
import { isAlive, spawnDetached, stopProcess, waitForExit, waitUntil, type ProcessRef } from "../../server/host/process.js";
import { guestInitrd, guestKernel } from "./paths.js";
import { runProgram } from "../../server/host/exec.js";
import type { CleanupStack } from "../../server/cleanup.js";

export const QEMU_BIN = process.env.VMM_QEMU ?? "qemu-system-x86_64";

/** A fresh work dir searchable by others (passt runs as nobody below it). */
export function workDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `vmm-${prefix}-`));
  chmodSync(d, 0o711);
  return d;
}

/** Starts a detached process and registers a bounded stop on `cleanup`. */
export async function startProcess(cleanup: CleanupStack, what: string, argv: string[], logFile: string, extraFds?: number[]): Promise<ProcessRef> {
  const ref = await spawnDetached({ argv, logFile, extraFds });
  cleanup.push(`stop ${what} (pid ${ref.pid})`, () => stopProcess(ref, { graceMs: 3000 }));
  return ref;
}

export interface Guest {
  name: string;
  dir: string;
  ref: ProcessRef;
  qmpSocket: string;
  serialPath: string;
  logFile: string;
  /** From the guest's VMM-GUEST-READY line. */
  ip: string;
  mac: string;
  bootMs: number;
}

export interface BootOptions {
  name: string;
  dir: string;
  nics: NicSpec[];
  /** fds the NICs refer to as 3, 4, ... (closed by the caller after boot returns). */
  extraFds?: number[];
  /** Extra kernel command line (vmm.* knobs). */
  append?: string;
  readyTimeoutMs?: number;
}

/** Boots the test guest and waits (bounded) for its VMM-GUEST-READY line. */
export async function bootGuest(cleanup: CleanupStack, o: BootOptions): Promise<Guest> {
  const serialPath = join(o.dir, `${o.name}.serial`);
  const qmpSocket = join(o.dir, `${o.name}.qmp`);
  const logFile = join(o.dir, `${o.name}.qemu.log`);
  const spec: QemuSpec = {
    name: o.name,
    accel: "tcg",
    memoryMiB: 256,
    cpus: 1,
    kernel: guestKernel(),
    initrd: guestInitrd(),
    append: `console=ttyS0 quiet panic=-1 vmm.hostname=${o.name}${o.append ? ` ${o.append}` : ""}`,
    serialPath,
    qmpSocket,
    noReboot: true,
    nics: o.nics,
  };
  const t0 = Date.now();
  const ref = await startProcess(cleanup, `qemu ${o.name}`, [QEMU_BIN, ...buildQemuArgv(spec)], logFile, o.extraFds);
  const serial = () => (existsSync(serialPath) ? readFileSync(serialPath, "latin1") : "");
  let exited = false;
  const ready = await waitUntil(
    async () => {
      if (/VMM-GUEST-READY/.test(serial())) return true;
      if (!(await isAlive(ref))) {
        exited = true;
        return true;
      }
      return false;
    },
    o.readyTimeoutMs ?? 120_000,
    100,
  );
  const m = /VMM-GUEST-READY ip=(\S+) mac=(\S+)/.exec(serial());
  if (!ready || exited || !m) {
    const qlog = existsSync(logFile) ? readFileSync(logFile, "utf8") : "";
    throw new Error(
      `guest ${o.name} not ready (${exited ? "QEMU exited" : "timeout"}).\nQEMU log:\n${qlog.slice(-2000)}\nserial tail:\n${serial().slice(-2000)}`,
    );
  }
  return { name: o.name, dir: o.dir, ref, qmpSocket, serialPath, logFile, ip: m[1]!, mac: m[2]!, bootMs: Date.now() - t0 };
}

/**
 * Presses the ACPI power button over QMP and waits (bounded) for QEMU to
 * exit. Returns how long it took and whether the guest said
 * VMM-GUEST-POWEROFF.
 */
export async function powerdownGuest(g: Guest, timeoutMs = 10_000): Promise<{ ms: number; exited: boolean; guestSaid: boolean; shutdownEvent: boolean }> {
  const qmp = await QmpClient.connect(g.qmpSocket, { timeoutMs: 5000 });
  try {
    const status = await qmp.queryStatus();
    if (status.status !== "running") throw new Error(`guest ${g.name} is ${status.status}, not running`);
    let shutdownEvent = false;
    qmp.once("SHUTDOWN", () => (shutdownEvent = true));
    const t0 = Date.now();
    await qmp.systemPowerdown();
    const exited = await waitForExit(g.ref, timeoutMs);
    const guestSaid = readFileSync(g.serialPath, "latin1").includes("VMM-GUEST-POWEROFF");
    return { ms: Date.now() - t0, exited, guestSaid, shutdownEvent };
  } finally {
    qmp.close();
  }
}

// Shared with the API-level tests.
export { freePort, httpGet } from "../helpers/net.js";

/** Sends `text` to a TCP echo server and resolves with what came back before `timeoutMs`. */
export function tcpEcho(host: string, port: number, text: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = createConnection({ host, port });
    let got = "";
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`echo ${host}:${port}: timeout, got "${got}"`));
    }, timeoutMs);
    s.setEncoding("utf8");
    s.on("connect", () => s.write(text));
    s.on("data", (d: string) => {
      got += d;
      if (got.length >= text.length) {
        clearTimeout(timer);
        s.destroy();
        resolve(got);
      }
    });
    s.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** Runs a program without a shell (the daemon's own runner); resolves with stdout. */
export function run(argv: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  return runProgram(argv, opts);
}

export interface Dnsmasq {
  ref: ProcessRef;
  leaseFile: string;
  logFile: string;
}

/**
 * Starts dnsmasq as a DHCP server bound to `iface` only (no DNS:
 * --port=0; --no-ping saves ~3 s per lease). Every file it writes is a real
 * file in `dir`: never /dev/null, which root dnsmasq would delete. `wrapper`
 * runs it in another namespace (nsenter).
 */
export async function startDnsmasq(
  cleanup: CleanupStack,
  o: { dir: string; iface: string; rangeStart: string; rangeEnd: string; wrapper?: string[] },
): Promise<Dnsmasq> {
  const conf = join(o.dir, `dnsmasq-${o.iface}.conf`);
  writeFileSync(conf, "");
  const leaseFile = join(o.dir, `dnsmasq-${o.iface}.leases`);
  const pidFile = join(o.dir, `dnsmasq-${o.iface}.pid`);
  const logFile = join(o.dir, `dnsmasq-${o.iface}.log`);
  const argv = [
    ...(o.wrapper ?? []),
    "dnsmasq",
    "--keep-in-foreground",
    `--conf-file=${conf}`,
    `--interface=${o.iface}`,
    "--bind-interfaces",
    "--except-interface=lo",
    `--dhcp-range=${o.rangeStart},${o.rangeEnd},12h`,
    "--dhcp-authoritative",
    "--no-ping",
    "--port=0",
    "--no-resolv",
    "--no-hosts",
    `--dhcp-leasefile=${leaseFile}`,
    `--pid-file=${pidFile}`,
    `--log-facility=${logFile}`,
    "--log-dhcp",
  ];
  const ref = await startProcess(cleanup, `dnsmasq on ${o.iface}`, argv, join(o.dir, `dnsmasq-${o.iface}.out`));
  // Up once it has written its pid file (after binding); bounded.
  const up = await waitUntil(() => existsSync(pidFile), 5000);
  if (!up || !(await isAlive(ref))) {
    const out = existsSync(join(o.dir, `dnsmasq-${o.iface}.out`)) ? readFileSync(join(o.dir, `dnsmasq-${o.iface}.out`), "utf8") : "";
    throw new Error(`dnsmasq on ${o.iface} did not start: ${out}`);
  }
  return { ref, leaseFile, logFile };
}
