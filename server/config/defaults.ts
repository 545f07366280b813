// Defaults. fillDefaults cannot fail: it takes whatever the TOML file held
// (already checked for types by load.ts) and fills every unset value.
// Precedence: value in vmm.toml > environment (VMM_STATE_DIR) > built-in
// default. Unset is `undefined`, never a falsy value: `??`, not `||`.
import { join, resolve } from "node:path";
import type { Config, NetMode } from "./types.js";
import { CUSTOM_NETDEV_TYPES, NET_MODES } from "./types.js";

/** The shape load.ts produces: every field optional. */
export type PartialConfig = {
  [K in keyof Config]?: Config[K] extends object ? Partial<Config[K]> : Config[K];
};

/**
 * state_dir when vmm.toml leaves it unset: $VMM_STATE_DIR, else ./.vmm of the working directory,
 * made absolute.
 */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.VMM_STATE_DIR ?? join(process.cwd(), ".vmm"));
}

/** Where scripts/setup-bridge.sh's dnsmasq keeps the leases of `bridge`. */
export function defaultBridgeLeaseFile(bridge: string): string {
  return `/var/lib/vmm/bridge-${bridge}/dnsmasq.leases`;
}

/**
 * A complete Config from what vmm.toml held: every unset value gets its default (precedence at the
 * top of this file). Never throws; validateConfig judges the result.
 */
export function fillDefaults(p: PartialConfig, env: NodeJS.ProcessEnv = process.env): Config {
  // A state_dir from vmm.toml is taken as written (validate insists on an
  // absolute path); the environment and built-in defaults are resolved.
  const stateDir = p.stateDir ?? defaultStateDir(env);
  const n = p.networking ?? {};
  const defaultMode: NetMode = n.defaultMode ?? "user";
  return {
    stateDir,
    nice: p.nice ?? -5,
    api: {
      socket: p.api?.socket ?? join(stateDir, "vmmd.sock"),
      socketMode: p.api?.socketMode ?? 0o600,
      tcp: p.api?.tcp ?? "",
      allowRemote: p.api?.allowRemote ?? false,
      maxConnections: p.api?.maxConnections ?? 1024,
      headerTimeoutSeconds: p.api?.headerTimeoutSeconds ?? 10,
      bodyTimeoutSeconds: p.api?.bodyTimeoutSeconds ?? 10,
      idleTimeoutSeconds: p.api?.idleTimeoutSeconds ?? 60,
    },
    auth: {
      tokens: p.auth?.tokens ?? [],
      leaseTokens: p.auth?.leaseTokens ?? [],
    },
    qemu: {
      binary: p.qemu?.binary ?? "qemu-system-x86_64",
      accel: p.qemu?.accel ?? "auto",
      bridgeHelper: p.qemu?.bridgeHelper ?? "/usr/lib/qemu/qemu-bridge-helper",
      stopTimeoutSeconds: p.qemu?.stopTimeoutSeconds ?? 30,
      user: p.qemu?.user ?? "vmm-qemu",
    },
    networking: {
      defaultMode,
      macPrefix: n.macPrefix ?? "",
      bridge: n.bridge ?? "vmmbr0",
      macvtapParent: n.macvtapParent ?? "",
      // custom is opt-in: a netdev value is a root-level capability (docs/security.md).
      allowedModes: n.allowedModes ?? NET_MODES.filter((m) => m !== "custom"),
      customNetdevTypes: n.customNetdevTypes ?? [...CUSTOM_NETDEV_TYPES],
      allowedBridges: n.allowedBridges ?? [],
      allowedMacvtapParents: n.allowedMacvtapParents ?? [],
      bridgeSubnets: n.bridgeSubnets ?? {},
      bridgeLeaseFiles: {
        ...Object.fromEntries(Object.keys(n.bridgeSubnets ?? {}).map((b) => [b, defaultBridgeLeaseFile(b)])),
        ...n.bridgeLeaseFiles,
      },
      leaseVerification: n.leaseVerification ?? "arp",
      leaseVerifyIntervalSeconds: n.leaseVerifyIntervalSeconds ?? 30,
      forwardServiceEnabled: n.forwardServiceEnabled ?? false,
      passtBinary: n.passtBinary ?? "passt",
      passtInterface: n.passtInterface ?? "",
      passtAddress: n.passtAddress ?? "",
      passtPrefixLength: n.passtPrefixLength ?? 0,
      passtGateway: n.passtGateway ?? "",
    },
    forward: {
      relay: p.forward?.relay ?? "auto",
      relayPollUs: p.forward?.relayPollUs ?? 50,
      portMin: p.forward?.portMin ?? 1024,
      portMax: p.forward?.portMax ?? 65535,
      allowedListenAddresses: p.forward?.allowedListenAddresses ?? ["127.0.0.1", "::1"],
      connectTimeoutMs: p.forward?.connectTimeoutMs ?? 5000,
      maxConnectionsPerRule: p.forward?.maxConnectionsPerRule ?? 4096,
      udpIdleSeconds: p.forward?.udpIdleSeconds ?? 60,
      maxUdpSessionsPerRule: p.forward?.maxUdpSessionsPerRule ?? 1024,
      defaultPath: p.forward?.defaultPath ?? "userspace",
    },
    vmnet: {
      subnetPool: p.vmnet?.subnetPool ?? "192.168.128.0/17",
      bridgePrefix: p.vmnet?.bridgePrefix ?? "vmnet",
      dhcpHook: p.vmnet?.dhcpHook ?? "",
      maxHoldersPerNetwork: p.vmnet?.maxHoldersPerNetwork ?? 64,
    },
    images: { dir: p.images?.dir ?? join(stateDir, "images") },
    console: {
      logMaxBytes: p.console?.logMaxBytes ?? 1024 * 1024,
      logFiles: p.console?.logFiles ?? 1,
    },
    metrics: {
      listen: p.metrics?.listen ?? "",
    },
    ui: {
      enabled: p.ui?.enabled ?? true,
    },
  };
}
