import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorMessage } from '../core/errors';
import type { Logger } from '../log/logger';
import { mountPoints, unmountAll } from '../sys/mount';

/** What the sweep needs from the rest of the sandbox area. */
export interface OrphanSweepDeps {
  runRoot: string;
  log: Logger;
  /** Sandbox ids with a record (or an unreadable record file): never touched. */
  known: ReadonlySet<string>;
  /** CNI result ids cached on disk. */
  cniIds: () => Promise<string[]>;
  /** CNI DEL from the cached result (removes the cache entry on success). */
  cniTearDown: (id: string) => Promise<void>;
  /** Unmounts and releases a pause image rootfs under a sandbox dir. */
  releasePause?: (id: string, sandboxDir: string) => Promise<void>;
}

const ID = /^[0-9a-f]{64}$/;

async function idsIn(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir)).filter((n) => ID.test(n));
  } catch {
    return [];
  }
}

/** Mount points at or under dir, deepest first. */
async function mountsUnder(dir: string): Promise<string[]> {
  return [...(await mountPoints())].filter((p) => p === dir || p.startsWith(dir + '/')).sort((a, b) => b.length - a.length);
}

/**
 * Removes what a sandbox left behind without a record (a crash before its record was written, or after
 * it was removed): run dirs and their mounts, pinned namespace files, cached CNI attachments (DEL).
 * Returns one line per repair, for the start-up log. A failed CNI DEL keeps its cache entry, so the
 * next start-up tries again.
 */
export async function sweepOrphans(d: OrphanSweepDeps): Promise<string[]> {
  const repaired: string[] = [];
  const orphan = (id: string) => !d.known.has(id);
  for (const id of (await d.cniIds()).filter(orphan)) {
    try {
      await d.cniTearDown(id);
      repaired.push(`CNI DEL of orphaned attachment ${id}`);
    } catch (e) {
      d.log.error('CNI DEL of an orphaned attachment failed; will retry at the next start', { sandbox: id, error: errorMessage(e) });
    }
  }
  for (const kind of ['netns', 'ipcns', 'utsns']) {
    for (const id of (await idsIn(path.join(d.runRoot, kind))).filter(orphan)) {
      const p = path.join(d.runRoot, kind, id);
      await unmountAll([p]);
      await fs.rm(p, { force: true });
      repaired.push(`orphaned ${kind} ${id}`);
    }
  }
  for (const id of (await idsIn(path.join(d.runRoot, 'sandboxes'))).filter(orphan)) {
    const dir = path.join(d.runRoot, 'sandboxes', id);
    await d.releasePause?.(id, dir);
    const mounts = await mountsUnder(dir);
    if (mounts.length > 0) await unmountAll(mounts);
    await fs.rm(dir, { recursive: true, force: true });
    repaired.push(`orphaned sandbox dir ${id}${mounts.length ? ` (${mounts.length} mounts)` : ''}`);
  }
  return repaired;
}
