// Shell completion scripts, generated from the command tree so they never
// disagree with it. VM arguments complete to the daemon's VM names
// (`vmm-cli lsvm -q`, with the same connection environment as the shell).
import type { Command } from "commander";

interface Spec {
  /** "network create" etc., one per alias combination ("ls" and "lsvm"). */
  paths: string[];
  options: string[];
  /** Whether the first argument is a VM handle. */
  vmArg: boolean;
  subcommands: string[];
}

/** Every command and its options, depth-first. Pure. */
export function commandSpecs(root: Command): Spec[] {
  const out: Spec[] = [];
  const walk = (c: Command, paths: string[]) => {
    const args = (c as unknown as { registeredArguments: { name(): string }[] }).registeredArguments ?? [];
    out.push({
      paths,
      options: c.options.flatMap((o) => [o.short, o.long].filter((x): x is string => x !== undefined)),
      vmArg: /^vms?$/.test(args[0]?.name() ?? ""),
      subcommands: c.commands.flatMap((sub) => [sub.name(), ...sub.aliases()]),
    });
    for (const sub of c.commands) {
      const names = [sub.name(), ...sub.aliases()];
      walk(sub, paths.flatMap((p) => names.map((n) => (p === "" ? n : `${p} ${n}`))));
    }
  };
  walk(root, [""]);
  return out;
}

/** The bash completion script (`source <(vmm-cli completion bash)`). */
export function bashCompletion(root: Command): string {
  const cases = commandSpecs(root)
    .map((sp) => `    ${sp.paths.map((p) => JSON.stringify(p)).join("|")}) subs="${sp.subcommands.join(" ")}"; opts="${sp.options.join(" ")}"; vm=${sp.vmArg ? 1 : 0} ;;`)
    .join("\n");
  return `# bash completion for vmm-cli; load with: source <(vmm-cli completion bash)
_vmm_cli_spec() {
  case "$1" in
${cases}
    *) subs=""; opts=""; vm=0 ;;
  esac
}
_vmm_cli() {
  local cur=\${COMP_WORDS[COMP_CWORD]} path="" w i subs opts vm words
  _vmm_cli_spec ""
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    case " $subs " in *" $w "*) path=\${path:+$path }$w; _vmm_cli_spec "$path" ;; esac
  done
  words="$subs $opts"
  if [ "$vm" = 1 ] && [[ "$cur" != -* ]]; then
    words="$words $(vmm-cli lsvm -q 2>/dev/null)"
  fi
  mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
}
complete -F _vmm_cli vmm-cli
`;
}

/** The zsh completion script (`source <(vmm-cli completion zsh)`), through bash's. */
export function zshCompletion(root: Command): string {
  return `# zsh completion for vmm-cli; load with: source <(vmm-cli completion zsh)
autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit
${bashCompletion(root).split("\n").slice(1).join("\n")}`;
}
