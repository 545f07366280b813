// Boot plans (pure) and overlays made by the real qemu-img.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ImageCatalog, type ImageEntry } from "./catalog.js";
import { ensureDisks, planBoot, qemuImgCreateArgv, type BootInput } from "./disks.js";

const img = (name: string, extra: Partial<ImageEntry> = {}): ImageEntry => ({
  name,
  disk: { path: `/img/${name}/disk.raw`, format: "raw", fileBytes: 1 },
  kernel: `/img/${name}/vmlinuz`,
  initrd: `/img/${name}/initrd`,
  cmdline: "console=ttyS0 root=/dev/vda",
  ...extra,
});
const lookup = (name: string) => img(name);
const base: BootInput = { kernel: "", initrd: "", cmdline: "", disk: "" };

describe("planBoot", () => {
  it.each<[string, BootInput, object]>([
    ["image alone", { ...base, image: "deb" }, { kernel: "/img/deb/vmlinuz", initrd: "/img/deb/initrd", cmdline: "console=ttyS0 root=/dev/vda", disks: [{ path: "/vm/image.qcow2", format: "qcow2", image: "deb", backing: { path: "/img/deb/disk.raw", format: "raw" }, sizeMib: 0, managed: true, field: "config.image" }] }],
    ["own kernel wins, image initrd dropped", { ...base, image: "deb", kernel: "/k", cmdline: "quiet" }, { kernel: "/k", initrd: "", cmdline: "quiet" }],
    ["own initrd with image kernel", { ...base, image: "deb", initrd: "/i" }, { kernel: "/img/deb/vmlinuz", initrd: "/i" }],
    ["no image: default cmdline", { ...base, kernel: "/k" }, { kernel: "/k", initrd: "", cmdline: "console=ttyS0", disks: [] }],
    [
      "bus order: image, disk, extra disks",
      { ...base, image: "deb", imageSizeMib: 2048, disk: "/data/d.qcow2", disks: [{ image: "", sizeMib: 100 }, { image: "other", sizeMib: 0 }] },
      {
        disks: [
          expect.objectContaining({ path: "/vm/image.qcow2", sizeMib: 2048 }),
          { path: "/data/d.qcow2", format: "qcow2", sizeMib: 0, managed: false, field: "config.disk" },
          { path: "/vm/disk-0.qcow2", format: "qcow2", sizeMib: 100, managed: true, field: "config.disks[0]" },
          { path: "/vm/disk-1.qcow2", format: "qcow2", image: "other", backing: { path: "/img/other/disk.raw", format: "raw" }, sizeMib: 0, managed: true, field: "config.disks[1]" },
        ],
      },
    ],
  ])("%s", (_, input, want) => expect(planBoot(input, "/vm", lookup)).toMatchObject(want));

  it("a kernel-only image adds no disk; a kernel-only image as an extra disk is refused", () => {
    const kOnly = (name: string) => img(name, { disk: undefined });
    expect(planBoot({ ...base, image: "k" }, "/vm", kOnly).disks).toEqual([]);
    expect(() => planBoot({ ...base, disks: [{ image: "k", sizeMib: 0 }] }, "/vm", kOnly)).toThrow(/config\.disks\[0\]\.image: image "k" has no disk/);
  });
});

describe("qemuImgCreateArgv", () => {
  it.each([
    [{ path: "/vm/image.qcow2", format: "qcow2", backing: { path: "/b/disk.raw", format: "raw" }, sizeMib: 0, managed: true, field: "" }, ["create", "-q", "-f", "qcow2", "-b", "/b/disk.raw", "-F", "raw", "/t"]],
    [{ path: "/vm/image.qcow2", format: "qcow2", backing: { path: "/b/disk.qcow2", format: "qcow2" }, sizeMib: 4096, managed: true, field: "" }, ["create", "-q", "-f", "qcow2", "-b", "/b/disk.qcow2", "-F", "qcow2", "/t", "4096M"]],
    [{ path: "/vm/disk-0.qcow2", format: "qcow2", sizeMib: 10, managed: true, field: "" }, ["create", "-q", "-f", "qcow2", "/t", "10M"]],
  ] as const)("%j", (d, argv) => expect(qemuImgCreateArgv(d as never, "/t")).toEqual(argv));
});

describe("ensureDisks with qemu-img", () => {
  let top: string;
  let cat: ImageCatalog;
  beforeAll(() => {
    top = mkdtempSync(join(tmpdir(), "vmm-disks-"));
    mkdirSync(join(top, "images", "deb"), { recursive: true });
    writeFileSync(join(top, "images", "deb", "disk.raw"), Buffer.alloc(2 * 1048576, 7));
    mkdirSync(join(top, "vm"));
    cat = new ImageCatalog(join(top, "images"));
  });
  afterAll(() => rmSync(top, { recursive: true, force: true }));

  const info = (p: string) => JSON.parse(execFileSync("qemu-img", ["info", "--output=json", p], { encoding: "utf8" })) as Record<string, unknown>;

  it("creates overlays and blank disks once; the base is untouched", async () => {
    const before = readFileSync(join(top, "images", "deb", "disk.raw"));
    const plan = planBoot({ ...base, image: "deb", imageSizeMib: 4, disks: [{ image: "", sizeMib: 3 }, { image: "deb", sizeMib: 0 }] }, join(top, "vm"), (n, f) => cat.get(n, f));
    await ensureDisks(plan, cat);
    const o = info(join(top, "vm", "image.qcow2"));
    expect(o["format"]).toBe("qcow2");
    expect(o["virtual-size"]).toBe(4 * 1048576);
    expect(o["backing-filename"]).toBe(join(top, "images", "deb", "disk.raw"));
    expect(o["backing-filename-format"]).toBe("raw");
    expect(info(join(top, "vm", "disk-0.qcow2"))["virtual-size"]).toBe(3 * 1048576);
    expect(info(join(top, "vm", "disk-1.qcow2"))["virtual-size"]).toBe(2 * 1048576);
    // A second start keeps the existing overlays (the guest's data).
    writeFileSync(join(top, "vm", "marker"), "");
    execFileSync("qemu-io", ["-c", "write -P 0x55 0 4096", join(top, "vm", "image.qcow2")]);
    await ensureDisks(plan, cat);
    expect(execFileSync("qemu-io", ["-c", "read -P 0x55 0 4096", join(top, "vm", "image.qcow2")], { encoding: "utf8" })).toMatch(/read 4096\/4096/);
    expect(readFileSync(join(top, "images", "deb", "disk.raw")).equals(before)).toBe(true);
  });

  it("refuses an overlay smaller than its base, leaving nothing behind", async () => {
    const vm = join(top, "vm-small");
    mkdirSync(vm);
    const plan = planBoot({ ...base, image: "deb", imageSizeMib: 1 }, vm, (n, f) => cat.get(n, f));
    await expect(ensureDisks(plan, cat)).rejects.toThrow(/config\.image: size 1 MiB is smaller than image "deb" \(2 MiB\)/);
    expect(() => readFileSync(join(vm, "image.qcow2"))).toThrow();
  });
});
