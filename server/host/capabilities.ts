// Probes what this host can run: QEMU's version, passt, the bridge helper,
// the native addon. Done once at daemon start; GetMeta reports it.
import { execFile } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { delimiter, isAbsolute, join } from "node:path";
import type { Config, NetMode } from "../config/types.js";

export interface Capabilities {
  qemuVersion: string;
  qemuPath: string;
  passtPath: string;
  bridgeHelper: boolean;
  nativeAddon: boolean;
  root: boolean;
  modes: NetMode[];
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
  return {
    qemuVersion,
    qemuPath,
    passtPath,
    bridgeHelper,
    nativeAddon: nativeAvailable,
    root,
    modes: modes.filter((m) => cfg.networking.allowedModes.includes(m)),
  };
}
