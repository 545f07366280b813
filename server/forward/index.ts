// Public surface of the port forwarder.
export { ForwardService, type ForwardServiceOptions, type DataPath } from "./service.js";
export {
  validateRules,
  ruleKey,
  type ForwardRule,
  type ForwardStatus,
  type ForwardCounters,
  type ForwardProtocol,
  type ForwardPath,
  type RelayKind,
} from "./rules.js";
