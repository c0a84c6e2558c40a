import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { internal } from '../core/errors';
import { spawnChild } from './spawn-child';

/**
 * Client of `corral-spawn` (src/native/corral-spawn.c, built into dist/bin): one long-lived small process
 * that forks and execs helpers for us, so the daemon never fork()s its own large address space (a few ms
 * of blocked event loop per spawn). Requests are multiplexed by id over its stdin/stdout; the frame
 * layout is documented in the C file.
 */

export interface SpawnRequest {
  file: string;
  /** Full argv, argv[0] included. */
  argv: readonly string[];
  /** "KEY=VALUE" entries: the child's whole environment. */
  env: readonly string[];
  /** "" = the spawner's cwd (the daemon's at the time it started the spawner). */
  cwd: string;
  /** SIGKILL after this many ms (0 = never). */
  timeoutMs: number;
  /** Bytes kept of stdout and of stderr each. */
  maxOutput: number;
  input?: Buffer;
}

export type SpawnOutcome = 'ok' | 'enoent' | 'exec-failed' | 'timed-out';

export interface SpawnReply {
  /** Exit status, -1 when killed by a signal. */
  code: number;
  /** Signal number that killed the child, 0 if none. */
  signal: number;
  outcome: SpawnOutcome;
  /** errno of the failed exec (or fork/pipe), 0 otherwise. */
  errno: number;
  stdout: Buffer;
  stderr: Buffer;
}

export interface SpawnHandle {
  reply: Promise<SpawnReply>;
  /** SIGKILLs the child; the reply still arrives (killed by SIGKILL). */
  cancel(): void;
}

const OUTCOMES: SpawnOutcome[] = ['ok', 'enoent', 'exec-failed', 'timed-out'];
const U32_MAX = 0xffff_ffff;

/** Splits the spawner's stdout into frames (the bytes after each u32 length). */
class FrameReader {
  private chunks: Buffer[] = [];
  private len = 0;

  push(b: Buffer, onFrame: (frame: Buffer) => void): void {
    this.chunks.push(b);
    this.len += b.length;
    while (this.len >= 4) {
      if (this.chunks[0].length < 4) this.chunks = [Buffer.concat(this.chunks, this.len)];
      const need = 4 + this.chunks[0].readUInt32LE(0);
      if (this.len < need) return;
      const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.len);
      const rest = all.subarray(need);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.len = rest.length;
      onFrame(all.subarray(4, need));
    }
  }
}

function encodeRequest(id: number, r: SpawnRequest): Buffer {
  const strs = [r.file, r.cwd];
  let size = 4 + 4 + 4 + 4 + 4 + 4 + 4; // len id timeout max argc envc stdinlen
  for (const s of strs) size += Buffer.byteLength(s) + 1;
  for (const s of r.argv) size += Buffer.byteLength(s) + 1;
  for (const s of r.env) size += Buffer.byteLength(s) + 1;
  const inLen = r.input?.length ?? 0;
  const b = Buffer.allocUnsafe(size);
  let o = b.writeUInt32LE(size - 4 + inLen, 0);
  o = b.writeUInt32LE(id, o);
  o = b.writeUInt32LE(Math.min(Math.max(0, Math.trunc(r.timeoutMs)), U32_MAX), o);
  o = b.writeUInt32LE(Math.min(Math.max(0, Math.trunc(r.maxOutput)), U32_MAX), o);
  const str = (s: string) => {
    o += b.write(s, o);
    b[o++] = 0;
  };
  str(r.file);
  str(r.cwd);
  o = b.writeUInt32LE(r.argv.length, o);
  r.argv.forEach(str);
  o = b.writeUInt32LE(r.env.length, o);
  r.env.forEach(str);
  b.writeUInt32LE(inLen, o);
  return b;
}

function decodeReply(f: Buffer): { id: number; reply: SpawnReply } {
  const outLen = f.readUInt32LE(17);
  const errAt = 21 + outLen;
  return {
    id: f.readUInt32LE(0),
    reply: {
      code: f.readInt32LE(4),
      signal: f.readInt32LE(8),
      outcome: OUTCOMES[f[12]] ?? 'exec-failed',
      errno: f.readUInt32LE(13),
      stdout: f.subarray(21, errAt),
      stderr: f.subarray(errAt + 4, errAt + 4 + f.readUInt32LE(errAt)),
    },
  };
}

interface Pending {
  resolve(r: SpawnReply): void;
  reject(e: unknown): void;
}

/** One running corral-spawn process. Use the shared one via run() unless testing. */
export class Spawner {
  private readonly child: ChildProcess;
  private readonly pending = new Map<number, Pending>();
  private readonly reader = new FrameReader();
  private nextId = 1;
  private dead = false;
  private refd = true;
  /** Replies received (0 after a failed start). */
  replies = 0;
  /** Resolves once the process is gone and every pending request has settled. */
  readonly closed: Promise<void>;

  constructor(binPath: string) {
    // spawnChild: EPIPE on stdin after a death is reported by 'close'.
    this.child = spawnChild(binPath, [], {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', CORRAL_SPAWN_PPID: String(process.pid) },
    });
    this.child.stdout!.on('data', (b: Buffer) => this.reader.push(b, (f) => this.onFrame(f)));
    this.closed = new Promise((resolve) => {
      const gone = () => {
        if (this.dead) return;
        this.dead = true;
        const err = internal('spawner died');
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
        resolve();
      };
      this.child.on('error', gone); // failed to start
      this.child.on('close', gone); // exited and its stdout is drained
    });
    this.setRef(false);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return !this.dead;
  }

  get inFlight(): number {
    return this.pending.size;
  }

  request(req: SpawnRequest): SpawnHandle {
    if (this.dead) return { reply: Promise.reject(internal('spawner died')), cancel: () => {} };
    const id = this.nextId;
    this.nextId = this.nextId >= 0x7fff_ffff ? 1 : this.nextId + 1;
    const reply = new Promise<SpawnReply>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    if (this.pending.size === 1) this.setRef(true);
    // The pipe's stream buffers what the spawner has not read yet, in order.
    const stdin = this.child.stdin!;
    stdin.write(encodeRequest(id, req));
    if (req.input && req.input.length > 0) stdin.write(req.input);
    return {
      reply,
      cancel: () => {
        if (!this.pending.has(id) || this.dead) return;
        const b = Buffer.allocUnsafe(8);
        b.writeUInt32LE(4, 0);
        b.writeUInt32LE(id, 4);
        stdin.write(b);
      },
    };
  }

  /**
   * Stops taking requests: the spawner finishes its children, answers and exits. After `graceMs` it
   * is killed (what is still running is failed with "spawner died").
   */
  async close(graceMs = 10_000): Promise<void> {
    if (this.dead) return this.closed;
    this.setRef(true);
    this.child.stdin!.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.closed;
    clearTimeout(t);
  }

  /** For tests: kills the spawner process. */
  kill(): void {
    this.child.kill('SIGKILL');
  }

  private onFrame(f: Buffer): void {
    const { id, reply } = decodeReply(f);
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.replies++;
    if (this.pending.size === 0) this.setRef(false);
    p.resolve(reply);
  }

  /** An idle spawner must not keep the process alive; one with requests in flight must. */
  private setRef(on: boolean): void {
    if (on === this.refd) return;
    this.refd = on;
    const handles = [this.child, this.child.stdin, this.child.stdout] as Array<{ ref?(): void; unref?(): void } | null>;
    for (const h of handles) (on ? h?.ref : h?.unref)?.call(h);
  }
}

/** dist/bin/corral-spawn beside the compiled sources (dist/src/sys → dist/bin), or $CORRAL_SPAWNER_BIN. */
export function defaultSpawnerPath(): string {
  return process.env.CORRAL_SPAWNER_BIN || path.resolve(__dirname, '..', '..', 'bin', 'corral-spawn');
}

let shared: Spawner | null = null;
let available: boolean | undefined;
let failedStarts = 0;

/**
 * The process-wide spawner, started on first use and restarted after a death; null when disabled
 * (CORRAL_SPAWNER=0), the binary is missing (a dev tree without `make build`), in worker threads, or
 * after three starts in a row that died without answering anything.
 */
export function sharedSpawner(): Spawner | null {
  if (shared?.alive) return shared;
  if (shared) {
    failedStarts = shared.replies > 0 ? 0 : failedStarts + 1;
    shared = null;
  }
  if (available === undefined) available = process.env.CORRAL_SPAWNER !== '0' && isMainThread && existsSync(defaultSpawnerPath());
  if (!available || failedStarts >= 3) return null;
  shared = new Spawner(defaultSpawnerPath());
  return shared;
}

/** Stops the shared spawner (daemon shutdown, tests). A later run() starts a new one. */
export async function closeSpawner(graceMs?: number): Promise<void> {
  const s = shared;
  shared = null;
  available = undefined;
  failedStarts = 0;
  if (s) await s.close(graceMs);
}
