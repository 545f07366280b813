// The custom netdev allow-list, table-driven through the one validator
// (validateSpec), so the field path and the kind (invalid / permission)
// are what a caller sees.
import { describe, expect, it } from "vitest";
import { fillDefaults } from "../config/defaults.js";
import { CUSTOM_NETDEV_TYPES } from "../config/types.js";
import { VmmError } from "../errors.js";
import { NETDEV_TYPES } from "./netdev-policy.js";
import type { RawVmSpec } from "./types.js";
import { validateSpec } from "./validate.js";

const cfg = fillDefaults({ stateDir: "/x", networking: { allowedModes: ["user", "custom"] }, forward: { portMin: 2000 } });

function outcome(netdev: string, c = cfg): string {
  const raw: RawVmSpec = {
    name: "x", vcpus: 0, memoryMib: 0, kernel: "", initrd: "", cmdline: "", disk: "", ports: [], autoRestart: false, image: "", imageSizeMib: 0, disks: [], cloudInit: undefined, labels: {},
    nics: [{ mode: "custom", bridge: "", macvtapParent: "", networkId: "", customNetdev: netdev }],
  };
  try {
    validateSpec(raw, { cfg: c });
    return "ok";
  } catch (e) {
    if (!(e instanceof VmmError)) throw e;
    return `${e.kind}: ${e.message}`;
  }
}

describe("custom netdev policy", () => {
  it("the allow-list and the configurable types agree", () => {
    expect(Object.keys(NETDEV_TYPES).sort()).toEqual([...CUSTOM_NETDEV_TYPES].sort());
  });

  it("custom is not an allowed mode by default", () => {
    expect(fillDefaults({ stateDir: "/x" }).networking.allowedModes).not.toContain("custom");
    expect(outcome("user", fillDefaults({ stateDir: "/x" }))).toMatch(/^permission: config\.nics\[0\]\.mode: custom networking is not in networking\.allowed_modes/);
  });

  it.each([
    ["user", "ok"],
    ["user,restrict=on,net=10.9.0.0/24,hostname=g1,dns=10.9.0.3", "ok"],
    ["user,hostfwd=tcp:127.0.0.1:2222-:22", "ok"],
    ["user,hostfwd=udp:127.0.0.1:2223-10.0.2.15:53,hostfwd=:127.0.0.1:2224-:80", "ok"],
    ["socket,listen=127.0.0.1:2500", "ok"],
    ["socket,connect=127.0.0.1:2500", "ok"],
    ["socket,udp=127.0.0.1:2501,localaddr=127.0.0.1:2502", "ok"],
    ["stream,server=on,addr.type=inet,addr.host=127.0.0.1,addr.port=2600", "ok"],
    ["dgram,local.type=inet,local.host=127.0.0.1,local.port=2700,remote.type=inet,remote.host=127.0.0.1,remote.port=2701", "ok"],
    // the cases
    ["tap,script=./x.sh,downscript=no", /^permission: config\.nics\[0\]\.custom_netdev: type tap is not allowed for custom netdevs: use networking mode tap/],
    ["bridge,helper=./x", /^permission: config\.nics\[0\]\.custom_netdev: type bridge is not allowed for custom netdevs: use networking mode bridge/],
    ["user,hostfwd=tcp:0.0.0.0:2222-:22", /^permission: .*hostfwd: 0\.0\.0\.0 is not in forward\.allowed_listen_addresses/],
    ["user,hostfwd=tcp::2222-:22", /^permission: .*hostfwd: names no address/],
    ["user,hostfwd=tcp:127.0.0.1:22-:22", /^permission: .*hostfwd: port 22 is outside forward\.port_min-port_max \(2000-65535\)/],
    // neighbours
    ["user,guestfwd=tcp:10.0.2.100:1234-cmd:/bin/sh", /^permission: .*option guestfwd is not allowed for user netdevs: it connects the guest to host services or runs a command/],
    ["user,smb=/etc", /^permission: .*option smb is not allowed .*runs smbd/],
    ["user,tftp=/,bootfile=x", /^permission: .*option tftp is not allowed.*; config\.nics\[0\]\.custom_netdev: option bootfile is not allowed/],
    ["user,script=/bin/sh", /^permission: .*option script is not allowed for user netdevs: it runs a program as root/],
    ["socket,fd=3", /^permission: .*option fd is not allowed.*another NIC's/],
    ["socket,mcast=230.0.0.1:1234", /^permission: .*option mcast is not allowed/],
    ["socket,listen=:2500", /^permission: .*listen: names no address/],
    ["socket,connect=10.1.2.3:2500", /^permission: .*connect: 10\.1\.2\.3 is not in forward\.allowed_listen_addresses/],
    ["stream,server=on,addr.type=unix,addr.path=/var/run/docker.sock", /^permission: .*addr\.type: unix sockets are not allowed.*option addr\.path is not allowed/],
    ["dgram,local.type=fd,local.str=3", /^permission: .*local\.type: fd sockets are not allowed/],
    ["l2tpv3,src=127.0.0.1,dst=127.0.0.1", /^permission: .*type l2tpv3 is not allowed for custom netdevs \(allowed: user, socket, stream, dgram\)/],
    ["vhost-user,chardev=c0", /^permission: .*type vhost-user is not allowed/],
    ["vde,sock=/tmp/x", /^permission: .*type vde is not allowed/],
    // malformed values are invalid, named
    ["user,restrict", /^invalid: config\.nics\[0\]\.custom_netdev: option restrict must be written key=value/],
    ["user,restrict=maybe", /^invalid: .*restrict: must be on or off/],
    ["user,hostfwd=tcp:127.0.0.1:x-:22", /^invalid: .*hostfwd "tcp:127\.0\.0\.1:x-:22" is not/],
    ["user,hostfwd=tcp:127.0.0.1:2222-:99999", /^invalid: .*guest port 99999/],
    ["socket,listen=nonsense", /^invalid: .*listen: "nonsense" is not host:port/],
    ["socket,listen=localhost:2500", /^invalid: .*"localhost" is not an IP address/],
  ] as [string, string | RegExp][])("%s", (netdev, want) => {
    const got = outcome(netdev);
    if (typeof want === "string") expect(got).toBe(want);
    else expect(got).toMatch(want);
  });

  it("networking.custom_netdev_types narrows the allow-list", () => {
    const only = { ...cfg, networking: { ...cfg.networking, customNetdevTypes: ["user"] } };
    expect(outcome("user", only)).toBe("ok");
    expect(outcome("socket,listen=127.0.0.1:2500", only)).toMatch(/type socket is not in networking\.custom_netdev_types \(user\)/);
  });
});
