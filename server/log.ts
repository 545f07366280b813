// Structured log lines (JSON, one per line) on stderr. stdout carries only
// the machine-readable "ready" line printed once the daemon listens.
type Level = "debug" | "info" | "warn" | "error";

/** Writes one JSON line (time, level, msg, fields) to stderr; `debug` only when VMM_DEBUG is set. */
export function log(level: Level, msg: string, fields: Record<string, unknown> = {}): void {
  if (level === "debug" && !process.env.VMM_DEBUG) return;
  process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + "\n");
}
