import { afterEach, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { guestInitrd, guestKernel } from "./paths.js";

describe("guest paths", () => {
  const saved = process.env.VMM_GUEST_DIR;
  afterEach(() => {
    if (saved === undefined) delete process.env.VMM_GUEST_DIR;
    else process.env.VMM_GUEST_DIR = saved;
  });

  it("names scripts/setup-guest.sh when the guest is missing", () => {
    const d = mkdtempSync(join(tmpdir(), "vmm-guest-"));
    try {
      process.env.VMM_GUEST_DIR = d;
      expect(() => guestKernel()).toThrow(/scripts\/setup-guest\.sh/);
      expect(() => guestInitrd()).toThrow(/scripts\/setup-guest\.sh/);
    } finally {
      rmSync(d, { recursive: true });
    }
  });

  it("finds the guest set up by scripts/setup-guest.sh", () => {
    expect(guestKernel()).toMatch(/vmlinuz-/);
    expect(guestInitrd()).toMatch(/initramfs\.cpio\.gz$/);
  });
});
