import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, constants } from 'node:fs';
import * as path from 'node:path';
import { invalidArgument, notFound, unavailable } from '../../core/errors';
import { fsyncDir } from '../../store/atomic';

const DIGEST = /^sha256:([a-f0-9]{64})$/;

function hexOf(digest: string): string {
  const m = DIGEST.exec(digest);
  if (!m) throw invalidArgument(`unsupported digest "${digest}"`);
  return m[1];
}

/** A blob being written: hashed and counted as it goes, committed only when size and digest match. */
export class Ingest {
  private readonly hash = createHash('sha256');
  private written = 0;
  private closed = false;

  constructor(
    private readonly fh: fs.FileHandle,
    private readonly tmp: string,
    private readonly target: string,
    readonly digest: string,
    readonly size: number,
    /** false when the caller verifies the digest of the same bytes itself (saves a hash pass). */
    private readonly verify = true,
  ) {}

  async write(chunk: Buffer): Promise<void> {
    this.written += chunk.length;
    if (this.written > this.size) throw unavailable(`RegistryUnavailable: blob ${this.digest} exceeds its size ${this.size}`);
    if (this.verify) this.hash.update(chunk);
    let off = 0;
    while (off < chunk.length) off += (await this.fh.write(chunk, off, chunk.length - off)).bytesWritten;
  }

  /** Verifies, fsyncs, makes read-only and renames into place. */
  async commit(): Promise<void> {
    const got = this.verify ? `sha256:${this.hash.digest('hex')}` : this.digest;
    if (this.written !== this.size || got !== this.digest) {
      await this.abort();
      throw unavailable(`RegistryUnavailable: blob ${this.digest}: got ${this.written} bytes hashing to ${got}, expected ${this.size} bytes`);
    }
    await this.fh.sync();
    await this.fh.chmod(0o444);
    await this.fh.close();
    this.closed = true;
    await fs.rename(this.tmp, this.target);
    await fsyncDir(path.dirname(this.target));
  }

  async abort(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      await this.fh.close().catch(() => {});
    }
    await fs.rm(this.tmp, { force: true });
  }
}

/**
 * Content-addressed blobs under <root>/content: blobs/sha256/<hex> (read-only, committed by rename)
 * and ingest/ (in-progress downloads, removed at start).
 */
export class ContentStore {
  readonly blobsDir: string;
  readonly ingestDir: string;

  constructor(readonly root: string) {
    this.blobsDir = path.join(root, 'blobs', 'sha256');
    this.ingestDir = path.join(root, 'ingest');
  }

  /** Creates the layout and removes interrupted ingests; returns the paths it removed. */
  async init(): Promise<string[]> {
    await fs.mkdir(this.ingestDir, { recursive: true, mode: 0o700 });
    await fs.mkdir(this.blobsDir, { recursive: true, mode: 0o755 });
    const removed: string[] = [];
    for (const name of await fs.readdir(this.ingestDir)) {
      const p = path.join(this.ingestDir, name);
      await fs.rm(p, { recursive: true, force: true });
      removed.push(p);
    }
    return removed;
  }

  path(digest: string): string {
    return path.join(this.blobsDir, hexOf(digest));
  }

  async has(digest: string, size?: number): Promise<boolean> {
    try {
      const st = await fs.stat(this.path(digest));
      return size === undefined || st.size === size;
    } catch {
      return false;
    }
  }

  async read(digest: string): Promise<Buffer> {
    try {
      return await fs.readFile(this.path(digest));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(`blob ${digest} not in the content store`);
      throw e;
    }
  }

  /** Starts writing a blob. verify=false only when the caller checks the digest of exactly these bytes before commit(). */
  async ingest(digest: string, size: number, verify = true): Promise<Ingest> {
    const target = this.path(digest);
    const tmp = path.join(this.ingestDir, `${hexOf(digest)}.${randomBytes(6).toString('hex')}`);
    const fh = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    return new Ingest(fh, tmp, target, digest, size, verify);
  }

  /** Stores a small blob already in memory (manifests, configs). */
  async put(digest: string, data: Buffer): Promise<void> {
    if (await this.has(digest, data.length)) return;
    const ing = await this.ingest(digest, data.length);
    try {
      await ing.write(data);
    } catch (e) {
      await ing.abort();
      throw e;
    }
    await ing.commit();
  }

  async delete(digest: string): Promise<void> {
    await fs.rm(this.path(digest), { force: true });
  }

  async list(): Promise<{ digest: string; size: number }[]> {
    const out: { digest: string; size: number }[] = [];
    for (const name of await fs.readdir(this.blobsDir)) {
      if (!/^[a-f0-9]{64}$/.test(name)) continue;
      const st = await fs.stat(path.join(this.blobsDir, name)).catch(() => undefined);
      if (st) out.push({ digest: `sha256:${name}`, size: st.size });
    }
    return out;
  }
}
