// Guards for tests that create interfaces, namespaces or processes: they
// must run inside scripts/in-netns.sh (a private network + mount namespace).
// Called from beforeAll, so such a test fails loudly instead of skipping or,
// worse, touching the host's network.
import { spawnSync } from "node:child_process";
import { readFileSync, readlinkSync } from "node:fs";

export function requireNetns(): void {
  if (process.env.VMM_IN_NETNS !== "1") {
    throw new Error(
      "this test creates interfaces/processes and must run inside the private namespace: " +
        "scripts/in-netns.sh npx vitest run <file>",
    );
  }
  // Belt and braces: the variable could be inherited; compare namespaces.
  let self: string;
  let init: string;
  try {
    self = readlinkSync("/proc/self/ns/net");
    init = readlinkSync("/proc/1/ns/net");
  } catch {
    return; // cannot compare (no /proc/1 access): trust the variable
  }
  if (self === init) throw new Error("VMM_IN_NETNS=1 but this process shares PID 1's network namespace");
}

/** A short random suffix for interface names (IFNAMSIZ leaves little room). */
export function uniq(): string {
  return Math.random().toString(36).slice(2, 7);
}

/**
 * Makes /sys/class/net show this network namespace. sysfs shows the
 * namespace of whoever mounted it, and scripts/in-netns.sh only unshares the
 * namespaces, so /sys still lists the host's interfaces. Mounting a fresh
 * sysfs is private to the mount namespace in-netns.sh created (propagation
 * private): the host's /sys is not touched. Idempotent and safe to race
 * (test files run in parallel workers): the mount is recognised by its
 * source name in /proc/self/mountinfo.
 */
export function useNetnsSysfs(): void {
  requireNetns();
  const SOURCE = "vmm-netns-sysfs";
  const mounted = () =>
    readFileSync("/proc/self/mountinfo", "utf8")
      .split("\n")
      .some((l) => l.split(" ")[4] === "/sys" && l.includes(` - sysfs ${SOURCE} `));
  if (mounted()) return;
  const r = spawnSync("mount", ["-t", "sysfs", SOURCE, "/sys"], { encoding: "utf8", timeout: 10_000 });
  if (r.status !== 0 && !mounted()) {
    throw new Error(`mount -t sysfs ${SOURCE} /sys (inside the private namespace) failed: ${r.stderr || r.error?.message}`);
  }
}
