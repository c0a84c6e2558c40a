import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { invalidArgument } from '../core/errors';
import { fsyncDir, readJson, writeJsonAtomic } from '../store/atomic';
import { run } from '../sys/exec';

/** OCI chain ids: chain[0] = diff[0]; chain[i] = sha256(chain[i-1] + " " + diff[i]). */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const d of diffIds) {
    if (out.length === 0) out.push(d);
    else out.push(`sha256:${createHash('sha256').update(`${out[out.length - 1]} ${d}`).digest('hex')}`);
  }
  return out;
}

export interface Usage {
  bytes: number;
  inodes: number;
}

export interface PreparedSnapshot {
  /** The temp directory (renamed on commit). */
  tmp: string;
  /** Where the layer's files go. */
  fs: string;
}

function hexOf(chainId: string): string {
  const m = /^sha256:([a-f0-9]{64})$/.exec(chainId);
  if (!m) throw invalidArgument(`bad chain id "${chainId}"`);
  return m[1];
}

/** Disk use of a tree: allocated bytes and distinct inodes (hardlinks counted once). */
export async function treeUsage(root: string): Promise<Usage> {
  const seen = new Set<string>();
  let bytes = 0;
  const stack = [root];
  while (stack.length > 0) {
    const p = stack.pop()!;
    const st = await fs.lstat(p, { bigint: true }).catch(() => undefined);
    if (!st) continue;
    const key = `${st.dev}:${st.ino}`;
    if (seen.has(key)) continue;
    seen.add(key);
    bytes += Number(st.blocks) * 512;
    if (st.isDirectory()) {
      for (const name of await fs.readdir(p)) stack.push(path.join(p, name));
    }
  }
  return { bytes, inodes: seen.size };
}

/**
 * Group commit for `sync -f` (syncfs of the filesystem holding dir): a caller whose writes are done
 * joins the next sync that has not started yet, so layers finishing together cost one syncfs (and
 * one fork), not one each.
 */
export class FsSyncer {
  private inFlight?: Promise<void>;
  private queued?: Promise<void>;
  constructor(
    dir: string,
    private readonly runSync: () => Promise<unknown> = () => run('sync', ['-f', dir], { timeoutMs: 300_000 }),
  ) {}

  sync(): Promise<void> {
    if (this.queued) return this.queued;
    if (this.inFlight) {
      // The running sync may have started before our writes: wait for it, then share the next.
      this.queued = this.inFlight
        .catch(() => {})
        .then(() => {
          this.queued = undefined;
          return this.launch();
        });
      return this.queued;
    }
    return this.launch();
  }

  private launch(): Promise<void> {
    const p = this.runSync().then(() => undefined);
    this.inFlight = p;
    void p.catch(() => {}).finally(() => {
      if (this.inFlight === p) this.inFlight = undefined;
    });
    return p;
  }
}

/**
 * Committed layer directories under <root>/snapshots: <chain-hex>/fs (the layer's files, an
 * overlayfs lowerdir) and <chain-hex>/usage.json. A layer is unpacked into .tmp-* and renamed into
 * place when complete, so a crash never leaves a half layer under a chain id; .tmp-* are removed at start.
 */
export class SnapshotStore {
  private readonly syncer: FsSyncer;
  constructor(readonly root: string) {
    this.syncer = new FsSyncer(root);
  }

  /** Creates the root and removes half-unpacked (or half-deleted) .tmp-* dirs; returns the paths it removed. */
  async init(): Promise<string[]> {
    await fs.mkdir(this.root, { recursive: true, mode: 0o700 });
    const removed: string[] = [];
    for (const name of await fs.readdir(this.root)) {
      if (!name.startsWith('.tmp-')) continue;
      const p = path.join(this.root, name);
      await fs.rm(p, { recursive: true, force: true });
      removed.push(p);
    }
    return removed;
  }

  dir(chainId: string): string {
    return path.join(this.root, hexOf(chainId));
  }

  fsDir(chainId: string): string {
    return path.join(this.dir(chainId), 'fs');
  }

  async has(chainId: string): Promise<boolean> {
    try {
      return (await fs.stat(this.fsDir(chainId))).isDirectory();
    } catch {
      return false;
    }
  }

  async prepare(): Promise<PreparedSnapshot> {
    const tmp = path.join(this.root, `.tmp-${randomBytes(8).toString('hex')}`);
    await fs.mkdir(tmp, { mode: 0o700 });
    const f = path.join(tmp, 'fs');
    await fs.mkdir(f, { mode: 0o755 });
    return { tmp, fs: f };
  }

  /** Flushes the layer to disk, records its usage and renames it into place. */
  async commit(p: PreparedSnapshot, chainId: string): Promise<void> {
    const usage = await treeUsage(p.fs);
    await writeJsonAtomic(path.join(p.tmp, 'usage.json'), usage);
    // One syncfs for the whole layer (shared with layers finishing at the same time) instead of an fsync per file.
    await this.syncer.sync();
    try {
      await fs.rename(p.tmp, this.dir(chainId));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // Someone committed the same chain meanwhile: theirs is as good as ours.
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
      await this.discard(p);
      return;
    }
    await fsyncDir(this.root);
  }

  async discard(p: PreparedSnapshot): Promise<void> {
    await fs.rm(p.tmp, { recursive: true, force: true });
  }

  async remove(chainId: string): Promise<void> {
    // Rename first so a crash mid-delete leaves a .tmp- dir (cleaned at start), never a half layer.
    const tmp = path.join(this.root, `.tmp-rm-${randomBytes(6).toString('hex')}`);
    try {
      await fs.rename(this.dir(chainId), tmp);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    await fs.rm(tmp, { recursive: true, force: true });
  }

  async list(): Promise<string[]> {
    return (await fs.readdir(this.root)).filter((n) => /^[a-f0-9]{64}$/.test(n)).map((n) => `sha256:${n}`);
  }

  async usage(chainId: string): Promise<Usage> {
    const u = await readJson<Usage>(path.join(this.dir(chainId), 'usage.json')).catch(() => undefined);
    return u ?? treeUsage(this.fsDir(chainId));
  }
}
