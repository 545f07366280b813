// The NIC preparer of every networking mode.
import type { NetMode } from "../../config/types.js";
import { prepareBridge } from "./bridge.js";
import { prepareCustom } from "./custom.js";
import { prepareMacvtap } from "./macvtap.js";
import { preparePasst } from "./passt.js";
import { prepareTap } from "./tap.js";
import { prepareUser } from "./user.js";
import { prepareVmnet } from "./vmnet.js";
import type { NicPreparer } from "./types.js";

/** One preparer per mode; the runner looks a NIC's mode up here. */
export const NIC_PREPARERS: Readonly<Record<NetMode, NicPreparer>> = {
  user: prepareUser,
  passt: preparePasst,
  bridge: prepareBridge,
  tap: prepareTap,
  macvtap: prepareMacvtap,
  vmnet: prepareVmnet,
  custom: prepareCustom,
};
