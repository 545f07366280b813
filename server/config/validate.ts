// Semantic validation of a filled Config. Reports every problem at once, each
// with the vmm.toml path of the field. Values validated here end up in QEMU
// and passt argv, dnsmasq config files and nftables rules: a name with a
// comma, space or newline would inject options there, so names are held to
// strict character sets rather than merely "non-empty".
import { isAbsolute } from "node:path";
import { Problems } from "../errors.js";
import { isValidIfName, pathProblem, UNIX_PATH_MAX } from "../check.js";
import { STOP_TIMEOUT_SECONDS } from "../contract.js";
import { isLoopback, isPrivateIpv4Cidr, parseHostPort, parseIpv4Cidr, PRIVATE_IPV4 } from "../net/addr.js";
import { isIP } from "node:net";
import { CUSTOM_NETDEV_TYPES, NET_MODES, type Config } from "./types.js";

const MAC_PREFIX = /^$|^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){0,2}$/;
const TOKEN = /^[\x21-\x7e]{16,512}$/;

/**
 * A TCP listener address (`field`, "" for none): "host:port"; off loopback
 * only with api.allow_remote and admin tokens, since whoever reaches it
 * holds the daemon's power.
 */
function checkListener(p: Problems, c: Config, field: string, value: string, example: string): void {
  if (value === "") return;
  const hp = parseHostPort(value);
  if (!hp) p.add(field, `must be "host:port" (e.g. "${example}")`);
  else if (!isLoopback(hp.host) && !c.api.allowRemote) p.add(field, `${hp.host} is not a loopback address; set api.allow_remote = true to listen on it`);
  else if (!isLoopback(hp.host) && c.auth.tokens.length === 0) p.add(field, "a non-loopback listener requires auth.tokens");
}

/**
 * Throws a ValidationError listing every problem of `c`, each with its vmm.toml path (`api.tcp`,
 * `networking.bridge_subnets.br0`, ...); returns when there is none.
 */
export function validateConfig(c: Config): void {
  const p = new Problems();
  // VM run files (QMP and passt sockets, serial log) below state_dir reach
  // QEMU option values, where a comma or white space would inject options.
  const stateDirProblem = pathProblem(c.stateDir);
  if (stateDirProblem !== undefined) p.add("state_dir", stateDirProblem);
  if (c.nice < -20 || c.nice > 19) p.add("nice", "must be between -20 and 19");

  if (c.api.socket !== "" && !isAbsolute(c.api.socket)) p.add("api.socket", "must be an absolute path or empty");
  if (Buffer.byteLength(c.api.socket) > UNIX_PATH_MAX) p.add("api.socket", `is longer than a unix socket path may be (${UNIX_PATH_MAX} bytes)`);
  if (c.api.socketMode < 0 || c.api.socketMode > 0o777) p.add("api.socket_mode", "must be between 0000 and 0777");
  checkListener(p, c, "api.tcp", c.api.tcp, "127.0.0.1:8080");
  if (c.api.socket === "" && c.api.tcp === "") p.add("api", "at least one of api.socket and api.tcp must be set");
  if (c.api.maxConnections < 1 || c.api.maxConnections > 1_000_000) p.add("api.max_connections", "must be between 1 and 1000000");
  for (const [key, v] of [["header_timeout_seconds", c.api.headerTimeoutSeconds], ["body_timeout_seconds", c.api.bodyTimeoutSeconds], ["idle_timeout_seconds", c.api.idleTimeoutSeconds]] as const) {
    if (v < 1 || v > 3600) p.add(`api.${key}`, "must be between 1 and 3600");
  }

  c.auth.tokens.forEach((t, i) => {
    if (!TOKEN.test(t)) p.add(`auth.tokens[${i}]`, "must be 16-512 printable ASCII characters without spaces");
  });
  c.auth.leaseTokens.forEach((t, i) => {
    if (!TOKEN.test(t)) p.add(`auth.lease_tokens[${i}]`, "must be 16-512 printable ASCII characters without spaces");
    if (c.auth.tokens.includes(t)) p.add(`auth.lease_tokens[${i}]`, "must differ from every admin token");
  });
  if (c.auth.leaseTokens.length > 0 && c.auth.tokens.length === 0)
    p.add("auth.tokens", "must be set when auth.lease_tokens is (otherwise nobody could call the other RPCs)");

  if (!/^(auto|tcg|kvm|kvm:tcg)$/.test(c.qemu.accel)) p.add("qemu.accel", 'must be "auto", "tcg", "kvm" or "kvm:tcg"');
  if (c.qemu.binary === "" || /[\s,]/.test(c.qemu.binary)) p.add("qemu.binary", "must be a program name or path without spaces");
  if (!isAbsolute(c.qemu.bridgeHelper)) p.add("qemu.bridge_helper", "must be an absolute path");
  const stop = STOP_TIMEOUT_SECONDS;
  if (c.qemu.stopTimeoutSeconds < stop.min || c.qemu.stopTimeoutSeconds > stop.max)
    p.add("qemu.stop_timeout_seconds", `must be between ${stop.min} and ${stop.max}`);
  // QEMU's -runas takes a user name; a comma would start another option.
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(c.qemu.user)) p.add("qemu.user", "must be a user name (1-32 of a-z 0-9 _ -, starting with a letter or _)");
  else if (c.qemu.user === "root") p.add("qemu.user", "must not be root: guests run as an unprivileged user");

  const n = c.networking;
  if (!NET_MODES.includes(n.defaultMode)) p.add("networking.default_mode", `must be one of ${NET_MODES.join(", ")}`);
  else if (!n.allowedModes.includes(n.defaultMode)) p.add("networking.default_mode", "must be one of networking.allowed_modes");
  n.allowedModes.forEach((m, i) => {
    if (!NET_MODES.includes(m)) p.add(`networking.allowed_modes[${i}]`, `"${m}" is not one of ${NET_MODES.join(", ")}`);
  });
  n.customNetdevTypes.forEach((t, i) => {
    if (!CUSTOM_NETDEV_TYPES.includes(t)) p.add(`networking.custom_netdev_types[${i}]`, `"${t}" is not one of ${CUSTOM_NETDEV_TYPES.join(", ")}`);
  });
  if (!MAC_PREFIX.test(n.macPrefix)) p.add("networking.mac_prefix", 'must be 0-3 hex bytes such as "52:54:00"');
  if (!isValidIfName(n.bridge)) p.add("networking.bridge", "must be a valid interface name (1-15 of A-Z a-z 0-9 _ . -)");
  if (n.macvtapParent !== "" && !isValidIfName(n.macvtapParent)) p.add("networking.macvtap_parent", "must be a valid interface name");
  n.allowedBridges.forEach((b, i) => {
    if (!isValidIfName(b)) p.add(`networking.allowed_bridges[${i}]`, "must be a valid interface name");
  });
  n.allowedMacvtapParents.forEach((b, i) => {
    if (!isValidIfName(b)) p.add(`networking.allowed_macvtap_parents[${i}]`, "must be a valid interface name");
  });
  for (const [br, cidr] of Object.entries(n.bridgeSubnets)) {
    if (!isValidIfName(br)) p.add(`networking.bridge_subnets.${br}`, "key must be a valid interface name");
    if (!parseIpv4Cidr(cidr)) p.add(`networking.bridge_subnets.${br}`, `"${cidr}" is not an IPv4 CIDR such as "10.20.0.0/24"`);
  }
  for (const [br, path] of Object.entries(n.bridgeLeaseFiles)) {
    if (!isValidIfName(br)) p.add(`networking.bridge_lease_files.${br}`, "key must be a valid interface name");
    else if (n.bridgeSubnets[br] === undefined) p.add(`networking.bridge_lease_files.${br}`, `bridge ${br} has no subnet in networking.bridge_subnets`);
    if (!isAbsolute(path) || /[\u0000-\u001f]/.test(path)) p.add(`networking.bridge_lease_files.${br}`, "must be an absolute path");
  }
  if (n.leaseVerification !== "arp" && n.leaseVerification !== "off") p.add("networking.lease_verification", 'must be "arp" or "off"');
  if (!(n.leaseVerifyIntervalSeconds >= 1 && n.leaseVerifyIntervalSeconds <= 3600)) p.add("networking.lease_verify_interval_seconds", "must be between 1 and 3600");
  if (n.passtBinary === "" || /\s/.test(n.passtBinary)) p.add("networking.passt_binary", "must be a program name or path");

  const passtSet = [n.passtInterface !== "", n.passtAddress !== "", n.passtPrefixLength !== 0, n.passtGateway !== ""];
  if (passtSet.some(Boolean) && !passtSet.every(Boolean))
    p.add("networking.passt_interface", "passt_interface, passt_address, passt_prefix_length and passt_gateway must be set together");
  if (n.passtInterface !== "" && !isValidIfName(n.passtInterface)) p.add("networking.passt_interface", "must be a valid interface name");
  if (n.passtAddress !== "" && isIP(n.passtAddress) !== 4) p.add("networking.passt_address", "must be an IPv4 address");
  if (n.passtGateway !== "" && isIP(n.passtGateway) !== 4) p.add("networking.passt_gateway", "must be an IPv4 address");
  if (n.passtPrefixLength < 0 || n.passtPrefixLength > 32) p.add("networking.passt_prefix_length", "must be between 1 and 32");

  const f = c.forward;
  if (!["auto", "native", "sockets"].includes(f.relay)) p.add("forward.relay", 'must be "auto", "native" or "sockets"');
  if (f.relayPollUs < 0 || f.relayPollUs > 1000) p.add("forward.relay_poll_us", "must be between 0 and 1000");
  if (f.portMin < 1 || f.portMin > 65535) p.add("forward.port_min", "must be between 1 and 65535");
  if (f.portMax < 1 || f.portMax > 65535) p.add("forward.port_max", "must be between 1 and 65535");
  if (f.portMin > f.portMax) p.add("forward.port_min", "must not exceed forward.port_max");
  f.allowedListenAddresses.forEach((a, i) => {
    if (isIP(a) === 0) p.add(`forward.allowed_listen_addresses[${i}]`, `"${a}" is not an IP address`);
  });
  if (f.connectTimeoutMs < 1) p.add("forward.connect_timeout_ms", "must be positive");
  if (f.maxConnectionsPerRule < 1) p.add("forward.max_connections_per_rule", "must be positive");
  if (f.udpIdleSeconds < 1) p.add("forward.udp_idle_seconds", "must be positive");
  if (f.maxUdpSessionsPerRule < 1) p.add("forward.max_udp_sessions_per_rule", "must be positive");
  if (f.defaultPath !== "userspace" && f.defaultPath !== "nat") p.add("forward.default_path", 'must be "userspace" or "nat"');

  const pool = parseIpv4Cidr(c.vmnet.subnetPool);
  if (!pool || pool.prefix > 24) p.add("vmnet.subnet_pool", "must be an IPv4 CIDR of /24 or larger");
  else if (!isPrivateIpv4Cidr(pool)) p.add("vmnet.subnet_pool", `${c.vmnet.subnetPool} is not private address space (${PRIVATE_IPV4.join(", ")})`);
  if (c.vmnet.maxHoldersPerNetwork < 1 || c.vmnet.maxHoldersPerNetwork > 100_000) p.add("vmnet.max_holders_per_network", "must be between 1 and 100000");
  if (!/^[a-z][a-z0-9]{0,5}$/.test(c.vmnet.bridgePrefix)) p.add("vmnet.bridge_prefix", "must be 1-6 of a-z 0-9, starting with a letter");
  if (c.vmnet.dhcpHook !== "" && (!isAbsolute(c.vmnet.dhcpHook) || /[\s,]/.test(c.vmnet.dhcpHook)))
    p.add("vmnet.dhcp_hook", "must be an absolute path without spaces or commas");
  // Image paths land in QEMU option values and qcow2 headers.
  if (!isAbsolute(c.images.dir) || /[\s,]/.test(c.images.dir)) p.add("images.dir", "must be an absolute path without spaces or commas");
  if (!Number.isInteger(c.console.logMaxBytes) || c.console.logMaxBytes < 4096 || c.console.logMaxBytes > 1 << 30)
    p.add("console.log_max_bytes", "must be between 4096 and 1073741824");
  if (!Number.isInteger(c.console.logFiles) || c.console.logFiles < 0 || c.console.logFiles > 10) p.add("console.log_files", "must be between 0 and 10");
  checkListener(p, c, "metrics.listen", c.metrics.listen, "127.0.0.1:9464");
  p.throwIfAny();
}
