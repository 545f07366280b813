// The NicHost of a Linux host: iproute2 for links, the native addon for TAP
// and macvtap fds, passt as a detached process, the vmnet networks for
// attachments.
import { existsSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { closeFd, openMacvtap, openTap } from "../../../native/tap.js";
import { precondition, VmmError } from "../../errors.js";
import { addToBridge, createMacvtap, deleteLink, linkExists } from "../../host/iproute.js";
import { spawnDetached, stopProcess, tailOfLog, waitUntil, type ProcessRef } from "../../host/process.js";
import { buildPasstArgv, preparePasstRuntimeDir, type PasstOptions } from "../../net/passt.js";
import type { RunFiles } from "../store.js";
import type { NetworkAttacher, PortSpec } from "../types.js";
import type { NicHost } from "./types.js";

/** Host identity passt should use where the host has no default route. */
export type PasstHostConfig = Pick<PasstOptions, "interface" | "address" | "prefixLength" | "gateway">;

/** What the Linux NicHost needs from the configuration and the other floors. */
export interface LinuxNicHostOptions {
  bridgeHelper: string;
  passtBinary: string;
  passtHost?: PasstHostConfig;
  networks: NetworkAttacher;
}

async function startPasst(o: LinuxNicHostOptions, f: RunFiles, ports: readonly PortSpec[]): Promise<ProcessRef> {
  // passt drops to nobody before it binds its socket: every ancestor of
  // its directory must be traversable by others, or it fails silently.
  const sockDir = dirname(f.passtSock);
  for (let dir = dirname(sockDir); dir !== "/"; dir = dirname(dir)) {
    if (existsSync(dir) && (statSync(dir).mode & 0o001) === 0)
      throw precondition(`passt runs as nobody and cannot reach ${sockDir}: ${dir} is not traversable by others (chmod o+x ${dir})`);
  }
  const passtDir = preparePasstRuntimeDir(f.passtSock);
  rmSync(f.passtSock, { force: true });
  const argv = buildPasstArgv({
    socketPath: f.passtSock,
    pidFile: f.passtPid,
    ports: ports.map((p) => ({ protocol: p.protocol, hostAddress: p.hostAddress, hostPort: p.hostPort, guestPort: p.vmPort })),
    ...(o.passtHost ?? {}),
  });
  // No --log-file: passt opens it after dropping capabilities but before
  // becoming nobody, so no directory suits it; its stderr (foreground)
  // goes to passt.log instead.
  const ref = await spawnDetached({ argv: [o.passtBinary, ...argv], logFile: f.passtLog, cwd: passtDir });
  const up = await waitUntil(() => existsSync(f.passtSock) || !existsSync(`/proc/${ref.pid}`), 10_000);
  if (!up || !existsSync(f.passtSock)) {
    await stopProcess(ref, { graceMs: 1000 }).catch(() => undefined);
    throw new VmmError("precondition", `passt did not create ${f.passtSock}: ${tailOfLog(f.passtLog) || "no output"}`);
  }
  return ref;
}

/** The real NicHost (Linux). */
export function linuxNicHost(o: LinuxNicHostOptions): NicHost {
  return {
    bridgeHelper: o.bridgeHelper,
    linkExists: (name) => linkExists(name),
    deleteLink: (name) => deleteLink(name, { ignoreMissing: true }),
    addToBridge: (dev, bridge) => addToBridge(dev, bridge),
    createMacvtap: (name, parent, mac) => createMacvtap(name, parent, mac),
    openTap: (name) => openTap(name, { vnetHdr: true }).fd,
    openMacvtap: (ifindex) => openMacvtap(ifindex).fd,
    closeFd: (fd) => closeFd(fd),
    startPasst: (files, ports) => startPasst(o, files, ports),
    stopProcess: (ref) => stopProcess(ref, { graceMs: 2000 }),
    networkAttachment: (networkId, mac) => o.networks.attachment(networkId, mac),
  };
}
