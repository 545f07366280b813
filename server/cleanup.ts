// A LIFO stack of undo steps, like lima's onClose: whoever creates something
// on the host (a TAP, a macvtap, a passt or QEMU process) pushes the step
// that removes it; run() removes everything in reverse order of creation.
// Every step runs even when an earlier one fails; the failures are returned
// (and thrown by runOrThrow), never swallowed silently.

/** One undo step: what it undoes (for messages) and how. */
export interface UndoStep {
  what: string;
  run: () => unknown;
}

/** LIFO undo steps; see the file comment. */
export class CleanupStack {
  private readonly steps: UndoStep[] = [];

  /** Registers the step that undoes something just created; `what` names it in failures. */
  push(what: string, run: () => unknown): void;
  /** Registers an unnamed step (failures name it by its position). */
  push(run: () => unknown): void;
  push(whatOrRun: string | (() => unknown), run?: () => unknown): void {
    if (typeof whatOrRun === "string") this.steps.push({ what: whatOrRun, run: run! });
    else this.steps.push({ what: `cleanup step ${this.steps.length + 1}`, run: whatOrRun });
  }

  /** Runs every step, newest first; resolves with "what: error" for each step that failed. */
  async run(): Promise<string[]> {
    const errors: string[] = [];
    while (this.steps.length > 0) {
      const s = this.steps.pop()!;
      try {
        await s.run();
      } catch (e) {
        errors.push(`${s.what}: ${(e as Error)?.message ?? String(e)}`);
      }
    }
    return errors;
  }

  /** run(), then throws one Error listing every failed step. */
  async runOrThrow(): Promise<void> {
    const errors = await this.run();
    if (errors.length > 0) throw new Error(`cleanup failed:\n  ${errors.join("\n  ")}`);
  }
}
