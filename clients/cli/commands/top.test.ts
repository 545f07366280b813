import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { GetVmStatsResponseSchema, VmInfoSchema, VmStatus } from "../../../gen/ts/vmm/v1/vmm_pb.js";
import { renderTop, type TopFrame } from "./top.js";

const info = (id: string, status: VmStatus) => create(VmInfoSchema, { id, name: `${id}\nname`, status });
const stats = (instanceId: string, rx: bigint, tx: bigint) =>
  create(GetVmStatsResponseSchema, {
    id: "a",
    status: VmStatus.RUNNING,
    instanceId,
    sampledAt: timestampFromDate(new Date(0)),
    cpuPercent: 12.345,
    memoryRssBytes: 200n * 1024n * 1024n,
    memoryConfiguredBytes: 256n * 1024n * 1024n,
    uptimeSeconds: 75n,
    nics: [
      { index: 0, hostInterface: "vt0", rxBytes: rx, rxPackets: 10n, txBytes: tx, txPackets: 20n },
      { index: 1, hostInterface: "" },
    ],
  });

const rowsOf = (text: string) => text.split("\n").slice(2).filter((l) => l !== "").map((l) => l.split(/\s{3,}/));

describe("renderTop", () => {
  const first: TopFrame = { at: Date.UTC(2025, 0, 1, 12, 0, 0), vms: [{ info: info("a", VmStatus.RUNNING), stats: stats("i1", 1000n, 0n) }, { info: info("b", VmStatus.STOPPED) }] };

  it("shows a header, one row per VM and one per NIC; no rates without a previous frame", () => {
    const text = renderTop(first);
    expect(text.split("\n")[0]).toBe("vmm top - 12:00:00 - 2 VMs, 1 running");
    expect(rowsOf(text)).toEqual([
      ["ID", "NAME", "STATUS", "CPU%", "RSS", "MEMORY", "UPTIME", "RX", "TX"],
      ["a", "a\\nname", "running", "12.3", "200 MiB", "256 MiB", "1m15s", "-", "-"],
      ["  nic0", "vt0", "-", "-", "-", "-", "-", "1000 B 10p", "0 B 20p"],
      ["  nic1", "(no host interface)", "-", "-", "-", "-", "-", "-", "-"],
      ["b", "b\\nname", "stopped", "-", "-", "-", "-", "-", "-"],
    ]);
  });

  it("computes rates from the previous frame of the same boot only", () => {
    const next: TopFrame = { at: first.at + 2000, vms: [{ info: info("a", VmStatus.RUNNING), stats: stats("i1", 5096n, 2048n) }, first.vms[1]!] };
    expect(rowsOf(renderTop(next, first))[1]!.slice(7)).toEqual(["2 KiB/s", "1 KiB/s"]);
    const rebooted: TopFrame = { at: first.at + 2000, vms: [{ info: info("a", VmStatus.RUNNING), stats: stats("i2", 10n, 0n) }] };
    expect(rowsOf(renderTop(rebooted, first))[1]!.slice(7)).toEqual(["-", "-"]);
  });
});
