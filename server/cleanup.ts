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

  /** Registers the step that undoes something just created. */
  push(what: string, run: () => unknown): void {
    this.steps.push({ what, run });
  }

  /** Moves every step of `other` on top of this stack (in its order); `other` ends empty. */
  adopt(other: CleanupStack): void {
    this.steps.push(...other.steps.splice(0));
  }

  /** Number of steps not yet run. */
  get size(): number {
    return this.steps.length;
  }

  /** What each pending step undoes, oldest first. */
  pending(): string[] {
    return this.steps.map((s) => s.what);
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
