// The QEMU side of the macOS vmnet design, checked on Linux with real QEMU:
// the darwin backend (native/src/darwin/vmnet.cc, unverifiable here) relays
// vmnet.framework's packets through an AF_UNIX datagram socketpair whose
// other end QEMU gets as `-netdev dgram,local.type=fd`. This test boots the
// test guest with exactly the argv buildQemuArgv emits for such a NIC, holds
// the host end itself (test/guest/dgram-peer.py: Node has no socketpair),
// and expects the guest's DHCP request from its MAC, one frame per
// datagram. Runs inside the private namespace like every guest test.
import { afterEach, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { buildQemuArgv } from "../../server/vm/qemu-argv.js";
import { childFdOf, stopProcess, processRef } from "../../server/host/process.js";
import { guestInitrd, guestKernel } from "../guest/paths.js";
import { QEMU_BIN, workDir } from "../guest/harness.js";
import { CleanupStack } from "../../server/cleanup.js";

const PEER = join(import.meta.dirname, "..", "guest", "dgram-peer.py");
const MAC = "52:54:00:d6:00:01";

describe("-netdev dgram over an inherited socketpair fd", () => {
  const cleanup = new CleanupStack();
  afterEach(() => cleanup.runOrThrow());

  it("carries the guest's frames, one per datagram", async () => {
    const dir = workDir("dgram");
    const argv = buildQemuArgv({
      name: "dgram-guest",
      accel: "tcg",
      memoryMiB: 256,
      cpus: 1,
      kernel: guestKernel(),
      initrd: guestInitrd(),
      append: "console=ttyS0 quiet panic=-1 vmm.hostname=dgram-guest",
      serialPath: join(dir, "serial.log"),
      qmpSocket: join(dir, "qmp.sock"),
      noReboot: true,
      nics: [{ mode: "dgram", mac: MAC, fd: childFdOf(0) }],
    });
    expect(argv).toContain(`dgram,id=net0,local.type=fd,local.str=${childFdOf(0)}`);

    const peer = spawn("python3", [PEER, "90", join(dir, "qemu.log"), QEMU_BIN, ...argv], { stdio: ["ignore", "pipe", "inherit"] });
    const exited = new Promise<void>((r) => peer.once("close", () => r()));
    cleanup.push("stop dgram-peer.py", async () => {
      peer.kill("SIGTERM");
      await exited;
    });
    const lines: Record<string, unknown>[] = [];
    for await (const line of createInterface({ input: peer.stdout! })) {
      const msg = JSON.parse(line) as Record<string, unknown>;
      lines.push(msg);
      if (typeof msg.pid === "number") {
        // Should the script die first, QEMU still goes (by PID, ours).
        const ref = await processRef(msg.pid);
        if (ref) cleanup.push(`stop qemu (pid ${ref.pid})`, () => stopProcess(ref, { graceMs: 3000 }));
      }
    }
    await exited;
    expect(peer.exitCode, JSON.stringify(lines)).toBe(0);
    const result = lines[lines.length - 1]!;
    expect(result.error, `QEMU log: ${join(dir, "qemu.log")}`).toBeUndefined();
    expect(result.dhcp_src_mac).toBe(MAC);
    expect(result.frames).toBeGreaterThanOrEqual(1);
  }, 120_000);
});
