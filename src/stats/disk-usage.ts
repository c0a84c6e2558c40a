import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { deadlineExceeded, errorMessage } from '../core/errors';
import { nowNs } from '../core/ids';
import { SingleFlight } from '../core/single-flight';
import type { Logger } from '../log/logger';
import { nullLogger } from '../log/logger';
import type { DiskUsageSample } from './types';

export interface WalkOptions {
  /** Parallel lstat/readdir calls. Default 16. */
  concurrency?: number;
  /** Give up (DeadlineExceeded) after this many ms. Default 5000. */
  deadlineMs?: number;
  signal?: AbortSignal;
}

/**
 * Bytes (allocated blocks × 512, like du) and inodes used under a directory, counting the directory itself.
 * Walks with lstat (never follows symlinks) and bounded concurrency; a hard-linked inode is counted once.
 * Entries that vanish during the walk are skipped. Undefined when `dir` does not exist.
 */
export async function measureDiskUsage(dir: string, opts: WalkOptions = {}): Promise<{ usedBytes: bigint; inodesUsed: bigint } | undefined> {
  const concurrency = Math.max(1, opts.concurrency ?? 16);
  const deadline = Date.now() + (opts.deadlineMs ?? 5000);
  const seen = new Set<string>();
  let usedBytes = 0n;
  let inodesUsed = 0n;
  let rootMissing = false;

  const visit = async (p: string, isRoot: boolean): Promise<string[]> => {
    if (Date.now() > deadline) throw deadlineExceeded(`disk usage of ${dir} took longer than ${opts.deadlineMs ?? 5000} ms`);
    if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted');
    let st;
    try {
      st = await fs.lstat(p, { bigint: true });
    } catch (e) {
      if (isRoot) rootMissing = true;
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    if (st.nlink > 1n && !st.isDirectory()) {
      const key = `${st.dev}:${st.ino}`;
      if (seen.has(key)) return [];
      seen.add(key);
    }
    usedBytes += st.blocks * 512n;
    inodesUsed += 1n;
    if (!st.isDirectory()) return [];
    try {
      return (await fs.readdir(p)).map((n) => path.join(p, n));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
  };

  // A work list drained by at most `concurrency` workers: memory stays proportional to the widest directory,
  // not to the whole tree, and no recursion depth limit applies.
  await new Promise<void>((resolve, reject) => {
    const queue: { p: string; root: boolean }[] = [{ p: dir, root: true }];
    let active = 0;
    let failed = false;
    const pump = () => {
      if (failed) return;
      while (active < concurrency && queue.length > 0) {
        const { p, root } = queue.pop()!;
        active++;
        visit(p, root).then(
          (children) => {
            active--;
            for (const c of children) queue.push({ p: c, root: false });
            pump();
          },
          (e) => {
            failed = true;
            reject(e);
          },
        );
      }
      if (active === 0 && queue.length === 0) resolve();
    };
    pump();
  });
  if (rootMissing) return undefined;
  return { usedBytes, inodesUsed };
}

export interface DiskUsageCacheOptions extends WalkOptions {
  /** How long a measurement is served from cache. Default 10 s. */
  ttlMs?: number;
  log?: Logger;
  /** Clock for tests. */
  now?: () => number;
}

interface CacheEntry {
  sample: DiskUsageSample;
  at: number;
}

/**
 * Disk usage per directory with a short-lived cache, so ListContainerStats over many containers walks each
 * upper dir at most once per TTL; concurrent requests for the same dir share one walk. Never fails: when a
 * walk errors or passes its deadline, the last known value (or undefined) is returned.
 */
export class DiskUsageCache {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly flight = new SingleFlight<DiskUsageSample | undefined>();
  private readonly now: () => number;
  private readonly log: Logger;

  constructor(private readonly opts: DiskUsageCacheOptions = {}) {
    this.now = opts.now ?? Date.now;
    this.log = opts.log ?? nullLogger;
  }

  async usage(dir: string): Promise<DiskUsageSample | undefined> {
    const hit = this.cache.get(dir);
    if (hit && this.now() - hit.at < (this.opts.ttlMs ?? 10_000)) return hit.sample;
    return this.flight.do(dir, async () => {
      try {
        const u = await measureDiskUsage(dir, this.opts);
        if (!u) {
          this.cache.delete(dir);
          return undefined;
        }
        const sample = { timestampNs: nowNs(), ...u };
        this.cache.set(dir, { sample, at: this.now() });
        return sample;
      } catch (e) {
        this.log.debug('disk usage walk failed', { dir, error: errorMessage(e) });
        return hit?.sample;
      }
    });
  }

  /** Forgets every dir not in `live`. */
  retain(live: Iterable<string>): void {
    const keep = new Set(live);
    for (const d of this.cache.keys()) if (!keep.has(d)) this.cache.delete(d);
  }

  delete(dir: string): void {
    this.cache.delete(dir);
  }

  get size(): number {
    return this.cache.size;
  }
}
