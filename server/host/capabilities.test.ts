// Accelerator choice (pure) and the KVM probe against the real QEMU.
import { describe, expect, it } from "vitest";
import { chooseAccel, findProgram, probeKvm } from "./capabilities.js";

describe("chooseAccel", () => {
  const yes = { usable: true, reason: "/dev/kvm is usable" };
  const no = { usable: false, reason: "QEMU cannot use KVM: failed to set MSR" };
  it.each([
    ["auto", yes, "kvm", "auto: /dev/kvm is usable"],
    ["auto", no, "tcg", "auto: QEMU cannot use KVM: failed to set MSR; using TCG"],
    ["kvm:tcg", no, "tcg", "kvm:tcg: QEMU cannot use KVM: failed to set MSR; using TCG"],
    ["kvm:tcg", yes, "kvm", "kvm:tcg: /dev/kvm is usable"],
    ["tcg", yes, "tcg", "qemu.accel = tcg"],
    ["kvm", no, "kvm", "qemu.accel = kvm, although QEMU cannot use KVM: failed to set MSR"],
  ] as const)("%s with usable=%s", (setting, kvm, accel, reason) => {
    expect(chooseAccel(setting, kvm)).toEqual({ accel, reason });
  });
});

describe("probeKvm", () => {
  it("answers with a reason either way (this host's answer is whatever QEMU says)", async () => {
    const qemu = findProgram("qemu-system-x86_64");
    expect(qemu).not.toBe("");
    const r = await probeKvm(qemu);
    expect(r.reason).toMatch(r.usable ? /^\/dev\/kvm is usable$/ : /^(\/dev\/kvm is not usable|QEMU cannot use KVM)/);
  });
  it("a QEMU that does not exist is not usable", async () => {
    const r = await probeKvm("/nonexistent/qemu");
    expect(r.usable).toBe(false);
  });
});
