// Images, overlay disks and the cloud-init seed drive on a real guest (QEMU
// TCG) through the RPC API:
//
//   scripts/in-netns.sh npx vitest run test/e2e/images.test.ts
//
// The image is the test guest's own root file system (scripts/setup-guest.sh
// builds it with mkfs.ext4 -d) with its kernel, initrd and cmdline; `image`
// alone boots it. The guest counts its boots on the root file system (so on
// the overlay), and prints the seed drive's files, which must match what was
// sent. The base image must stay byte-identical throughout.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { Code, ConnectError } from "@connectrpc/connect";
import { client, startDaemon, transport, type DaemonHandle } from "../helpers/daemon.js";
import { guestInitrd, guestKernel, guestRootfs } from "../guest/paths.js";
import { requireNetns } from "../guest/netns.js";
import { waitFor } from "../helpers/net.js";
import { NetworkingMode, VmmService, VmStatus } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { cloudInitSchema, seedFilesFromSerial } from "../guest/console.js";

let d: DaemonHandle | undefined;
let imagesDir = "";
const sha = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");
const c = () => client(VmmService, transport(d!, "connect", "unix"));
const serial = (id: string) => {
  const p = join(d!.stateDir, "vms", id, "serial.log");
  return existsSync(p) ? readFileSync(p, "utf8") : "";
};
const until = (id: string, re: RegExp, ms = 90_000) =>
  waitFor(async () => {
    const s = serial(id);
    if (!re.test(s)) throw new Error(`no ${re} in the serial log of ${id} yet:\n${s.slice(-2000)}`);
    return s;
  }, ms, 300);

beforeAll(async () => {
  requireNetns();
  d = await startDaemon({ tcp: false, toml: "" });
  imagesDir = join(d.dir, "images");
  const img = join(imagesDir, "tiny");
  mkdirSync(img, { recursive: true });
  copyFileSync(guestRootfs(), join(img, "disk.raw"));
  copyFileSync(guestKernel(), join(img, "vmlinuz"));
  copyFileSync(guestInitrd(), join(img, "initrd"));
  writeFileSync(join(img, "cmdline"), "console=ttyS0 quiet panic=-1 vmm.root=/dev/vda vmm.dhcp=0\n");
  await d.stop();
  d = await startDaemon({ tcp: false, dir: d.dir, toml: `[images]\ndir = ${JSON.stringify(imagesDir)}\n` });
});
afterAll(async () => {
  if (d) {
    const { vms } = await c().listVms({}).catch(() => ({ vms: [] }));
    for (const v of vms) await c().removeVm({ id: v.id, force: true }).catch(() => undefined);
    await d.stop();
    d.cleanup();
  }
});

describe("images", () => {
  it("ListImages and GetMeta show the directory", async () => {
    const { images } = await c().listImages({});
    expect(images.map((i) => [i.name, i.diskFormat, i.problem])).toEqual([["tiny", "raw", ""]]);
    expect(images[0]!.cmdline).toBe("console=ttyS0 quiet panic=-1 vmm.root=/dev/vda vmm.dhcp=0");
    expect((await c().getMeta({})).imagesDir).toBe(imagesDir);
  });

  it.each<[string, object, Code, RegExp]>([
    ["traversal", { image: "../tiny" }, Code.InvalidArgument, /^\[invalid_argument\] config\.image: must be 1-63 of/],
    ["missing", { image: "nope" }, Code.NotFound, /config\.image: image "nope" not found/],
    ["too small", { image: "tiny", imageSizeMib: 1 }, Code.InvalidArgument, /config\.image_size_mib: 1 MiB is smaller than image "tiny" \(64 MiB\)/],
    ["blank disk without size", { image: "tiny", disks: [{}] }, Code.InvalidArgument, /config\.disks\[0\]\.size_mib: is required for a blank disk/],
    ["bad hostname", { image: "tiny", cloudInit: { hostname: "a b" } }, Code.InvalidArgument, /config\.cloud_init\.hostname/],
  ])("refuses %s and creates nothing", async (_, config, code, re) => {
    const e = await c().createVm({ config: { name: "bad", ...config } }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ConnectError);
    expect((e as ConnectError).code).toBe(code);
    expect((e as ConnectError).message).toMatch(re);
    expect((await c().listVms({})).vms).toEqual([]);
  });

  it("an overlay boots, keeps the guest's writes across starts, leaves the base byte-identical; the seed matches", async () => {
    const base = join(imagesDir, "tiny", "disk.raw");
    const before = sha(base);
    const userData = "#cloud-config\nhostname: seeded\nruncmd:\n  - [echo, hello from cloud-init]\nwrite_files:\n  - path: /etc/motd\n    content: |\n      welcome ✓\n";
    const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBgm8a9uVJ8R0Jkqz1p0wX0rQ4xN9v7n1nS0w1e3yq5o test@vmm";
    const { vm } = await c().createVm({
      id: "img-1",
      config: {
        name: "from image",
        image: "tiny",
        imageSizeMib: 128,
        disks: [{ sizeMib: 16 }],
        nics: [{ mode: NetworkingMode.USER }],
        cloudInit: { userData, hostname: "img-1", sshAuthorizedKeys: [key], networkConfig: "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n" },
      },
      start: true,
    });
    expect(vm!.status).toBe(VmStatus.RUNNING);
    expect(vm!.disks.map((x) => [x.index, x.path, x.format, x.image, x.sizeMib])).toEqual([
      [0, join(d!.stateDir, "vms", "img-1", "image.qcow2"), "qcow2", "tiny", 128],
      [1, join(d!.stateDir, "vms", "img-1", "disk-0.qcow2"), "qcow2", "", 16],
    ]);
    const log1 = await until("img-1", /VMM-SEED-END network-config/);
    expect(log1).toMatch(/VMM-ROOTFS boot=1/);
    const seed = seedFilesFromSerial(log1);
    expect(seed["user-data"]).toBe(userData);
    expect(seed["network-config"]).toBe("version: 2\nethernets:\n  eth0:\n    dhcp4: true\n");
    expect(JSON.parse(seed["meta-data"]!)).toEqual({ "instance-id": vm!.instanceId, "local-hostname": "img-1", "public-keys": [key] });
    // What the guest read is valid cloud-config for Debian's cloud-init.
    expect(cloudInitSchema(seed["user-data"]!)).toMatch(/^Valid cloud-config/);

    await c().stopVm({ id: "img-1", force: true });
    expect(sha(base)).toBe(before);
    const overlay = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", "-U", join(d!.stateDir, "vms", "img-1", "image.qcow2")], { encoding: "utf8" }));
    expect(overlay["backing-filename"]).toBe(base);

    // The second boot sees the first boot's write (on the overlay) and a new instance id in the seed.
    const again = await c().startVm({ id: "img-1" });
    const log2 = await until("img-1", /VMM-ROOTFS boot=2[\s\S]*VMM-SEED-END meta-data/);
    expect(JSON.parse(seedFilesFromSerial(log2)["meta-data"]!)["instance-id"]).toBe(again.vm!.instanceId);
    await c().removeVm({ id: "img-1", force: true });
    expect(existsSync(join(d!.stateDir, "vms", "img-1"))).toBe(false);
    expect(sha(base)).toBe(before);
  });
});
