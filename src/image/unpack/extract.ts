import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs, constants } from 'node:fs';
import * as path from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import * as zlib from 'node:zlib';
import type { Parser, ReadEntry } from 'tar';
import { CorralError, internal, invalidArgument, unimplemented } from '../../core/errors';
import { nullLogger, type Logger } from '../../log/logger';
import { run } from '../../sys/exec';
import type { Compression } from '../media-types';
import { TarModel } from './tar-model';
import { spawnChild } from '../../sys/spawn-child';

export interface ExtractOptions {
  log?: Logger;
  /** Used in error messages, e.g. "layer sha256:…". */
  what?: string;
  zstdPath?: string;
  setfattrPath?: string;
  mknodPath?: string;
}

export interface ExtractResult {
  /** sha256 of the uncompressed tar stream (the layer's diff id). */
  diffId: string;
  entries: number;
  whiteouts: number;
  opaques: number;
  skipped: number;
}

interface DirAttrs {
  abs: string;
  mtime?: Date;
}

const WH = '.wh.';
const OPAQUE = '.wh..wh..opq';

/** Escapes a path for setfattr --restore ("\ooo" octal for anything unsafe, as getfattr writes). */
function quotePath(p: string): string {
  let out = '';
  for (const b of Buffer.from(p, 'utf8')) {
    if (b <= 0x20 || b >= 0x7f || b === 0x5c) out += '\\' + b.toString(8).padStart(3, '0');
    else out += String.fromCharCode(b);
  }
  return out;
}

/** SCHILY.xattr.* records of a PAX header (node-tar parses and drops them, so we read the 'meta' text). */
function paxXattrs(meta: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of meta.split('\n')) {
    const m = /^\d+ SCHILY\.xattr\.([^=]+)=(.*)$/s.exec(line);
    if (m) out.set(m[1], m[2]);
  }
  return out;
}

/**
 * Streams one layer (compressed bytes in) into `dir`, an empty directory: decompress → hash (diff
 * id) → tar parse → create entries sequentially with ownership, modes (after chown, so setuid bits
 * survive), mtimes, symlinks (targets verbatim), hardlinks and xattrs. OCI whiteouts become overlayfs
 * whiteouts (0/0 char devices) and opaque markers (trusted.overlay.opaque=y). Hostile entries fail
 * the layer; nothing is ever written outside dir. Device nodes and FIFOs are skipped.
 */
export class LayerExtractor {
  private readonly input = new PassThrough({ highWaterMark: 1024 * 1024 });
  private readonly hash = createHash('sha256');
  // tar is loaded with the first layer to unpack, not with the daemon.
  private readonly parser: Parser = new (require('tar') as typeof import('tar')).Parser({ strict: true });
  private readonly model: TarModel;
  private readonly log: Logger;
  private readonly what: string;
  private chain: Promise<void> = Promise.resolve();
  private failure?: Error;
  private zstd?: ChildProcess;
  private readonly done: Promise<void>;
  private readonly dirs: DirAttrs[] = [];
  private readonly whiteouts: string[] = [];
  private readonly opaques: string[] = [];
  private readonly xattrs: { rel: string; attrs: Map<string, string> }[] = [];
  private pendingXattrs?: Map<string, string>;
  private entries = 0;
  private skipped = 0;

  constructor(
    private readonly dir: string,
    compression: Compression,
    private readonly opts: ExtractOptions = {},
  ) {
    this.log = opts.log ?? nullLogger;
    this.what = opts.what ?? 'layer';
    this.model = new TarModel(this.what);
    const tarStream = this.decompressor(compression);
    tarStream.on('data', (c: Buffer) => this.hash.update(c));
    tarStream.on('error', (e) => this.fail(e));
    this.parser.on('meta', (meta: string) => {
      const x = paxXattrs(meta);
      if (x.size > 0) this.pendingXattrs = x;
    });
    this.parser.on('entry', (entry: ReadEntry) => {
      const xattrs = this.pendingXattrs;
      this.pendingXattrs = undefined;
      this.chain = this.chain.then(async () => {
        if (this.failure) {
          entry.resume();
          return;
        }
        try {
          await this.onEntry(entry, xattrs);
        } catch (e) {
          entry.resume();
          this.fail(e as Error);
        }
      });
    });
    this.parser.on('error', (e: Error) => this.fail(invalidArgument(`${this.what}: bad tar stream: ${e.message}`, e)));
    this.parser.on('warn', (code: string, msg: string | Error) => this.log.debug('tar warning', { layer: this.what, code, msg: String(msg) }));
    this.done = new Promise<void>((resolve, reject) => {
      this.parser.on('end', () => resolve());
      this.parser.on('close', () => resolve());
      this.errorHook = reject;
    });
    this.done.catch(() => {});
    tarStream.pipe(this.parser as unknown as Writable);
  }

  private errorHook?: (e: Error) => void;

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    this.errorHook?.(e);
    this.input.destroy();
    this.zstd?.kill('SIGKILL');
  }

  private decompressor(c: Compression): Readable {
    if (c === 'none') return this.input;
    if (c === 'gzip') {
      const gunzip = zlib.createGunzip({ chunkSize: 256 * 1024 });
      this.input.on('error', (e) => gunzip.destroy(e));
      this.input.pipe(gunzip);
      return gunzip;
    }
    const child = spawnChild(this.opts.zstdPath ?? 'zstd', ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.zstd = child;
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr = (stderr + b.toString()).slice(-2000)));
    child.on('error', (e: NodeJS.ErrnoException) =>
      this.fail(e.code === 'ENOENT' ? unimplemented('zstd-compressed layers need the zstd program (Debian package zstd)') : internal(`zstd: ${e.message}`, e)),
    );
    child.on('close', (code, sig) => {
      if (code !== 0 && !this.failure) this.fail(invalidArgument(`${this.what}: zstd -d failed (${sig ?? code}): ${stderr.trim()}`));
    });
    this.input.pipe(child.stdin!);
    return child.stdout!;
  }

  /** Feeds compressed bytes; resolves when there is room for more. */
  async write(chunk: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    if (!this.input.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onDrain = () => {
          cleanup();
          resolve();
        };
        const onFail = () => {
          cleanup();
          reject(this.failure);
        };
        const cleanup = () => {
          this.input.off('drain', onDrain);
          this.input.off('close', onFail);
        };
        this.input.on('drain', onDrain);
        this.input.on('close', onFail);
      });
    }
    if (this.failure) throw this.failure;
  }

  /** Ends the input and waits for every entry, then applies whiteouts, xattrs and directory mtimes. */
  async finish(): Promise<ExtractResult> {
    this.input.end();
    await this.done;
    await this.chain;
    if (this.failure) throw this.failure;
    const diffId = `sha256:${this.hash.digest('hex')}`;
    await this.applyWhiteouts();
    await this.applyXattrs();
    for (const d of this.dirs.reverse()) {
      if (d.mtime) await fs.lutimes(d.abs, d.mtime, d.mtime);
    }
    return { diffId, entries: this.entries, whiteouts: this.whiteouts.length, opaques: this.opaques.length, skipped: this.skipped };
  }

  abort(e: Error = internal('aborted')): void {
    this.fail(e);
  }

  private abs(rel: string): string {
    return rel === '' ? this.dir : path.join(this.dir, rel);
  }

  private async mkdirParents(rel: string, name: string): Promise<void> {
    for (const p of this.model.parentsToCreate(rel, name)) {
      await fs.mkdir(this.abs(p), { mode: 0o755 });
      this.model.set(p, 'dir');
    }
  }

  private async onEntry(entry: ReadEntry, xattrs: Map<string, string> | undefined): Promise<void> {
    const name = entry.path;
    const rel = this.model.normalize(name);
    this.entries++;
    const base = path.posix.basename(rel);
    if (base.startsWith(WH)) {
      entry.resume();
      await this.mkdirParents(rel, name);
      const parent = path.posix.dirname(rel) === '.' ? '' : path.posix.dirname(rel);
      if (base === OPAQUE) this.opaques.push(parent);
      else {
        const target = parent ? `${parent}/${base.slice(WH.length)}` : base.slice(WH.length);
        if (!base.slice(WH.length) || base.slice(WH.length) === '.' || base.slice(WH.length) === '..') throw this.model.hostile(name, 'bad whiteout name');
        this.whiteouts.push(target);
      }
      return;
    }
    if (rel === '') {
      // The layer's root directory itself: only its attributes.
      if (entry.type !== 'Directory') throw this.model.hostile(name, 'the root may only be a directory');
      entry.resume();
      await this.setOwnerMode(this.dir, entry, false);
      this.dirs.push({ abs: this.dir, mtime: entry.mtime });
      return;
    }
    await this.mkdirParents(rel, name);
    const abs = this.abs(rel);
    const existing = this.model.get(rel);
    if (existing !== undefined && !(existing === 'dir' && entry.type === 'Directory')) {
      await fs.rm(abs, { recursive: true, force: true });
      this.model.removeTree(rel);
    }
    switch (entry.type) {
      case 'File':
      case 'OldFile':
      case 'ContiguousFile':
        await this.writeFile(abs, entry);
        this.model.set(rel, 'file');
        break;
      case 'Directory':
      case 'GNUDumpDir':
        entry.resume();
        if (existing !== 'dir') await fs.mkdir(abs, { mode: 0o700 });
        this.model.set(rel, 'dir');
        await this.setOwnerMode(abs, entry, false);
        this.dirs.push({ abs, mtime: entry.mtime });
        break;
      case 'SymbolicLink':
        entry.resume();
        if (!entry.linkpath) throw this.model.hostile(name, 'symlink without target');
        // The target is data, resolved inside the container at run time: kept verbatim, never followed here.
        await fs.symlink(entry.linkpath, abs);
        this.model.set(rel, 'symlink');
        await fs.lchown(abs, entry.uid ?? 0, entry.gid ?? 0);
        if (entry.mtime) await fs.lutimes(abs, entry.mtime, entry.mtime);
        break;
      case 'Link': {
        entry.resume();
        const target = this.model.normalize(entry.linkpath ?? '', 'hardlink target');
        const kind = target ? this.model.get(target) : undefined;
        if (kind === undefined) throw this.model.hostile(name, `hardlink target "${entry.linkpath}" is not an earlier entry of this layer`);
        if (kind === 'dir') throw this.model.hostile(name, 'hardlink to a directory');
        await fs.link(this.abs(target), abs);
        this.model.set(rel, kind);
        break;
      }
      default:
        // CharacterDevice, BlockDevice, FIFO and unknown types: never created from image content.
        entry.resume();
        this.skipped++;
        this.log.debug('skipping tar entry', { layer: this.what, path: rel, type: entry.type });
        return;
    }
    if (xattrs && xattrs.size > 0) this.xattrs.push({ rel, attrs: xattrs });
  }

  private async setOwnerMode(abs: string, entry: ReadEntry, symlink: boolean): Promise<void> {
    if (symlink) return;
    await fs.chown(abs, entry.uid ?? 0, entry.gid ?? 0);
    await fs.chmod(abs, (entry.mode ?? 0o755) & 0o7777);
  }

  private async writeFile(abs: string, entry: ReadEntry): Promise<void> {
    // O_EXCL|O_NOFOLLOW: the path was just cleared; never open something that appeared meanwhile.
    const fh = await fs.open(abs, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      for await (const chunk of entry as unknown as AsyncIterable<Buffer>) {
        let off = 0;
        while (off < chunk.length) {
          const { bytesWritten } = await fh.write(chunk, off, chunk.length - off);
          off += bytesWritten;
        }
      }
      await fh.chown(entry.uid ?? 0, entry.gid ?? 0);
      // chmod after chown: chown clears setuid/setgid bits.
      await fh.chmod((entry.mode ?? 0o644) & 0o7777);
      if (entry.mtime) await fh.utimes(entry.mtime, entry.mtime);
    } finally {
      await fh.close();
    }
  }

  private async applyWhiteouts(): Promise<void> {
    const mknod = this.opts.mknodPath ?? 'mknod';
    for (const rel of this.whiteouts) {
      const abs = this.abs(rel);
      if (this.model.get(rel) !== undefined) {
        await fs.rm(abs, { recursive: true, force: true });
        this.model.removeTree(rel);
      }
      const parent = path.dirname(abs);
      const st = await fs.lstat(parent);
      await run(mknod, ['-m', '0', abs, 'c', '0', '0'], { timeoutMs: 30_000 });
      this.model.set(rel, 'other');
      await fs.lutimes(parent, st.atime, st.mtime);
    }
  }

  private async applyXattrs(): Promise<void> {
    let dump = '';
    for (const { rel, attrs } of this.xattrs) {
      const lines: string[] = [];
      for (const [k, v] of attrs) {
        if (v.includes('\ufffd')) {
          this.log.warn('dropping binary xattr node-tar decoded lossily', { layer: this.what, path: rel, xattr: k });
          continue;
        }
        lines.push(`${k}=0x${Buffer.from(v, 'utf8').toString('hex')}`);
      }
      if (lines.length) dump += `# file: ${quotePath(rel)}\n${lines.join('\n')}\n\n`;
    }
    for (const rel of this.opaques) {
      dump += `# file: ${quotePath(rel === '' ? '.' : rel)}\ntrusted.overlay.opaque=0x79\n\n`;
    }
    if (!dump) return;
    try {
      await run(this.opts.setfattrPath ?? 'setfattr', ['-h', '--restore=-'], { cwd: this.dir, input: dump, timeoutMs: 120_000 });
    } catch (e) {
      if (e instanceof CorralError && e.code === 'NotFound') {
        throw unimplemented('layers with xattrs or opaque directories need setfattr (Debian package attr)');
      }
      throw e;
    }
  }
}
