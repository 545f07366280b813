import { describe, expect, it } from "vitest";
import { loadConfig, parseConfig, toToml } from "./load.js";
import { ValidationError, VmmError } from "../errors.js";

const env = { VMM_STATE_DIR: "/var/lib/vmm-test" };

describe("embedded defaults", () => {
  it("cannot fail and match the documented defaults", () => {
    const c = loadConfig(undefined, env);
    expect(c.stateDir).toBe("/var/lib/vmm-test");
    expect(c.api.socket).toBe("/var/lib/vmm-test/vmmd.sock");
    expect(c.api.socketMode).toBe(0o600);
    expect(c.api.tcp).toBe("");
    expect(c.networking.defaultMode).toBe("user");
    expect(c.networking.forwardServiceEnabled).toBe(false);
    expect(c.auth.tokens).toEqual([]);
    expect(c.metrics.listen).toBe("");
    expect(c.ui.enabled).toBe(true);
  });
  it("an empty file equals no file", () => {
    expect(parseConfig("", "x.toml", env)).toEqual(loadConfig(undefined, env));
  });
});

describe("values", () => {
  it("maps snake_case keys and keeps unset distinct from zero", () => {
    const c = parseConfig(
      `state_dir = "/s"
[api]
socket_mode = "0660"
tcp = "127.0.0.1:0"
[networking]
mac_prefix = "52:54:00"
forward_service_enabled = true
bridge_subnets = { "br0" = "10.20.0.0/24" }
[forward]
port_min = 1
`,
      "x.toml",
      env,
    );
    expect(c.api.socket).toBe("/s/vmmd.sock");
    expect(c.api.socketMode).toBe(0o660);
    expect(c.networking.macPrefix).toBe("52:54:00");
    expect(c.networking.forwardServiceEnabled).toBe(true);
    expect(c.networking.bridgeSubnets).toEqual({ br0: "10.20.0.0/24" });
    // Every bridge with a subnet gets setup-bridge.sh's lease file unless one is named.
    expect(c.networking.bridgeLeaseFiles).toEqual({ br0: "/var/lib/vmm/bridge-br0/dnsmasq.leases" });
    expect(c.networking.leaseVerification).toBe("arp");
    expect(c.networking.leaseVerifyIntervalSeconds).toBe(30);
    expect(c.forward.portMin).toBe(1);
    expect(c.forward.portMax).toBe(65535);
  });
  it("a named lease file wins over the default", () => {
    const c = parseConfig(`[networking]\nbridge_subnets = { "br0" = "10.20.0.0/24" }\nbridge_lease_files = { "br0" = "/run/br0.leases" }\n`, "x.toml", env);
    expect(c.networking.bridgeLeaseFiles).toEqual({ br0: "/run/br0.leases" });
  });
});

describe("every problem is reported with its field path", () => {
  const cases: [string, string, string[]][] = [
    ["unknown section", `[nope]\nx = 1`, ["nope: unknown key"]],
    ["unknown key", `[api]\nsockets = "/x"`, ["api.sockets: unknown key"]],
    ["wrong type", `[api]\ntcp = 8080`, ["api.tcp: must be a string"]],
    ["bad mode", `[api]\nsocket_mode = "999"`, ["api.socket_mode"]],
    ["mac_prefix too long", `[networking]\nmac_prefix = "52:54:00:12"`, ["networking.mac_prefix"]],
    ["mac_prefix garbage", `[networking]\nmac_prefix = "zz"`, ["networking.mac_prefix"]],
    ["remote tcp", `[api]\ntcp = "0.0.0.0:80"`, ["api.tcp: 0.0.0.0 is not a loopback address"]],
    ["bad tcp", `[api]\ntcp = "localhost"`, ["api.tcp"]],
    ["unknown default mode", `[networking]\ndefault_mode = "wifi"`, ["networking.default_mode"]],
    ["bad allowed mode", `[networking]\nallowed_modes = ["user", "x"]`, ["networking.allowed_modes[1]"]],
    ["bad bridge", `[networking]\nbridge = "br 0"`, ["networking.bridge"]],
    ["bad subnet", `[networking]\nbridge_subnets = { "br0" = "10.0.0.1/24" }`, ["networking.bridge_subnets.br0"]],
    ["lease file of a bridge without subnet", `[networking]\nbridge_lease_files = { "br9" = "/x.leases" }`, ["networking.bridge_lease_files.br9: bridge br9 has no subnet"]],
    ["relative lease file", `[networking]\nbridge_subnets = { "br0" = "10.0.0.0/24" }\nbridge_lease_files = { "br0" = "x.leases" }`, ["networking.bridge_lease_files.br0: must be an absolute path"]],
    ["lease verification", `[networking]\nlease_verification = "trust"`, ["networking.lease_verification"]],
    ["verify interval", `[networking]\nlease_verify_interval_seconds = 0`, ["networking.lease_verify_interval_seconds"]],
    ["short token", `[auth]\ntokens = ["short"]`, ["auth.tokens[0]"]],
    ["lease tokens alone", `[auth]\nlease_tokens = ["0123456789abcdef0"]`, ["auth.tokens"]],
    ["port range", `[forward]\nport_min = 2000\nport_max = 1000`, ["forward.port_min"]],
    ["relative state dir", `state_dir = "rel"`, ["state_dir: must be an absolute path"]],
    ["nice out of range", `nice = -21`, ["nice: must be between -20 and 19"]],
    ["nice not an integer", `nice = 1.5`, ["nice: must be an integer"]],
    ["relay poll out of range", `[forward]\nrelay_poll_us = 1001`, ["forward.relay_poll_us: must be between 0 and 1000"]],
    ["relay poll negative", `[forward]\nrelay_poll_us = -1`, ["forward.relay_poll_us: must be between 0 and 1000"]],
    ["accel", `[qemu]\naccel = "hvf"`, ["qemu.accel"]],
    ["bad metrics listen", `[metrics]\nlisten = "9464"`, ["metrics.listen: must be \"host:port\""]],
    ["remote metrics listen", `[metrics]\nlisten = "0.0.0.0:9464"`, ["metrics.listen: 0.0.0.0 is not a loopback address"]],
    ["ui enabled type", `[ui]\nenabled = "yes"`, ["ui.enabled: must be true or false"]],
    ["remote metrics without tokens", `[api]\nallow_remote = true\n[metrics]\nlisten = "0.0.0.0:9464"`, ["metrics.listen: a non-loopback listener requires auth.tokens"]],
  ];
  it.each(cases)("%s", (_name, toml, fields) => {
    let err: unknown;
    try {
      parseConfig(toml, "x.toml", env);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VmmError);
    for (const f of fields) expect((err as Error).message).toContain(f);
  });

  it("reports all problems at once", () => {
    try {
      parseConfig(`[networking]\nmac_prefix = "x"\nbridge = "a b"\n[forward]\nrelay = "fast"`, "x.toml", env);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ValidationError);
      const fields = (e as ValidationError).problems.map((p) => p.field);
      expect(fields).toEqual(expect.arrayContaining(["networking.mac_prefix", "networking.bridge", "forward.relay"]));
    }
  });

  it("names the line of a TOML syntax error", () => {
    expect(() => parseConfig(`[api\n`, "x.toml", env)).toThrow(/x\.toml: not valid TOML \(line 1/);
  });
});

describe("several kinds of problems in one file", () => {
  it("an unknown key does not hide the value errors of the same file", () => {
    let err: unknown;
    try {
      parseConfig(`bogus = 1\n[qemu]\naccel = "hvf"\nstop_timeout_seconds = "x"\n[networking]\nmac_prefix = "zz"\n[images]\ndir = "rel"\n`, "x.toml", env);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).problems.map((p) => p.field).sort()).toEqual(["bogus", "images.dir", "networking.mac_prefix", "qemu.accel", "qemu.stop_timeout_seconds"]);
  });
});

describe("toToml (--print-config)", () => {
  it("prints TOML that loads back to the same configuration; tokens left out", () => {
    const c = parseConfig(
      `state_dir = "/s"\n[api]\nsocket_mode = "0660"\ntcp = "127.0.0.1:8080"\n[auth]\ntokens = ["0123456789abcdef0123"]\n[networking]\nbridge_subnets = { "br0" = "10.20.0.0/24" }\nmac_prefix = "52:54:00"\n[console]\nlog_files = 3\n`,
      "x.toml",
      env,
    );
    const text = toToml(c);
    expect(text).toMatch(/^# auth.tokens: 1 token\(s\), not shown$/m);
    expect(text).not.toContain("0123456789abcdef0123");
    expect(text).toMatch(/^socket_mode = "0660"$/m);
    const back = parseConfig(text, "printed.toml", env);
    expect({ ...back, auth: c.auth }).toEqual(c);
    expect(toToml(loadConfig(undefined, env))).toMatch(/^state_dir = "\/var\/lib\/vmm-test"$/m);
  });
});
