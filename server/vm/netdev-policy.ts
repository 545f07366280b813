// What a custom netdev may be: policy, not a blacklist. A custom NIC hands
// QEMU a `-netdev TYPE,KEY=VALUE,...` of the caller's; QEMU starts as root
// (it drops to qemu.user only after opening its devices), so a netdev
// option is a root capability: `tap,script=./x.sh` runs a script as root,
// `bridge,helper=./x` a helper, `user,smb=` runs smbd, `user,guestfwd=`
// runs a command or connects the guest to any host service, `user,hostfwd=`
// and `socket,listen=` open host ports past forward.allowed_listen_addresses
// and the port range that `ports` obey.
//
// So the value, already parsed into its type and options (parseNetdev in
// validate.ts), is checked against an allow-list: a few types
// (networking.custom_netdev_types narrows them further), each with the
// options it may carry; every host endpoint it names -- where it listens
// and where it connects -- is held to the same listen addresses and port
// range as a VM's ports. Anything not listed is refused, naming the option
// and why.
import { isIP, isIPv4 } from "node:net";
import type { Config } from "../config/types.js";
import { parseHostPort } from "../net/addr.js";

/** A netdev value split into its type and `key=value` options. */
export interface NetdevParts {
  type: string;
  options: { key: string; value: string | undefined }[];
}

/** What is wrong with a custom netdev: malformed values, and what policy refuses. */
export interface NetdevFindings {
  invalid: string[];
  denied: string[];
}

/** A rule for one option's value: undefined when fine, else the problem (`denied` for policy). */
type Rule = (value: string, cfg: Config) => { invalid: string } | { denied: string } | undefined;

const ANY: Rule = () => undefined;

const ON_OFF: Rule = (v) => (/^(on|off)$/.test(v) ? undefined : { invalid: `must be on or off, got "${v.slice(0, 32)}"` });

const INET: Rule = (v) => (v === "inet" ? undefined : { denied: `${v.slice(0, 32)} sockets are not allowed (a unix or fd address reaches host files and other NICs' fds); use inet` });

/** A host address the netdev binds or connects to: one of forward.allowed_listen_addresses, as a VM's ports. */
function addressRule(host: string, cfg: Config): { invalid: string } | { denied: string } | undefined {
  if (host === "") return { denied: "names no address (every address of the host); name one of forward.allowed_listen_addresses" };
  if (isIP(host) === 0) return { invalid: `"${host.slice(0, 64)}" is not an IP address` };
  if (!cfg.forward.allowedListenAddresses.includes(host)) return { denied: `${host} is not in forward.allowed_listen_addresses (${cfg.forward.allowedListenAddresses.join(", ")})` };
  return undefined;
}

/** A host port: within forward.port_min..port_max, as a VM's ports. */
function portRule(port: string, cfg: Config): { invalid: string } | { denied: string } | undefined {
  const n = /^\d{1,5}$/.test(port) ? Number(port) : NaN;
  if (!(n >= 1 && n <= 65535)) return { invalid: `port "${port.slice(0, 16)}" is not between 1 and 65535` };
  if (n < cfg.forward.portMin || n > cfg.forward.portMax) return { denied: `port ${n} is outside forward.port_min-port_max (${cfg.forward.portMin}-${cfg.forward.portMax})` };
  return undefined;
}

const ADDRESS: Rule = (v, cfg) => addressRule(v, cfg);
const PORT: Rule = (v, cfg) => portRule(v, cfg);

/** "host:port" (IPv6 in brackets). */
const ENDPOINT: Rule = (v, cfg) => {
  const hp = /^:\d+$/.test(v) ? { host: "", port: Number(v.slice(1)) } : parseHostPort(v);
  if (!hp) return { invalid: `"${v.slice(0, 64)}" is not host:port` };
  return addressRule(hp.host, cfg) ?? portRule(String(hp.port), cfg);
};

/**
 * slirp's `hostfwd=[tcp|udp]:[hostaddr]:hostport-[guestaddr]:guestport`:
 * the host side under the policy of a VM's ports (IPv4 only in slirp).
 */
const HOSTFWD: Rule = (v, cfg) => {
  const m = /^(tcp|udp)?:([^:]*):(\d{1,5})-([^:]*):(\d{1,5})$/.exec(v);
  if (!m) return { invalid: `hostfwd "${v.slice(0, 64)}" is not [tcp|udp]:hostaddr:hostport-[guestaddr]:guestport` };
  const [, , hostAddr, hostPort, guestAddr, guestPort] = m as unknown as [string, string, string, string, string, string];
  if (hostAddr !== "" && !isIPv4(hostAddr)) return { invalid: `hostfwd host address "${hostAddr.slice(0, 64)}" is not an IPv4 address` };
  if (guestAddr !== "" && !isIPv4(guestAddr)) return { invalid: `hostfwd guest address "${guestAddr.slice(0, 64)}" is not an IPv4 address` };
  const gp = Number(guestPort);
  if (gp < 1 || gp > 65535) return { invalid: `hostfwd guest port ${guestPort} is not between 1 and 65535` };
  const why = addressRule(hostAddr, cfg) ?? portRule(hostPort, cfg);
  return why && ("invalid" in why ? { invalid: `hostfwd: ${why.invalid}` } : { denied: `hostfwd: ${why.denied}` });
};

/** Options refused with a reason (anything else unlisted is refused as "not allowed"). */
const REFUSED: Record<string, string> = {
  script: "runs a program as root",
  downscript: "runs a program as root",
  helper: "runs a program as root",
  ifname: "names a host interface; use networking mode tap, which the daemon sets up under policy",
  guestfwd: "connects the guest to host services or runs a command",
  smb: "runs smbd on a host directory",
  smbserver: "belongs to smb, which is refused",
  tftp: "serves a host directory",
  bootfile: "belongs to tftp, which is refused",
  fd: "hands the netdev an fd of QEMU's (another NIC's)",
  fds: "hands the netdev fds of QEMU's (another NIC's)",
  mcast: "joins a multicast group on the host's networks",
  vhost: "uses host devices",
  vhostfd: "hands the netdev an fd of QEMU's",
};

/** The allow-list: netdev types and the options each may carry. */
export const NETDEV_TYPES: Readonly<Record<string, Readonly<Record<string, Rule>>>> = {
  user: {
    ipv4: ON_OFF,
    ipv6: ON_OFF,
    net: ANY,
    host: ANY,
    "ipv6-net": ANY,
    "ipv6-host": ANY,
    restrict: ON_OFF,
    hostname: ANY,
    dhcpstart: ANY,
    dns: ANY,
    "ipv6-dns": ANY,
    dnssearch: ANY,
    domainname: ANY,
    hostfwd: HOSTFWD,
  },
  socket: { listen: ENDPOINT, connect: ENDPOINT, udp: ENDPOINT, localaddr: ENDPOINT },
  stream: { server: ON_OFF, reconnect: (v) => (/^\d{1,6}$/.test(v) ? undefined : { invalid: "reconnect must be seconds" }), "addr.type": INET, "addr.host": ADDRESS, "addr.port": PORT },
  dgram: { "local.type": INET, "local.host": ADDRESS, "local.port": PORT, "remote.type": INET, "remote.host": ADDRESS, "remote.port": PORT },
};

/** Types refused with a reason of their own. */
const REFUSED_TYPES: Record<string, string> = {
  tap: "use networking mode tap (the daemon opens the TAP; no scripts)",
  bridge: "use networking mode bridge (the configured helper, allowed bridges only)",
};

/**
 * Checks a parsed custom netdev against the allow-list and vmm.toml policy.
 * Returns every finding; messages name the option.
 */
export function checkNetdevPolicy(n: NetdevParts, cfg: Config): NetdevFindings {
  const out: NetdevFindings = { invalid: [], denied: [] };
  const allowedTypes = cfg.networking.customNetdevTypes;
  const rules = NETDEV_TYPES[n.type];
  if (!rules) {
    out.denied.push(`type ${n.type} is not allowed for custom netdevs${REFUSED_TYPES[n.type] ? `: ${REFUSED_TYPES[n.type]}` : ""} (allowed: ${allowedTypes.join(", ") || "none"})`);
    return out;
  }
  if (!allowedTypes.includes(n.type)) {
    out.denied.push(`type ${n.type} is not in networking.custom_netdev_types (${allowedTypes.join(", ") || "none"})`);
    return out;
  }
  for (const o of n.options) {
    if (o.key === "id") continue; // refused by the grammar (validate.ts)
    if (o.value === undefined) {
      out.invalid.push(`option ${o.key} must be written key=value`);
      continue;
    }
    const rule = rules[o.key];
    if (!rule) {
      out.denied.push(`option ${o.key} is not allowed for ${n.type} netdevs${REFUSED[o.key] ? `: it ${REFUSED[o.key]}` : ""}`);
      continue;
    }
    const why = rule(o.value, cfg);
    if (why && "invalid" in why) out.invalid.push(`${o.key}: ${why.invalid}`);
    else if (why) out.denied.push(`${o.key}: ${why.denied}`);
  }
  return out;
}
