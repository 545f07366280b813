// A guest on a vmnet host network with a forwarded port, as the metrics,
// web console and `top` tests need it: the network's dnsmasq reports the
// lease through the hook, the forwarder points the host port at it, and
// the guest's web server answers through it.
import { expect } from "vitest";
import { client, transport, type DaemonHandle } from "../helpers/daemon.js";
import { guestInitrd, guestKernel } from "../guest/paths.js";
import { freePort, httpGet, waitFor } from "../helpers/net.js";
import { NetworkingMode, Protocol, VmmService, VmStatus } from "../../gen/ts/vmm/v1/vmm_pb.js";
import { NetworkMode, NetworkService } from "../../gen/ts/vmm/v1/network_pb.js";

/** vmm.toml lines the daemon needs for this: tokens, forwarding on. */
export function servedGuestToml(admin: string): string {
  return `[auth]\ntokens = ["${admin}"]\n[networking]\nforward_service_enabled = true\n`;
}

export interface ServedGuest {
  vmId: string;
  networkId: string;
  /** Host port on 127.0.0.1 forwarded to the guest's :8080. */
  port: number;
  /** The guest's leased address. */
  ip: string;
}

/**
 * Creates network `<id>-net` (host mode, `subnet`) and VM `id` on it with
 * 127.0.0.1:<free port> -> 8080, starts it, and waits (bounded) until the
 * guest's page answers through the forward.
 */
export async function bootServedGuest(d: DaemonHandle, admin: string, id: string, subnet: string): Promise<ServedGuest> {
  const vmm = client(VmmService, transport(d, "connect", "unix", { token: admin }));
  const nets = client(NetworkService, transport(d, "connect", "unix", { token: admin }));
  const { network } = await nets.createNetwork({ name: `${id}-net`, config: { mode: NetworkMode.HOST, ipv4Subnet: subnet } });
  const port = await freePort();
  const { vm } = await vmm.createVm({
    id,
    config: {
      name: `${id} guest`,
      kernel: guestKernel(),
      initrd: guestInitrd(),
      cmdline: `console=ttyS0 panic=-1 vmm.hostname=${id}`,
      nics: [{ mode: NetworkingMode.VMNET, networkId: network!.id }],
      ports: [{ protocol: Protocol.TCP, hostAddress: "127.0.0.1", hostPort: port, vmPort: 8080 }],
    },
    start: true,
  });
  expect(vm!.status).toBe(VmStatus.RUNNING);
  const page = await waitFor(() => httpGet(`http://127.0.0.1:${port}/`), 150_000, 500);
  expect(page).toContain(`hello from ${id}`);
  const ip = (await vmm.getInfo({ id })).vm!.nics[0]!.lease!.ip;
  return { vmId: id, networkId: network!.id, port, ip };
}

/** Removes every VM and network of the daemon (test cleanup; errors ignored). */
export async function removeAll(d: DaemonHandle, admin: string): Promise<void> {
  const vmm = client(VmmService, transport(d, "connect", "unix", { token: admin }));
  const nets = client(NetworkService, transport(d, "connect", "unix", { token: admin }));
  const { vms } = await vmm.listVms({}).catch(() => ({ vms: [] }));
  for (const v of vms) await vmm.removeVm({ id: v.id, force: true }).catch(() => undefined);
  const { networks } = await nets.listNetworks({}).catch(() => ({ networks: [] }));
  for (const n of networks) await nets.deleteNetwork({ id: n.id, force: true }).catch(() => undefined);
}
