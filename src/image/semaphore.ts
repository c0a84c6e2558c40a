/** A counting semaphore: at most `limit` holders at once, FIFO. */
export class Semaphore {
  private active = 0;
  private readonly waiters: (() => void)[] = [];
  constructor(private readonly limit: () => number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit()) await new Promise<void>((r) => this.waiters.push(r));
    this.active++;
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiters.shift()?.();
    }
  }
}

/** Anything that runs a task in a bounded slot. */
export interface Slots {
  run<T>(fn: () => Promise<T>): Promise<T>;
}

/** Takes a slot of each, in order (outer first), for the duration of fn. */
export function bothSlots(outer: Slots, inner: Slots): Slots {
  return { run: (fn) => outer.run(() => inner.run(fn)) };
}
