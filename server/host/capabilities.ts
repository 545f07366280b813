// Probes what this host can run: QEMU's version, passt, the bridge helper,
// the native addon. Done once at daemon start; GetMeta reports it.
import { execFile, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, isAbsolute, join } from "node:path";
import type { Config, NetMode } from "../config/types.js";

/**
 * What this host can run, probed once at start (GetMeta reports it): QEMU and passt paths ("" when
 * missing), the bridge helper, the addon, root, the modes that follow.
 */
export interface Capabilities {
  qemuVersion: string;
  qemuPath: string;
  passtPath: string;
  bridgeHelper: boolean;
  nativeAddon: boolean;
  root: boolean;
  modes: NetMode[];
  /** Accelerator guests get, from qemu.accel and the KVM probe. */
  accel: "kvm" | "tcg";
  /** Why, e.g. "auto: /dev/kvm is usable". */
  accelReason: string;
}

/**
 * Whether QEMU can run a vCPU under KVM here. /dev/kvm existing is not
 * enough: some hosts have a /dev/kvm whose vCPUs fail at reset (a nested
 * virtualization module that rejects MSR writes). So QEMU itself creates a
 * paused machine with a vCPU and quits on the monitor's "q": exit status 0
 * means KVM works.
 */
export function probeKvm(qemuPath: string, timeoutMs = 10_000): Promise<{ usable: boolean; reason: string }> {
  try {
    accessSync("/dev/kvm", constants.R_OK | constants.W_OK);
  } catch (e) {
    return Promise.resolve({ usable: false, reason: `/dev/kvm is not usable (${(e as NodeJS.ErrnoException).code ?? String(e)})` });
  }
  return new Promise((resolve) => {
    const child = spawn(qemuPath, ["-accel", "kvm", "-machine", "pc", "-cpu", "host", "-nodefaults", "-display", "none", "-monitor", "stdio", "-S"], { stdio: ["pipe", "ignore", "pipe"] });
    let err = "";
    child.stderr.setEncoding("utf8").on("data", (d: string) => (err += d.slice(0, 4096)));
    child.stdin.on("error", () => undefined);
    child.stdin.end("q\n");
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      resolve({ usable: false, reason: `cannot run ${qemuPath}: ${e.message}` });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const why = err.trim().split("\n")[0] ?? "";
      resolve(code === 0 ? { usable: true, reason: "/dev/kvm is usable" } : { usable: false, reason: `QEMU cannot use KVM: ${why || (signal ? `killed by ${signal}` : `exit status ${code}`)}` });
    });
  });
}

/** The accelerator for `qemu.accel` given what the KVM probe found. Pure. */
export function chooseAccel(setting: string, kvm: { usable: boolean; reason: string }): { accel: "kvm" | "tcg"; reason: string } {
  if (setting === "tcg") return { accel: "tcg", reason: "qemu.accel = tcg" };
  if (setting === "kvm") return { accel: "kvm", reason: kvm.usable ? "qemu.accel = kvm" : `qemu.accel = kvm, although ${kvm.reason}` };
  return kvm.usable ? { accel: "kvm", reason: `${setting}: ${kvm.reason}` } : { accel: "tcg", reason: `${setting}: ${kvm.reason}; using TCG` };
}

/** Resolves a program name like `which` does; "" when absent. */
export function findProgram(name: string, env: NodeJS.ProcessEnv = process.env): string {
  const candidates = isAbsolute(name) ? [name] : (env.PATH ?? "").split(delimiter).filter(Boolean).map((d) => join(d, name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // keep looking
    }
  }
  return "";
}

function run(file: string, args: string[]): Promise<string> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 5000 }, (err, stdout) => resolve(err ? "" : stdout));
  });
}

/**
 * Probes the programs `cfg` names, the addon (`nativeAvailable`) and KVM; never throws: what is
 * missing is reported as missing.
 */
export async function probeCapabilities(cfg: Config, nativeAvailable: boolean): Promise<Capabilities> {
  const qemuPath = findProgram(cfg.qemu.binary);
  const out = qemuPath ? await run(qemuPath, ["--version"]) : "";
  const qemuVersion = /version\s+([0-9][^\s]*)/.exec(out)?.[1] ?? "";
  const passtPath = findProgram(cfg.networking.passtBinary);
  const bridgeHelper = findProgram(cfg.qemu.bridgeHelper) !== "";
  const root = process.getuid?.() === 0;
  const modes: NetMode[] = [];
  if (qemuPath) {
    modes.push("user");
    if (passtPath) modes.push("passt");
    if (bridgeHelper) modes.push("bridge");
    if (nativeAvailable && root && process.platform === "linux") modes.push("tap", "macvtap", "vmnet");
    modes.push("custom");
  }
  const kvm = qemuPath && cfg.qemu.accel !== "tcg" ? await probeKvm(qemuPath) : { usable: false, reason: qemuPath ? "not probed" : "QEMU not found" };
  const { accel, reason: accelReason } = chooseAccel(cfg.qemu.accel, kvm);
  return {
    accel,
    accelReason,
    qemuVersion,
    qemuPath,
    passtPath,
    bridgeHelper,
    nativeAddon: nativeAvailable,
    root,
    modes: modes.filter((m) => cfg.networking.allowedModes.includes(m)),
  };
}
