import { describe, expect, it } from "vitest";
import { vmnetErrorKind } from "./darwin.js";
import { toConnectError } from "../rpc/errors.js";
import { VmmError } from "../errors.js";
import { Code } from "@connectrpc/connect";

// vmnet_return_t values from <vmnet/vmnet.h>; the mapping is the part of the
// darwin backend that can be checked on Linux.
describe("vmnet_return_t -> Connect code", () => {
  it.each([
    [1001, Code.Internal], // VMNET_FAILURE
    [1002, Code.ResourceExhausted], // VMNET_MEM_FAILURE
    [1003, Code.InvalidArgument], // VMNET_INVALID_ARGUMENT
    [1004, Code.FailedPrecondition], // VMNET_SETUP_INCOMPLETE
    [1005, Code.PermissionDenied], // VMNET_INVALID_ACCESS
    [1009, Code.Unavailable], // VMNET_SHARING_SERVICE_BUSY
    [1010, Code.PermissionDenied], // VMNET_NOT_AUTHORIZED
    [4242, Code.Internal], // unknown
  ])("%i", (status, code) => {
    expect(toConnectError(new VmmError(vmnetErrorKind(status), "vmnet")).code).toBe(code);
  });
});
