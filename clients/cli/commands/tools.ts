// version and completion.
import { Argument, type Command } from "commander";
import { bashCompletion, zshCompletion } from "../completion.js";
import { describeError } from "../errors.js";
import { cliVersion, type Session } from "../session.js";

/** Adds `version` and `completion` to `program`. */
export function registerToolCommands(program: Command, s: Session): void {
  program
    .command("version")
    .description("print the versions of vmm-cli and of the daemon it reaches")
    .action(async () => {
      let daemon: string | undefined;
      let why = "";
      try {
        daemon = (await s.vmm().getMeta({})).version;
      } catch (e) {
        why = describeError(e, s.endpoint || undefined).text.replace(/^vmm-cli: /, "").trim();
      }
      if (s.json) s.io.out(JSON.stringify({ client: cliVersion(), ...(daemon !== undefined ? { daemon } : { daemonError: why }) }, null, 2) + "\n");
      else s.io.out(`vmm-cli ${cliVersion()}\nvmmd    ${daemon ?? `unknown (${why})`}\n`);
    });

  program
    .command("completion")
    .description("print a shell completion script: source <(vmm-cli completion bash)")
    .addArgument(new Argument("<shell>", "bash or zsh").choices(["bash", "zsh"]))
    .action((shell: "bash" | "zsh") => {
      s.io.out(shell === "bash" ? bashCompletion(program) : zshCompletion(program));
    });
}
