// Looking up a local user (getent passwd: /etc/passwd and whatever NSS adds).
import { runProgram } from "./exec.js";

/** A user's ids. */
export interface UserIds {
  uid: number;
  gid: number;
}

/** The uid and gid of user `name`, or undefined when there is no such user. */
export async function lookupUser(name: string): Promise<UserIds | undefined> {
  // getent exits 2 for an unknown name; any failure means "not found here".
  const out = await runProgram(["getent", "passwd", name]).catch(() => "");
  const f = out.trim().split("\n")[0]?.split(":") ?? [];
  if (f[0] !== name || f.length < 4) return undefined;
  const uid = Number(f[2]);
  const gid = Number(f[3]);
  return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
}
