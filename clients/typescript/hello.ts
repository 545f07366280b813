// The README's TypeScript example: the daemon's version and its VMs, over
// the unix socket with the generated client (gen/ts). tsc compiles it with
// the rest (scripts/start.sh does): node dist/clients/typescript/hello.js
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { VmmService } from "../../gen/ts/vmm/v1/vmm_pb.js";

const transport = createConnectTransport({
  baseUrl: "http://localhost",
  httpVersion: "1.1",
  nodeOptions: { socketPath: process.env.VMM_SOCKET ?? ".vmm/vmmd.sock" },
});
const vmm = createClient(VmmService, transport);
const { version } = await vmm.getMeta({});
const { vms } = await vmm.listVms({});
console.log(`vmmd ${version}: ${vms.length} VM(s)`);
for (const vm of vms) console.log(`${vm.name} ${vm.id} ${vm.nics[0]?.mac ?? "-"}`);
