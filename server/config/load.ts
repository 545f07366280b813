// Loading vmm.toml: parse, check every key's type (reporting each problem
// with its path, e.g. `networking.mac_prefix`), map snake_case to the typed
// config, fill defaults, validate. The daemon runs with no file at all on the
// embedded defaults (defaults.ts).
import { readFileSync } from "node:fs";
import { parse, stringify, TomlError } from "smol-toml";
import { Problems, ValidationError, VmmError } from "../errors.js";
import { fillDefaults, type PartialConfig } from "./defaults.js";
import type { Config } from "./types.js";
export type { Config };
import { validateConfig } from "./validate.js";

type Kind = "string" | "boolean" | "integer" | "string[]" | "string-map" | "mode-int";

/** TOML key -> [config property, kind], per section. "" is the top level. */
const SCHEMA: Record<string, Record<string, [string, Kind]>> = {
  "": { state_dir: ["stateDir", "string"], nice: ["nice", "integer"] },
  api: {
    socket: ["socket", "string"],
    socket_mode: ["socketMode", "mode-int"],
    tcp: ["tcp", "string"],
    allow_remote: ["allowRemote", "boolean"],
    max_connections: ["maxConnections", "integer"],
    header_timeout_seconds: ["headerTimeoutSeconds", "integer"],
    body_timeout_seconds: ["bodyTimeoutSeconds", "integer"],
    idle_timeout_seconds: ["idleTimeoutSeconds", "integer"],
  },
  auth: { tokens: ["tokens", "string[]"], lease_tokens: ["leaseTokens", "string[]"] },
  qemu: {
    binary: ["binary", "string"],
    accel: ["accel", "string"],
    bridge_helper: ["bridgeHelper", "string"],
    stop_timeout_seconds: ["stopTimeoutSeconds", "integer"],
    user: ["user", "string"],
  },
  networking: {
    default_mode: ["defaultMode", "string"],
    mac_prefix: ["macPrefix", "string"],
    bridge: ["bridge", "string"],
    macvtap_parent: ["macvtapParent", "string"],
    allowed_modes: ["allowedModes", "string[]"],
    custom_netdev_types: ["customNetdevTypes", "string[]"],
    allowed_bridges: ["allowedBridges", "string[]"],
    allowed_macvtap_parents: ["allowedMacvtapParents", "string[]"],
    bridge_subnets: ["bridgeSubnets", "string-map"],
    bridge_lease_files: ["bridgeLeaseFiles", "string-map"],
    lease_verification: ["leaseVerification", "string"],
    lease_verify_interval_seconds: ["leaseVerifyIntervalSeconds", "integer"],
    forward_service_enabled: ["forwardServiceEnabled", "boolean"],
    passt_binary: ["passtBinary", "string"],
    passt_interface: ["passtInterface", "string"],
    passt_address: ["passtAddress", "string"],
    passt_prefix_length: ["passtPrefixLength", "integer"],
    passt_gateway: ["passtGateway", "string"],
  },
  forward: {
    relay: ["relay", "string"],
    relay_poll_us: ["relayPollUs", "integer"],
    port_min: ["portMin", "integer"],
    port_max: ["portMax", "integer"],
    allowed_listen_addresses: ["allowedListenAddresses", "string[]"],
    connect_timeout_ms: ["connectTimeoutMs", "integer"],
    max_connections_per_rule: ["maxConnectionsPerRule", "integer"],
    udp_idle_seconds: ["udpIdleSeconds", "integer"],
    max_udp_sessions_per_rule: ["maxUdpSessionsPerRule", "integer"],
    default_path: ["defaultPath", "string"],
  },
  vmnet: { subnet_pool: ["subnetPool", "string"], bridge_prefix: ["bridgePrefix", "string"], dhcp_hook: ["dhcpHook", "string"], max_holders_per_network: ["maxHoldersPerNetwork", "integer"] },
  images: { dir: ["dir", "string"] },
  console: { log_max_bytes: ["logMaxBytes", "integer"], log_files: ["logFiles", "integer"] },
  metrics: { listen: ["listen", "string"] },
  ui: { enabled: ["enabled", "boolean"] },
};

function checkKind(v: unknown, kind: Kind, path: string, problems: Problems): unknown {
  const bad = (what: string) => {
    problems.add(path, `must be ${what}`);
    return undefined;
  };
  switch (kind) {
    case "string":
      return typeof v === "string" ? v : bad("a string");
    case "boolean":
      return typeof v === "boolean" ? v : bad("true or false");
    case "integer":
      return typeof v === "number" && Number.isInteger(v) ? v : bad("an integer");
    case "mode-int":
      // Accept 384 or "0600": octal strings are how people write modes.
      if (typeof v === "number" && Number.isInteger(v)) return v;
      if (typeof v === "string" && /^0?[0-7]{3}$/.test(v)) return parseInt(v, 8);
      return bad('an octal mode such as "0600"');
    case "string[]":
      return Array.isArray(v) && v.every((x) => typeof x === "string") ? v : bad("an array of strings");
    case "string-map":
      return v !== null && typeof v === "object" && !Array.isArray(v) && Object.values(v).every((x) => typeof x === "string")
        ? { ...(v as Record<string, string>) }
        : bad("a table of strings");
  }
}

/** Maps parsed TOML onto PartialConfig, collecting type problems. */
export function fromToml(doc: Record<string, unknown>, problems: Problems): PartialConfig {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc)) {
    const top = SCHEMA[""]![key];
    if (top) {
      out[top[0]] = checkKind(value, top[1], key, problems);
      continue;
    }
    const section = SCHEMA[key];
    if (!section) {
      problems.add(key, "unknown key");
      continue;
    }
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      problems.add(key, "must be a table");
      continue;
    }
    const sec: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const entry = section[k];
      if (!entry) {
        problems.add(`${key}.${k}`, "unknown key");
        continue;
      }
      const checked = checkKind(v, entry[1], `${key}.${k}`, problems);
      if (checked !== undefined) sec[entry[0]] = checked;
    }
    out[key] = sec;
  }
  return out;
}

/** Parses TOML text into a validated Config; throws ValidationError with every problem. */
export function parseConfig(text: string, source: string, env: NodeJS.ProcessEnv = process.env): Config {
  let doc: Record<string, unknown>;
  try {
    doc = parse(text);
  } catch (e) {
    const where = e instanceof TomlError ? ` (line ${e.line}, column ${e.column})` : "";
    throw new VmmError("invalid", `${source}: not valid TOML${where}: ${(e as Error).message.split("\n")[0]}`, { cause: e });
  }
  const problems = new Problems();
  const partial = fromToml(doc, problems);
  // Values of the wrong type were left out (their defaults apply), so the
  // rest can still be validated: one run reports unknown keys, wrong types
  // and bad values together.
  const config = fillDefaults(partial, env);
  try {
    validateConfig(config);
  } catch (e) {
    if (!(e instanceof ValidationError)) throw e;
    for (const q of e.problems) problems.add(q.field, q.message);
  }
  problems.throwIfAny();
  return config;
}

/**
 * The effective configuration as vmm.toml text that loads back to the same
 * configuration (vmmd --print-config). Tokens are left out, with a comment
 * saying how many there are: they are secrets.
 */
export function toToml(c: Config): string {
  const doc: Record<string, unknown> = {};
  const notes: string[] = [];
  for (const [section, keys] of Object.entries(SCHEMA)) {
    const from = (section === "" ? c : (c as unknown as Record<string, Record<string, unknown>>)[section]) as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [key, [prop, kind]] of Object.entries(keys)) {
      const v = from[prop];
      if (section === "auth") {
        const n = (v as string[]).length;
        if (n > 0) notes.push(`# auth.${key}: ${n} token(s), not shown`);
        continue;
      }
      out[key] = kind === "mode-int" ? (v as number).toString(8).padStart(4, "0") : v;
    }
    if (section === "") Object.assign(doc, out);
    else if (Object.keys(out).length > 0) doc[section] = out;
  }
  return (notes.length > 0 ? notes.join("\n") + "\n" : "") + stringify(doc) + "\n";
}

/** Loads `path`, or the embedded defaults when `path` is undefined. */
export function loadConfig(path: string | undefined, env: NodeJS.ProcessEnv = process.env): Config {
  if (path === undefined) {
    const config = fillDefaults({}, env);
    validateConfig(config);
    return config;
  }
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new VmmError("invalid", `config file ${path}: ${(e as Error).message}`, { cause: e });
  }
  return parseConfig(text, path, env);
}
