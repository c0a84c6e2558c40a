import type { SpawnOptions } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { getSystemErrorName } from 'node:util';
import { deadlineExceeded, internal, notFound } from '../core/errors';
import { sharedSpawner, type SpawnRequest, type Spawner } from './spawner';
import { spawnChild } from './spawn-child';

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

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_OUTPUT = 16 * 1024 * 1024;

/**
 * Runs a program with an argv array (never a shell), with a deadline. This is the one place that
 * spawns short-lived helpers (runc, mount, CNI plugins, ip, ...). Goes through the corral-spawn
 * process when it is available (forking the daemon itself blocks its event loop for milliseconds),
 * through child_process otherwise; both behave the same.
 */
export function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const spawner = opts.extraStdio === undefined ? sharedSpawner() : null;
  const req = spawner && spawnRequest(file, args, opts);
  if (spawner && req) return runWithSpawner(spawner, req, file, args, opts);
  return runWithChildProcess(file, args, opts);
}

interface Finished extends RunResult {
  timedOut: boolean;
  aborted: boolean;
}

/** The outcome of a child that ran (or was killed): the result, or the error run() rejects with. */
function settle(file: string, args: readonly string[], opts: RunOptions, f: Finished): RunResult {
  const res: RunResult = { code: f.code, signal: f.signal, stdout: f.stdout, stderr: f.stderr };
  const cmd = [file, ...args].join(' ');
  if (f.timedOut) throw deadlineExceeded(`${cmd}: timed out after ${opts.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms`);
  if (f.aborted) throw deadlineExceeded(`${cmd}: cancelled`);
  if (res.code !== 0 && !opts.allowFailure) {
    const detail = (res.stderr.trim() || res.stdout.trim()).split('\n').slice(-3).join('; ');
    throw internal(`${cmd}: exit ${f.signal ?? res.code}${detail ? ': ' + detail : ''}`);
  }
  return res;
}

function spawnFailed(file: string, e: NodeJS.ErrnoException): Error {
  if (e.code === 'ENOENT') return notFound(`${file}: executable not found`, e);
  return internal(`${file}: ${e.message}`, e);
}

function runWithChildProcess(file: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  const max = opts.maxOutput ?? DEFAULT_MAX_OUTPUT;
  return new Promise((resolve, reject) => {
    const child = spawnChild(file, args, {
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
    }, opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
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
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      reject(spawnFailed(file, e));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      try {
        const stdout = Buffer.concat(out).toString();
        const stderr = Buffer.concat(err).toString();
        resolve(settle(file, args, opts, { code: code ?? -1, signal, stdout, stderr, timedOut, aborted }));
      } catch (e) {
        reject(e);
      }
    });
    if (opts.input !== undefined) child.stdin!.end(opts.input);
    else child.stdin!.end();
  });
}

/**
 * The request for the spawner, or null for what only child_process handles (it throws the same
 * validation errors as before: NUL bytes, empty file name).
 */
function spawnRequest(file: string, args: readonly string[], opts: RunOptions): SpawnRequest | null {
  if (typeof file !== 'string' || file === '' || file.includes('\0')) return null;
  const argv = [file];
  for (const a of args) {
    if (typeof a !== 'string' || a.includes('\0')) return null;
    argv.push(a);
  }
  // As child_process builds envPairs: inherited keys included, undefined values skipped.
  const envObj = opts.env ?? process.env;
  const env: string[] = [];
  for (const k in envObj) {
    const v = envObj[k];
    if (v === undefined) continue;
    const pair = `${k}=${v}`;
    if (pair.includes('\0')) return null;
    env.push(pair);
  }
  if (opts.cwd !== undefined && (typeof opts.cwd !== 'string' || opts.cwd.includes('\0'))) return null;
  // setTimeout's rules: anything outside [1, 2^31-1] ms becomes 1 ms.
  let timeoutMs = Number(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  if (!(timeoutMs >= 1 && timeoutMs <= 0x7fff_ffff)) timeoutMs = 1;
  const input = opts.input === undefined ? undefined : typeof opts.input === 'string' ? Buffer.from(opts.input) : opts.input;
  return { file, argv, env, cwd: opts.cwd ?? '', timeoutMs, maxOutput: opts.maxOutput ?? DEFAULT_MAX_OUTPUT, input };
}

const signalNames = new Map<number, NodeJS.Signals>(
  Object.entries(osConstants.signals).map(([name, n]) => [n, name as NodeJS.Signals]),
);

function runWithSpawner(spawner: Spawner, req: SpawnRequest, file: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const h = spawner.request(req);
    let aborted = false;
    const onAbort = () => {
      aborted = true;
      h.cancel();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    h.reply.then(
      (r) => {
        opts.signal?.removeEventListener('abort', onAbort);
        if (r.outcome === 'enoent' || r.outcome === 'exec-failed') {
          // Shaped like child_process's spawn error.
          const code = r.errno > 0 ? getSystemErrorName(-r.errno) : 'UNKNOWN';
          const e: NodeJS.ErrnoException = Object.assign(new Error(`spawn ${file} ${code}`), {
            errno: -r.errno,
            code,
            syscall: `spawn ${file}`,
            path: file,
            spawnargs: [...args],
          });
          return reject(spawnFailed(file, e));
        }
        const signal = r.signal ? (signalNames.get(r.signal) ?? null) : null;
        const stdout = r.stdout.toString();
        const stderr = r.stderr.toString();
        try {
          resolve(settle(file, args, opts, { code: r.code, signal, stdout, stderr, timedOut: r.outcome === 'timed-out', aborted }));
        } catch (e) {
          reject(e);
        }
      },
      (e) => {
        opts.signal?.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
