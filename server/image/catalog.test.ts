// The images directory: names, layout, symlink escapes, qemu-img facts.
// Real files in a temp directory and the real qemu-img.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { Problems, VmmError } from "../errors.js";
import { checkImageName, ImageCatalog, parseQemuImgInfo } from "./catalog.js";

let top: string;
let dir: string;
let cat: ImageCatalog;

beforeAll(() => {
  top = mkdtempSync(join(tmpdir(), "vmm-images-"));
  dir = join(top, "images");
  mkdirSync(dir);
  const mk = (name: string, files: Record<string, string>) => {
    mkdirSync(join(dir, name));
    for (const [f, c] of Object.entries(files)) writeFileSync(join(dir, name, f), c);
  };
  mk("debian-12", { "disk.raw": "x".repeat(4096), vmlinuz: "k", initrd: "i", cmdline: "console=ttyS0 root=/dev/vda\n" });
  mk("kernel-only", { vmlinuz: "k" });
  mk("empty", {});
  mk("both", { "disk.raw": "a", "disk.qcow2": "b" });
  mk("escape", {});
  writeFileSync(join(top, "secret"), "host secret");
  symlinkSync(join(top, "secret"), join(dir, "escape", "disk.raw"));
  mk("shared-kernel", { "disk.raw": "y" });
  symlinkSync("../debian-12/vmlinuz", join(dir, "shared-kernel", "vmlinuz"));
  symlinkSync(top, join(dir, "outside")); // the image directory itself a symlink out
  mk("badcmd", { vmlinuz: "k", cmdline: "a\nb\n" });
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", join(top, "base.qcow2"), "1M"]);
  mk("chained", {});
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", join(top, "base.qcow2"), "-F", "qcow2", join(dir, "chained", "disk.qcow2")]);
  mk("liar", { "disk.qcow2": "not a qcow2" });
  cat = new ImageCatalog(dir);
});
afterAll(() => rmSync(top, { recursive: true, force: true }));

describe("checkImageName", () => {
  it.each([
    ["debian-12", true],
    ["a.b_c-1", true],
    ["", false],
    ["..", false],
    [".hidden", false],
    ["a/b", false],
    ["../etc", false],
    ["a,b", false],
    ["a b", false],
    ["é", false],
    ["x".repeat(63), true],
    ["x".repeat(64), false],
  ])("%j -> %s", (name, ok) => {
    const p = new Problems();
    checkImageName(p, "config.image", name);
    expect(p.empty).toBe(ok);
    if (!ok) expect(p.list[0]!.field).toBe("config.image");
  });
});

describe("ImageCatalog", () => {
  it("lists every image, unusable ones with their problem", () => {
    const byName = Object.fromEntries(cat.list().map((e) => [e.name, e]));
    expect(Object.keys(byName)).toEqual(["badcmd", "both", "chained", "debian-12", "empty", "escape", "kernel-only", "liar", "outside", "shared-kernel"]);
    expect(byName["debian-12"]).toEqual({
      name: "debian-12",
      disk: { path: join(dir, "debian-12", "disk.raw"), format: "raw", fileBytes: 4096 },
      kernel: join(dir, "debian-12", "vmlinuz"),
      initrd: join(dir, "debian-12", "initrd"),
      cmdline: "console=ttyS0 root=/dev/vda",
    });
    expect(byName["kernel-only"]!.problem).toBeUndefined();
    expect(byName["empty"]!.problem).toMatch(/neither a disk .* nor a kernel/);
    expect(byName["both"]!.problem).toMatch(/both disk.qcow2 and disk.raw/);
    expect(byName["escape"]!.problem).toMatch(/disk.raw points outside/);
    expect(byName["outside"]!.problem).toMatch(/not a directory inside/);
    expect(byName["badcmd"]!.problem).toMatch(/cmdline must be one line/);
    // A symlink that stays inside the directory is fine.
    expect(byName["shared-kernel"]!.problem).toBeUndefined();
    expect(byName["shared-kernel"]!.kernel).toBe(join(dir, "debian-12", "vmlinuz"));
  });

  it("get: not_found, invalid names, unusable images", () => {
    expect(cat.get("debian-12").disk?.format).toBe("raw");
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e as VmmError;
      }
      throw new Error("did not throw");
    };
    expect(err(() => cat.get("nope")).kind).toBe("not_found");
    expect(err(() => cat.get("../images/debian-12")).kind).toBe("invalid");
    expect(err(() => cat.get("escape", "config.disks[0].image")).message).toMatch(/^config\.disks\[0\]\.image: image "escape" is unusable: disk.raw points outside/);
  });

  it("a missing directory has no images", () => {
    expect(new ImageCatalog(join(top, "nope")).list()).toEqual([]);
    expect(() => new ImageCatalog(join(top, "nope")).get("x")).toThrow(/not found/);
  });

  it("inspect: size of a good base; refuses backing files and a wrong format", async () => {
    expect(await cat.inspect(cat.get("debian-12"))).toBe(4096);
    await expect(cat.inspect(cat.get("chained"))).rejects.toThrow(/has a backing file/);
    await expect(cat.inspect(cat.get("liar"))).rejects.toThrow(/qemu-img info/);
    await expect(cat.inspect(cat.get("kernel-only"))).rejects.toThrow(/has no disk/);
  });
});

describe("parseQemuImgInfo", () => {
  it.each([
    ['{"format":"raw","virtual-size":10}', { format: "raw", virtualSize: 10 }],
    ['{"format":"qcow2","virtual-size":5,"backing-filename":"/b"}', { format: "qcow2", virtualSize: 5, backingFile: "/b" }],
    ['{"format":"qcow2","virtual-size":5,"format-specific":{"type":"qcow2","data":{"data-file":"/d"}}}', { format: "qcow2", virtualSize: 5, dataFile: "/d" }],
  ])("%s", (json, facts) => expect(parseQemuImgInfo(json)).toEqual(facts));
  it("refuses other output", () => expect(() => parseQemuImgInfo("{}")).toThrow(/no format/));
});
