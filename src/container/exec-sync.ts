import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { constants as osConstants } from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { canceled, deadlineExceeded, internal } from '../core/errors';
import type { OciRuntime } from '../runtime/runc';
import type { OciProcess } from './spec';
import type { ExecSyncResult } from './types';
import { spawnChild } from '../sys/spawn-child';

/** kubelet's bound on exec output (per stream). */
export const MAX_EXEC_OUTPUT = 16 * 1024 * 1024;

/**
 * Collects a stream into at most `max` bytes; the rest is read and dropped, so the writer never blocks
 * and memory stays bounded.
 */
export class BoundedSink {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  total = 0;
  constructor(private readonly max: number) {}

  push(b: Buffer): void {
    this.total += b.length;
    if (this.kept >= this.max) return;
    const take = b.length <= this.max - this.kept ? b : b.subarray(0, this.max - this.kept);
    this.chunks.push(take);
    this.kept += take.length;
  }

  get truncated(): boolean {
    return this.total > this.kept;
  }

  buffer(): Buffer {
    return Buffer.concat(this.chunks, this.kept);
  }
}

/** The process spec of an exec: the container's own process (user, env, cwd, caps, ...) with new args, no tty. */
export function execProcess(base: OciProcess, cmd: readonly string[]): OciProcess {
  const p: OciProcess = { ...structuredClone(base), args: [...cmd], terminal: false };
  delete p.oomScoreAdj;
  return p;
}

export interface ExecSyncOptions {
  runtime: OciRuntime;
  id: string;
  /** Directory for the temporary process and pid files (the bundle). */
  workDir: string;
  process: OciProcess;
  /** 0 = no timeout. */
  timeoutMs: number;
  signal?: AbortSignal;
  maxOutput?: number;
  /** How long to wait for output pipes to close after runc exited (background children may hold them). */
  drainMs?: number;
}

/**
 * Runs `runc exec --process` as a child of the daemon with stdout/stderr piped and bounded. On timeout the
 * exec'd process (pid from runc's pid file) and runc are killed and DeadlineExceeded is thrown.
 */
export async function execSync(o: ExecSyncOptions): Promise<ExecSyncResult> {
  const tag = randomBytes(6).toString('hex');
  const procFile = path.join(o.workDir, `.exec-${tag}.json`);
  const pidFile = path.join(o.workDir, `.exec-${tag}.pid`);
  await fs.writeFile(procFile, JSON.stringify(o.process), { mode: 0o600 });
  const max = o.maxOutput ?? MAX_EXEC_OUTPUT;
  try {
    return await new Promise<ExecSyncResult>((resolve, reject) => {
      const child = spawnChild(o.runtime.path, [`--root=${o.runtime.root}`, 'exec', '--process', procFile, '--pid-file', pidFile, o.id], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const out = new BoundedSink(max);
      const err = new BoundedSink(max);
      (child.stdout as Readable).on('data', (b: Buffer) => out.push(b));
      (child.stderr as Readable).on('data', (b: Buffer) => err.push(b));
      let ended: 'timeout' | 'abort' | undefined;
      let timer: NodeJS.Timeout | undefined;
      let drainTimer: NodeJS.Timeout | undefined;
      const killAll = async () => {
        try {
          const pid = Number((await fs.readFile(pidFile, 'utf8')).trim());
          if (pid > 0) process.kill(pid, 'SIGKILL');
        } catch {
          /* not started yet or already gone */
        }
        child.kill('SIGKILL');
      };
      const stop = (why: 'timeout' | 'abort') => {
        if (ended) return;
        ended = why;
        void killAll();
      };
      if (o.timeoutMs > 0) timer = setTimeout(() => stop('timeout'), o.timeoutMs);
      const onAbort = () => stop('abort');
      o.signal?.addEventListener('abort', onAbort, { once: true });
      let done = false;
      const finish = (code: number | null, sig: NodeJS.Signals | null) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        clearTimeout(drainTimer);
        o.signal?.removeEventListener('abort', onAbort);
        if (ended === 'timeout') return reject(deadlineExceeded(`command timed out after ${o.timeoutMs} ms`));
        if (ended === 'abort') return reject(canceled('exec cancelled'));
        const exitCode = code ?? (sig ? 128 + (osConstants.signals[sig] ?? 9) : 255);
        resolve({ stdout: out.buffer(), stderr: err.buffer(), exitCode });
      };
      child.once('error', (e) => {
        clearTimeout(timer);
        o.signal?.removeEventListener('abort', onAbort);
        reject(internal(`${o.runtime.path} exec: ${e.message}`, e));
      });
      child.once('exit', (code, sig) => {
        // Background children of the exec'd command may keep the pipes open: give them a moment, then stop reading.
        drainTimer = setTimeout(() => {
          child.stdout?.destroy();
          child.stderr?.destroy();
          finish(code, sig);
        }, o.drainMs ?? 2000);
        child.once('close', () => finish(code, sig));
      });
    });
  } finally {
    await fs.rm(procFile, { force: true });
    await fs.rm(pidFile, { force: true });
  }
}
