import type { ChildProcess, StdioOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { constants as osConstants } from 'node:os';
import type { Readable } from 'node:stream';
import { spawnChild } from '../../sys/spawn-child';

/**
 * The `corral-io` helper (src/native/corral-io.c, built by the Makefile into dist/bin): the relays Node
 * cannot do itself (SOCK_SEQPACKET, SCM_RIGHTS, setns). One short-lived process per session.
 */

/** dist/bin/corral-io beside the compiled sources, or $CORRAL_IO. */
export function defaultHelperPath(): string {
  return process.env.CORRAL_IO || path.resolve(__dirname, '../../../bin/corral-io');
}

export function helperAvailable(p: string = defaultHelperPath()): boolean {
  return existsSync(p);
}

export interface Helper {
  child: ChildProcess;
  /** Resolves with the exit code (128+n for a signal) once the process exited. */
  exited: Promise<number>;
  /** The last few KiB the helper (and runc) wrote on stderr, when stderr is captured. */
  stderrTail(): string;
}

const TAIL = 4096;

/**
 * Spawns the helper. It dies with the daemon (PR_SET_PDEATHSIG; CORRAL_IO_PPID closes the race with a
 * daemon that died before the prctl). `captureStderr`: fd 2 is a pipe read here (tail kept for errors).
 */
export function spawnHelper(helperPath: string, args: string[], stdio: StdioOptions, opts: { captureStderr?: boolean } = {}): Helper {
  const child = spawnChild(helperPath, args, {
    stdio,
    env: { PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', CORRAL_IO_PPID: String(process.pid) },
  });
  let tail = Buffer.alloc(0);
  if (opts.captureStderr && child.stderr) {
    // Buffers, not setEncoding: the same stream may be piped on to the client unchanged.
    child.stderr.on('data', (b: Buffer) => {
      tail = Buffer.concat([tail, b]);
      if (tail.length > TAIL) tail = tail.subarray(tail.length - TAIL);
    });
  }
  const exited = new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, sig) => resolve(code ?? 128 + (sig ? (osConstants.signals[sig] ?? 9) : 0)));
  });
  exited.catch(() => undefined);
  return { child, exited, stderrTail: () => tail.toString('utf8').trim() };
}

/** Resolves when a readable has ended or closed (or at once when absent). */
export function ended(r: Readable | null | undefined): Promise<void> {
  if (!r || r.readableEnded || r.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    r.once('end', () => resolve());
    r.once('close', () => resolve());
  });
}

/** Kills a child that is still running. */
export function killChild(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.exitCode === null && child.signalCode === null) child.kill(sig);
}
