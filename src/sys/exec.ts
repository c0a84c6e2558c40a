import { spawn, type SpawnOptions } from 'node:child_process';
import { deadlineExceeded, internal, notFound } from '../core/errors';

export interface RunOptions {
  /** Kill the child (SIGKILL) and fail with DeadlineExceeded after this many ms. Default 60 s. */
  timeoutMs?: number;
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  signal?: AbortSignal;
  /** Cap on captured stdout/stderr bytes each; the rest is dropped. Default 16 MiB. */
  maxOutput?: number;
  /** Do not throw on a non-zero exit; return it. */
  allowFailure?: boolean;
  /** Extra stdio entries after 0,1,2 (e.g. pipes for conmon's sync fds). */
  extraStdio?: SpawnOptions['stdio'];
}

export interface RunResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a program with an argv array (never a shell), with a deadline. This is the one place that
 * spawns short-lived helpers (runc, mount, CNI plugins, ip, ...).
 */
export function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const max = opts.maxOutput ?? 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args as string[], {
      env: opts.env ?? process.env,
      cwd: opts.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let outLen = 0;
    let errLen = 0;
    let timedOut = false;
    let aborted = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    const onAbort = () => {
      aborted = true;
      child.kill('SIGKILL');
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout!.on('data', (b: Buffer) => {
      if (outLen < max) out.push(b.subarray(0, max - outLen));
      outLen += b.length;
    });
    child.stderr!.on('data', (b: Buffer) => {
      if (errLen < max) err.push(b.subarray(0, max - errLen));
      errLen += b.length;
    });
    child.stdin!.on('error', () => {});
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (e.code === 'ENOENT') reject(notFound(`${file}: executable not found`, e));
      else reject(internal(`${file}: ${e.message}`, e));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      const res: RunResult = {
        code: code ?? -1,
        signal,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      };
      const cmd = [file, ...args].join(' ');
      if (timedOut) return reject(deadlineExceeded(`${cmd}: timed out after ${opts.timeoutMs ?? 60_000} ms`));
      if (aborted) return reject(deadlineExceeded(`${cmd}: cancelled`));
      if (res.code !== 0 && !opts.allowFailure) {
        const detail = (res.stderr.trim() || res.stdout.trim()).split('\n').slice(-3).join('; ');
        return reject(internal(`${cmd}: exit ${signal ?? res.code}${detail ? ': ' + detail : ''}`));
      }
      resolve(res);
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}
