// The vmm-cli command tree (commander): global flags and error handling
// here; the commands live in commands/ by group. Actions only turn flags
// into requests (parse.ts), call the daemon, and print either proto JSON
// (--json) or the human rendering (render.ts).
import { Command, CommanderError, Option } from "commander";
import { describeError, errorJson } from "./errors.js";
import { cliVersion, Session, type Io } from "./session.js";
import { registerVmCommands } from "./commands/vms.js";
import { registerObserveCommands } from "./commands/observe.js";
import { registerNetworkCommands } from "./commands/networks.js";
import { registerToolCommands } from "./commands/tools.js";
import { registerTopCommand } from "./commands/top.js";

export type { Io } from "./session.js";

/** Builds the command tree; `--json` is looked up in `argv` for errors commander reports. */
export function buildProgram(io: Io, argv: readonly string[] = []): { program: Command; session: Session } {
  const program = new Command("vmm-cli");
  const s = new Session(program, io);
  const jsonWanted = () => s.json || argv.includes("--json");
  program
    .description("Command-line client of vmmd, the VM manager daemon. A VM is named by its id or its name.")
    .version(cliVersion(), "-V, --version")
    .addOption(new Option("--socket <path>", "daemon unix socket (env VMM_SOCKET; default $VMM_STATE_DIR/vmmd.sock or ./.vmm/vmmd.sock)"))
    .addOption(new Option("--url <url>", "daemon URL instead of the socket, e.g. http://127.0.0.1:8080 (env VMM_URL)"))
    .addOption(new Option("--token <token>", "bearer token (env VMM_TOKEN)"))
    .addOption(new Option("--token-file <path>", "read the bearer token from a file"))
    .option("--json", "print responses, and errors, as JSON")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({
      writeOut: (t) => io.out(t),
      writeErr: (t) => io.err(t),
      outputError: (t, write) => {
        const msg = t.replace(/^error: /, "").trimEnd();
        write(jsonWanted() ? JSON.stringify({ code: "invalid_argument", message: msg }) + "\n" : `vmm-cli: ${msg}\n`);
      },
    });
  registerVmCommands(program, s);
  registerObserveCommands(program, s);
  registerTopCommand(program, s);
  registerNetworkCommands(program, s);
  registerToolCommands(program, s);
  // Help after an error is for people; --json callers get the JSON line only.
  if (argv.includes("--json")) program.showHelpAfterError(false);
  for (const c of program.commands) {
    c.exitOverride().configureOutput(program.configureOutput());
    if (argv.includes("--json")) c.showHelpAfterError(false);
    for (const sub of c.commands) sub.exitOverride().configureOutput(program.configureOutput());
  }
  return { program, session: s };
}

/** Parses argv (without node and script), runs the command, returns the exit code. Never throws. */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  const { program, session } = buildProgram(io, argv);
  try {
    await program.parseAsync([...argv], { from: "user" });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and --version exit 0; every other commander error is a usage error
      // (already printed through configureOutput).
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version") return 0;
      if (e.code === "commander.help") return 2;
      return e.exitCode === 0 ? 0 : 2;
    }
    const d = describeError(e, session.endpoint || undefined);
    io.err(session.json || argv.includes("--json") ? JSON.stringify(errorJson(e, session.endpoint || undefined)) + "\n" : d.text);
    return d.exitCode;
  }
}
