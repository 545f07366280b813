// The NoCloud seed: file contents (pure) and a real ISO read back with isoinfo.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildSeed, genisoimageArgv, seedFiles } from "./seed.js";
import { checkCloudInit, type CloudInitSpec } from "./spec.js";
import { Problems } from "../errors.js";

const ci = (c: Partial<CloudInitSpec> = {}): CloudInitSpec => ({ userData: "", sshAuthorizedKeys: [], hostname: "", networkConfig: "", ...c });

describe("seedFiles", () => {
  it("meta-data is JSON (so YAML) with instance-id, hostname and keys; user-data verbatim", () => {
    const f = seedFiles(ci({ userData: "#cloud-config\nruncmd: [echo hi]\n", hostname: "web", sshAuthorizedKeys: ["ssh-ed25519 AAAA a@b"] }), "i-1");
    expect(Object.keys(f)).toEqual(["meta-data", "user-data"]);
    expect(JSON.parse(f["meta-data"]!)).toEqual({ "instance-id": "i-1", "local-hostname": "web", "public-keys": ["ssh-ed25519 AAAA a@b"] });
    expect(f["user-data"]).toBe("#cloud-config\nruncmd: [echo hi]\n");
  });
  it("network-config only when given", () => {
    expect(seedFiles(ci({ networkConfig: "version: 2\n" }), "i")["network-config"]).toBe("version: 2\n");
    expect(JSON.parse(seedFiles(ci(), "i")["meta-data"]!)).toEqual({ "instance-id": "i" });
  });
});

describe("checkCloudInit", () => {
  it.each<[Partial<CloudInitSpec>, string[]]>([
    [{ hostname: "web-1" }, []],
    [{ hostname: "Web" }, ["c.hostname"]],
    [{ hostname: "-a" }, ["c.hostname"]],
    [{ hostname: "a\nb: c" }, ["c.hostname"]],
    [{ sshAuthorizedKeys: ["ssh-ed25519 AAAAC3Nza== me@host", "ecdsa-sha2-nistp256 AAAA"] }, []],
    [{ sshAuthorizedKeys: ["ssh-ed25519 AAAA\nssh-rsa BBBB"] }, ["c.ssh_authorized_keys[0]"]],
    [{ sshAuthorizedKeys: ["not a key"] }, ["c.ssh_authorized_keys[0]"]],
    [{ userData: "x".repeat(256 * 1024 + 1) }, ["c.user_data"]],
    [{ userData: "a\u0000b" }, ["c.user_data"]],
    [{ networkConfig: "version: 2\n\tx\n" }, []],
    [{ networkConfig: "a\u0001" }, ["c.network_config"]],
  ])("%j", (c, fields) => {
    const p = new Problems();
    checkCloudInit(p, "c.", ci(c));
    expect(p.list.map((x) => x.field)).toEqual(fields);
  });
});

describe("buildSeed with genisoimage", () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), "vmm-seed-"))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("writes an ISO labelled cidata with the three files", async () => {
    const iso = join(dir, "seed.iso");
    const user = "#cloud-config\nhostname: web\n";
    await buildSeed(iso, ci({ userData: user, networkConfig: "version: 2\nethernets: {}\n" }), "inst-7");
    expect(readdirSync(dir)).toEqual(["seed.iso"]); // no staging left
    const pvd = execFileSync("isoinfo", ["-d", "-i", iso], { encoding: "utf8" });
    expect(pvd).toMatch(/^Volume id: cidata$/m);
    const read = (name: string) => execFileSync("isoinfo", ["-R", "-i", iso, "-x", `/${name}`], { encoding: "utf8" });
    expect(read("user-data")).toBe(user);
    expect(JSON.parse(read("meta-data"))).toEqual({ "instance-id": "inst-7" });
    expect(read("network-config")).toBe("version: 2\nethernets: {}\n");
  });

  it("argv", () => expect(genisoimageArgv("/o", "/d", ["user-data"])).toEqual(["-quiet", "-output", "/o", "-volid", "cidata", "-joliet", "-rock", "/d/user-data"]));
});
