// Loader and typed surface of the vmm native addon (native/binding.gyp).
//
// The addon is optional at runtime: callers ask for it with loadNative(), which
// either returns the typed surface or throws a NativeLoadError that lists every
// path it tried and why each failed, so "the addon is missing" is never a
// guess.
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Functions every platform build exports. */
export interface NativeCommon {
  readonly platform: "linux" | "darwin";
}

/**
 * The Linux surface. Members are added by src/linux/*.cc; see the doc comment
 * of each for fd ownership.
 */
export interface NativeLinux extends NativeCommon {
  readonly platform: "linux";
}

/**
 * The addon surface of the platform this build targets (only Linux builds today; see
 * native/vmnet.ts for darwin).
 */
export type Native = NativeLinux;

/** The addon could not be loaded; `tried` lists every candidate path with why it failed. */
export class NativeLoadError extends Error {
  constructor(readonly tried: readonly { path: string; error: string }[]) {
    super(
      "vmm native addon could not be loaded (build it with `npm run build:native`); tried:\n" +
        tried.map((t) => `  ${t.path}: ${t.error}`).join("\n"),
    );
    this.name = "NativeLoadError";
  }
}

let cached: Native | undefined;

/** Candidate locations, most specific first. */
export function nativeCandidates(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  // Works from the sources (native/index.ts) and the build (dist/native/index.js).
  const roots = [resolve(here), resolve(here, "..", "..", "native")];
  const out: string[] = [];
  const env = process.env.VMM_NATIVE_ADDON;
  if (env) out.push(resolve(env));
  for (const r of roots) {
    out.push(join(r, "build", "Release", "vmm_native.node"));
    out.push(join(r, "build", "Debug", "vmm_native.node"));
  }
  return [...new Set(out)];
}

/**
 * The addon, loaded once from the first candidate path that works (VMM_NATIVE_ADDON first); throws
 * NativeLoadError listing every attempt.
 */
export function loadNative(): Native {
  if (cached) return cached;
  const require = createRequire(import.meta.url);
  const tried: { path: string; error: string }[] = [];
  for (const p of nativeCandidates()) {
    if (!existsSync(p)) {
      tried.push({ path: p, error: "not found" });
      continue;
    }
    try {
      cached = require(p) as Native;
      return cached;
    } catch (e) {
      tried.push({ path: p, error: (e as Error).message });
    }
  }
  throw new NativeLoadError(tried);
}
