// A counting semaphore with a budget per priority: work of one priority
// never waits for a slot of another. The lease keeper runs ARP probes
// through it: a report's probe never queues behind background
// re-verification, and neither can take every libuv worker thread.
export class PrioritySlots<P extends string> {
  private readonly running: Record<string, number> = {};
  private readonly waiting: Record<string, (() => void)[]> = {};

  /** `budget`: how many runs of each priority may be in flight at once. */
  constructor(private readonly budget: Record<P, number>) {}

  /** Runs `fn` once a slot of priority `p` is free; the slot is freed when it settles. */
  async run<T>(p: P, fn: () => Promise<T>): Promise<T> {
    await this.acquire(p);
    try {
      return await fn();
    } finally {
      this.release(p);
    }
  }

  /** Runs of priority `p` in flight. */
  inFlight(p: P): number {
    return this.running[p] ?? 0;
  }

  private acquire(p: P): Promise<void> {
    if (this.inFlight(p) < this.budget[p]) {
      this.running[p] = this.inFlight(p) + 1;
      return Promise.resolve();
    }
    return new Promise((resolve) => (this.waiting[p] ??= []).push(resolve));
  }

  private release(p: P): void {
    const next = this.waiting[p]?.shift();
    if (next) next(); // the slot passes on
    else this.running[p] = this.inFlight(p) - 1;
  }
}
