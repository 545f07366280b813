// Public surface of the port forwarder.
export { ForwardService, type ForwardServiceOptions } from "./service.js";
export {
  validateRules,
  ruleKey,
  type ForwardRule,
  type ForwardStatus,
  type ForwardCounters,
  type ForwardProtocol,
} from "./rules.js";
