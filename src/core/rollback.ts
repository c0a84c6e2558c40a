import type { Logger } from '../log/logger';

/**
 * A stack of undo steps. Each create path pushes the undo of a step *before* the risky call, and
 * on failure unwinds in reverse order. Undo failures are logged and do not hide the original error.
 */
export class Rollback {
  private readonly steps: { what: string; undo: () => Promise<void> | void }[] = [];
  constructor(private readonly log?: Logger) {}

  push(what: string, undo: () => Promise<void> | void): void {
    this.steps.push({ what, undo });
  }

  /** Forget all steps: the operation succeeded. */
  commit(): void {
    this.steps.length = 0;
  }

  async unwind(): Promise<void> {
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await step.undo();
      } catch (e) {
        this.log?.warn('rollback step failed', { step: step.what, error: e instanceof Error ? e.message : String(e) });
      }
    }
  }

  /** Runs fn with this rollback; unwinds on error and rethrows, commits on success. */
  async run<T>(fn: (rb: Rollback) => Promise<T>): Promise<T> {
    try {
      const v = await fn(this);
      this.commit();
      return v;
    } catch (e) {
      await this.unwind();
      throw e;
    }
  }
}
