// nftables (`nft`) as a library: load a ruleset from text, delete a table.
// Rulesets are built by pure generators of the floors above (vmnet/linux.ts);
// every name and address in them was validated there. `nft -f -` reads the
// script from stdin, so no value of it ever becomes an argv element.
import { VmmError } from "../errors.js";
import { runProgram } from "./exec.js";

/** The `nft` binary. */
export const NFT_BIN = process.env.VMM_NFT_BIN ?? "nft";

/** Table families we create. */
export type NftFamily = "inet" | "ip" | "ip6";

const TABLE_RE = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** Loads `script` (nft syntax) as one transaction: all of it applies or none. */
export async function loadRuleset(script: string): Promise<void> {
  await runProgram([NFT_BIN, "-f", "-"], { input: script });
}

/** Deletes table `name` of `family`; a table that does not exist is not an error. */
export async function deleteTable(family: NftFamily, name: string): Promise<void> {
  if (!TABLE_RE.test(name)) throw new VmmError("invalid", `nft table name "${name.slice(0, 64)}" is not an identifier`);
  try {
    await runProgram([NFT_BIN, "delete", "table", family, name]);
  } catch (e) {
    if (e instanceof VmmError && /No such file or directory|does not exist/i.test(e.message)) return;
    throw e;
  }
}
