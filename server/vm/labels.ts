// VM labels and label selectors: identifying key/value pairs programs attach
// to VMs (vmm-kubelet records the pod a VM runs), and the ListVms filter
// over them. The syntax is Kubernetes': a key is an optional DNS-subdomain
// prefix and "/", then a name; selectors are comma-separated equality and
// existence requirements. Labels end up in vm.json and in API responses
// only, never in argv or config files, so the grammar is about keeping them
// small and unambiguous (a selector must be able to name any key), not
// about escaping.
import type { Problems } from "../errors.js";

/** Labels per VM. */
export const MAX_LABELS = 64;
/** A selector, characters. */
export const MAX_SELECTOR = 1024;

/** A label name or value: 1-63 of [A-Za-z0-9._-], alphanumeric at both ends. */
const NAME_RE = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
/** A DNS subdomain (the key prefix), at most 253 characters. */
const PREFIX_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** Why `key` is not a label key, or undefined when it is one. */
function keyProblem(key: string): string | undefined {
  const slash = key.indexOf("/");
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > 253 || !PREFIX_RE.test(prefix)))
    return "prefix must be a DNS subdomain (lower-case letters, digits, '-' and '.'; at most 253)";
  if (!NAME_RE.test(name)) return "name must be 1-63 of A-Z a-z 0-9 . _ -, starting and ending with a letter or digit";
  return undefined;
}

/** Why `value` is not a label value, or undefined when it is one. */
function valueProblem(value: string): string | undefined {
  return value === "" || NAME_RE.test(value) ? undefined : "must be empty or 1-63 of A-Z a-z 0-9 . _ -, starting and ending with a letter or digit";
}

/** Adds a problem per bad key or value of `labels` (field e.g. "config.labels"). */
export function checkLabels(p: Problems, field: string, labels: Record<string, string>): void {
  const keys = Object.keys(labels);
  if (keys.length > MAX_LABELS) p.add(field, `has ${keys.length} labels; at most ${MAX_LABELS}`);
  for (const k of keys.sort()) {
    const kp = keyProblem(k);
    if (kp) p.add(`${field}[${JSON.stringify(k)}]`, `key ${kp}`);
    const vp = valueProblem(labels[k]!);
    if (vp) p.add(`${field}[${JSON.stringify(k)}]`, `value ${vp}`);
  }
}

/** One requirement of a selector. */
export type Requirement =
  | { op: "eq"; key: string; value: string }
  | { op: "ne"; key: string; value: string }
  | { op: "exists"; key: string }
  | { op: "absent"; key: string };

/** A parsed selector: every requirement must hold. Empty: matches everything. */
export type Selector = Requirement[];

/**
 * Parses `key=value`, `key==value`, `key!=value`, `key` and `!key`
 * requirements separated by commas (spaces around them are allowed); adds
 * a problem naming the bad requirement to `p` and returns undefined.
 */
export function parseSelector(p: Problems, field: string, text: string): Selector | undefined {
  if (text.length > MAX_SELECTOR) {
    p.add(field, `is ${text.length} characters; at most ${MAX_SELECTOR}`);
    return undefined;
  }
  if (text.trim() === "") return [];
  const out: Selector = [];
  let ok = true;
  for (const [i, raw] of text.split(",").entries()) {
    const part = raw.trim();
    const bad = (why: string) => {
      p.add(field, `requirement ${i + 1} ${JSON.stringify(part)}: ${why}`);
      ok = false;
    };
    const m = /^(!?)\s*([^=!\s]+)\s*(?:(==|=|!=)\s*(\S*))?$/.exec(part);
    if (!m) {
      bad("want key=value, key!=value, key or !key");
      continue;
    }
    const [, not, key, op, value] = m;
    const kp = keyProblem(key!);
    if (kp) {
      bad(`key ${kp}`);
      continue;
    }
    if (op === undefined) {
      out.push(not ? { op: "absent", key: key! } : { op: "exists", key: key! });
      continue;
    }
    if (not) {
      bad("'!' goes with a bare key only");
      continue;
    }
    const vp = valueProblem(value!);
    if (vp) {
      bad(`value ${vp}`);
      continue;
    }
    out.push({ op: op === "!=" ? "ne" : "eq", key: key!, value: value! });
  }
  return ok ? out : undefined;
}

/** Whether `labels` satisfy every requirement of `s`. */
export function matches(labels: Record<string, string>, s: Selector): boolean {
  return s.every((r) => {
    const has = Object.hasOwn(labels, r.key);
    switch (r.op) {
      case "eq":
        return has && labels[r.key] === r.value;
      case "ne":
        return !has || labels[r.key] !== r.value;
      case "exists":
        return has;
      case "absent":
        return !has;
    }
  });
}
