// The control connection to vmm-relayd (native/relayd/control.h): the
// relay's 0700 directory, a line-oriented unix-socket connection, the
// greeting, and waiting for a relay's processes to be gone. native/relay.ts
// builds the relay client on it.
import { chmodSync, lstatSync, mkdirSync, readFileSync } from "node:fs";
import { createConnection, type Socket } from "node:net";
import { join } from "node:path";

/** A unix socket path must fit sockaddr_un.sun_path (108 bytes with its NUL). */
const kSunPathMax = 107;

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** True while `pid` runs (not a zombie). */
function alive(pid: number): boolean {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, "utf8");
    return !/^[ZX]$/.test(st.slice(st.lastIndexOf(")") + 2, st.lastIndexOf(")") + 3));
  } catch {
    return false;
  }
}

/**
 * Waits until every pid (processes of one relay) is gone; SIGKILL after
 * `ms`. A relay's listeners close with its last process.
 */
export async function waitGone(pids: number[], ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (pids.some(alive) && Date.now() < end) await sleep(20);
  for (const p of pids.filter(alive)) {
    try {
      process.kill(p, "SIGKILL");
    } catch {
      // gone meanwhile
    }
  }
  while (pids.some(alive) && Date.now() < end + 2000) await sleep(20);
}

/** Makes `dir` a 0700 directory of ours (the relay refuses anything else). */
export function ensureDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`vmm-relayd directory ${dir} is not a directory`);
  if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
  const sock = join(dir, "control.sock");
  if (sock.length > kSunPathMax) throw new Error(`vmm-relayd control socket ${sock} is longer than ${kSunPathMax} bytes; use a shorter state_dir`);
}

/** A line-oriented control connection. */
export class Control {
  private buf = "";
  private readonly lines: string[] = [];
  private waiter: (() => void) | undefined;
  private onClose: (() => void) | undefined;
  closed = false;

  constructor(readonly sock: Socket) {
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf("\n")) >= 0) {
        this.lines.push(this.buf.slice(0, nl));
        this.buf = this.buf.slice(nl + 1);
      }
      this.waiter?.();
    });
    sock.on("error", () => undefined); // reported through "close"
    sock.on("close", () => {
      this.closed = true;
      this.waiter?.();
      this.onClose?.();
    });
  }

  /** The next line; rejects when the connection closed or after `ms` (no timer when undefined). */
  async line(ms?: number): Promise<string> {
    const end = ms === undefined ? Infinity : Date.now() + ms;
    while (this.lines.length === 0) {
      if (this.closed) throw new Error("vmm-relayd closed the control connection");
      if (Date.now() >= end) throw new Error(`vmm-relayd did not answer in ${ms} ms`);
      await new Promise<void>((r) => {
        const t = ms === undefined ? undefined : setTimeout(r, Math.max(1, end - Date.now()));
        this.waiter = () => {
          if (t) clearTimeout(t);
          r();
        };
      });
      this.waiter = undefined;
    }
    return this.lines.shift()!;
  }

  whenClosed(fn: () => void): void {
    this.onClose = fn;
  }
}

/** Connects to the control socket; undefined when no relay listens there. */
export async function connectControl(path: string): Promise<Control | undefined> {
  const sock = await new Promise<Socket | undefined>((res, rej) => {
    const s = createConnection({ path });
    s.once("connect", () => {
      s.removeAllListeners("error");
      res(s);
    });
    s.once("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT" || e.code === "ECONNREFUSED") res(undefined);
      else rej(new Error(`connect ${path}: ${e.code ?? e.message}`));
    });
  });
  return sock ? new Control(sock) : undefined;
}

/** The relay's greeting: its protocol version, its processes and its counter memfd. */
export interface Hello {
  protocol: number;
  pids: number[];
  countersFd: number;
}

/** Parses the greeting; throws on BUSY / ERR / anything else. */
export function parseHello(line: string, dir: string): Hello {
  const m = /^HELLO (\d+) (\d+(?:,\d+)*) (\d+)$/.exec(line);
  if (m) return { protocol: Number(m[1]), pids: m[2]!.split(",").map(Number), countersFd: Number(m[3]) };
  const busy = /^BUSY (\d+)$/.exec(line);
  if (busy) throw new RelayBusy(`vmm-relayd in ${dir} is controlled by another process (pid ${busy[1]}): is another vmmd using this state directory?`);
  if (line === "ERR peer 1") throw new Error(`vmm-relayd in ${dir} refused this process (not root, not its user)`);
  throw new Error(`vmm-relayd in ${dir}: unexpected greeting ${JSON.stringify(line.slice(0, 80))}`);
}

/** The relay is controlled by another process (a greeting of BUSY). */
export class RelayBusy extends Error {}
