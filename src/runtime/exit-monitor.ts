import { watch, promises as fs, type FSWatcher } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../log/logger';

/** How a container process ended, as conmon recorded it. */
export interface ExitStatus {
  exitCode: number;
  /** When the exit file was written (ns since the epoch). */
  finishedAtNs: bigint;
}

export type ExitListener = (id: string, status: ExitStatus) => void;

/** Parses conmon's exit file content (the exit code; 128+n for signal n). */
export function parseExitFile(text: string): number | undefined {
  const t = text.trim();
  if (!/^-?\d+$/.test(t)) return undefined;
  return Number(t);
}

/** Ids are plain names; conmon's temp files (name.XXXXXX) and dotfiles are ignored. */
function isIdName(name: string): boolean {
  return name.length > 0 && !name.startsWith('.') && !name.includes('.');
}

/**
 * Watches conmon's exit directory: every new exit file becomes one event. Exits are learned here only,
 * never by polling the runtime. `read(id)` answers for files written while nobody watched (recovery).
 */
export class ExitMonitor {
  private watcher?: FSWatcher;
  private readonly listeners = new Set<ExitListener>();
  private readonly seen = new Map<string, number>();

  constructor(readonly dir: string, private readonly log: Logger) {}

  async start(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    this.watcher = watch(this.dir, (_ev, name) => {
      if (name && isIdName(name.toString())) void this.check(name.toString());
    });
    this.watcher.on('error', (e) => this.log.error('exit dir watch failed', { dir: this.dir, error: e }));
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  onExit(cb: ExitListener): () => void {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }

  /** The recorded exit of id, or undefined while it runs (or was never started). */
  async read(id: string): Promise<ExitStatus | undefined> {
    const file = path.join(this.dir, id);
    try {
      const [text, st] = await Promise.all([fs.readFile(file, 'utf8'), fs.stat(file)]);
      const code = parseExitFile(text);
      if (code === undefined) return undefined;
      return { exitCode: code, finishedAtNs: BigInt(Math.round(st.mtimeMs * 1000)) * 1000n };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /** Resolves with the exit of id once its exit file exists; rejects after timeoutMs. */
  waitExit(id: string, timeoutMs: number): Promise<ExitStatus> {
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (err: Error | undefined, st?: ExitStatus) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        off();
        if (err) reject(err);
        else resolve(st!);
      };
      const off = this.onExit((eid, st) => {
        if (eid === id) finish(undefined, st);
      });
      const timer = setTimeout(() => finish(new Error(`timed out after ${timeoutMs} ms waiting for ${id} to exit`)), timeoutMs);
      // The file may already be there (exit raced with the subscription).
      this.read(id).then(
        (st) => st && finish(undefined, st),
        (e) => finish(e as Error),
      );
    });
  }

  /** Removes the exit file of id (on container removal). */
  async forget(id: string): Promise<void> {
    this.seen.delete(id);
    await fs.rm(path.join(this.dir, id), { force: true });
  }

  private async check(id: string): Promise<void> {
    let st: ExitStatus | undefined;
    try {
      st = await this.read(id);
    } catch (e) {
      this.log.warn('cannot read exit file', { id, error: e });
      return;
    }
    if (!st) return;
    const key = Number(st.finishedAtNs / 1_000_000n);
    if (this.seen.get(id) === key) return;
    this.seen.set(id, key);
    for (const l of this.listeners) {
      try {
        l(id, st);
      } catch (e) {
        this.log.error('exit listener failed', { id, error: e });
      }
    }
  }
}
