import { promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { failedPrecondition } from '../core/errors';

/**
 * A pid lock file in the root: a second daemon on the same root refuses to start. A lock left by a
 * dead daemon (kill -9, crash) is detected by the pid no longer running corral, and replaced.
 */
export class RootLock {
  private constructor(readonly file: string) {}

  static async acquire(root: string): Promise<RootLock> {
    const file = path.join(root, 'corral.lock');
    await fs.mkdir(root, { recursive: true, mode: 0o711 });
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fh = await fs.open(file, 'wx', 0o644);
        await fh.writeFile(`${process.pid} ${processStartTime(process.pid) ?? ''}\n`);
        await fh.close();
        return new RootLock(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const holder = await readHolder(file);
      if (holder !== undefined && holder.pid !== process.pid && isAlive(holder)) {
        throw failedPrecondition(`another corral daemon (pid ${holder.pid}) is already using root ${root} (lock ${file})`);
      }
      await fs.rm(file, { force: true });
    }
    throw failedPrecondition(`could not take the lock ${file}`);
  }

  async release(): Promise<void> {
    const holder = await readHolder(this.file);
    if (holder?.pid === process.pid) await fs.rm(this.file, { force: true });
  }
}

interface Holder {
  pid: number;
  /** Start time of the process in clock ticks since boot (field 22 of /proc/<pid>/stat); guards against pid reuse. */
  start?: string;
}

async function readHolder(file: string): Promise<Holder | undefined> {
  try {
    const [pidText, start] = (await fs.readFile(file, 'utf8')).trim().split(/\s+/);
    const pid = Number(pidText);
    return Number.isInteger(pid) && pid > 0 ? { pid, start: start || undefined } : undefined;
  } catch {
    return undefined;
  }
}

export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces: fields after it start after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** True when the holder process still runs and is the same process that wrote the lock. */
function isAlive(h: Holder): boolean {
  const start = processStartTime(h.pid);
  return start !== undefined && (h.start === undefined || h.start === start);
}

/** Reads the lock of a root: the pid of the live daemon holding it, if any. */
export async function lockHolder(root: string): Promise<number | undefined> {
  const h = await readHolder(path.join(root, 'corral.lock'));
  return h && isAlive(h) ? h.pid : undefined;
}
