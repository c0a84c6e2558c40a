import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { execProcess } from '../../container/exec-sync';
import type { OciProcess, OciSpec } from '../../container/spec';
import { failedPrecondition, internal } from '../../core/errors';
import type { Logger } from '../../log/logger';
import type { ExecRequest, ExecResult, StreamIO, TerminalSize } from '../backend';
import { defaultHelperPath, ended, killChild, spawnHelper } from './helper';
import type { LookupContainer } from './types';

export interface ContainerExecOptions {
  lookupContainer: LookupContainer;
  /** A short directory for console sockets (unix socket paths are limited to 107 bytes; runc dials by path). */
  socketDir: string;
  log: Logger;
  helperPath?: string;
  /** How long output pipes may stay open after the process exited (its background children may hold them). */
  drainMs?: number;
  /** How long the helper gets to kill the exec'd process after SIGTERM before it is SIGKILLed. */
  killGraceMs?: number;
}

/** An exec's process spec: the container's own process (user, env, cwd, capabilities, no_new_privs, labels). */
export function execProcessSpec(base: OciProcess, cmd: readonly string[], tty: boolean, size?: TerminalSize): OciProcess & { consoleSize?: { height: number; width: number } } {
  const p: OciProcess & { consoleSize?: { height: number; width: number } } = execProcess(base, cmd);
  p.terminal = tty;
  if (tty) {
    if (!p.env.some((e) => e.startsWith('TERM='))) p.env = [...p.env, 'TERM=xterm'];
    if (size && size.width > 0 && size.height > 0) p.consoleSize = { height: size.height, width: size.width };
  }
  return p;
}

/**
 * Exec in a running container: `runc exec -d` under the corral-io helper, which adopts the process as
 * child subreaper and reports its exit status. Without a tty the process gets the session's pipes
 * directly; with one, the helper relays the pty runc hands over and applies resizes.
 */
export class ContainerExecBackend {
  private readonly helper: string;

  constructor(private readonly o: ContainerExecOptions) {
    this.helper = o.helperPath ?? defaultHelperPath();
  }

  async exec(req: ExecRequest, io: StreamIO, signal: AbortSignal): Promise<ExecResult> {
    const c = await this.o.lookupContainer(req.containerId);
    if (!c.running) throw failedPrecondition(`container ${c.id} is not running`);
    const spec = JSON.parse(await fs.readFile(path.join(c.bundle, 'config.json'), 'utf8')) as OciSpec;
    const proc = execProcessSpec(spec.process, req.cmd, req.tty, io.resize.latest);
    const tag = randomBytes(8).toString('hex');
    const procFile = path.join(c.bundle, `.exec-${tag}.json`);
    const pidFile = path.join(c.bundle, `.exec-${tag}.pid`);
    const consoleSocket = req.tty ? this.consolePath(tag) : undefined;
    await fs.writeFile(procFile, JSON.stringify(proc), { mode: 0o600 });
    try {
      const console = consoleSocket ? ['--console-socket', consoleSocket] : [];
      const runtimeArgv = [c.runtime.path, `--root=${c.runtime.root}`, 'exec', '-d', '--process', procFile, '--pid-file', pidFile, ...console, c.id];
      return await this.run(['exec', '--pid-file', pidFile, ...console, '--', ...runtimeArgv], req, io, signal, pidFile);
    } finally {
      await fs.rm(procFile, { force: true });
      await fs.rm(pidFile, { force: true });
      if (consoleSocket) await fs.rm(consoleSocket, { force: true });
    }
  }

  private consolePath(tag: string): string {
    const p = path.join(this.o.socketDir, `exec-${tag}.sock`);
    return p.length < 100 ? p : path.join(os.tmpdir(), `corral-exec-${tag}.sock`);
  }

  private async run(args: string[], req: ExecRequest, io: StreamIO, signal: AbortSignal, pidFile: string): Promise<ExecResult> {
    if (signal.aborted) throw internal('exec cancelled');
    const h = spawnHelper(
      this.helper,
      args,
      [io.stdin ? 'pipe' : 'ignore', req.tty || io.stdout ? 'pipe' : 'ignore', 'pipe', req.tty ? 'pipe' : 'ignore'],
      { captureStderr: true },
    );
    const child = h.child;
    let killTimer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      killChild(child, 'SIGTERM'); // the helper kills the exec'd process, then exits
      killTimer = setTimeout(() => killChild(child, 'SIGKILL'), this.o.killGraceMs ?? 2000);
    };
    signal.addEventListener('abort', onAbort, { once: true });

    if (io.stdin && child.stdin) {
      child.stdin.on('error', () => {}); // EPIPE once the process is gone
      io.stdin.pipe(child.stdin);
    }
    const stdout = child.stdout as Readable | null;
    if (stdout) forward(stdout, io.stdout);
    // Without a tty fd 2 is the process's stderr (and runc's messages); with one only runc's and ours.
    const stderr = child.stderr as Readable;
    if (!req.tty) forward(stderr, io.stderr);
    else stderr.resume();
    let offResize: (() => void) | undefined;
    if (req.tty) offResize = this.feedResizes(io, child.stdio[3] as Writable);

    try {
      const code = await h.exited;
      const drain = setTimeout(() => {
        stdout?.destroy();
        stderr.destroy();
      }, this.o.drainMs ?? 2000);
      await Promise.all([ended(stdout), ended(stderr)]);
      clearTimeout(drain);
      if (!signal.aborted && code !== 0 && !existsSync(pidFile)) {
        // The process never started; runc said why. Without a tty the client already saw it on stderr.
        const why = h.stderrTail() || `runtime exec exited ${code}`;
        if (req.tty || !io.stderr) throw internal(`exec in container ${req.containerId} failed: ${why}`);
      }
      return { exitCode: code };
    } finally {
      clearTimeout(killTimer);
      signal.removeEventListener('abort', onAbort);
      offResize?.();
      if (io.stdin && child.stdin) io.stdin.unpipe(child.stdin);
    }
  }

  /** Sends window sizes ("W H\n") to the helper's fd 3; it applies them to the pty. */
  private feedResizes(io: StreamIO, fd3: Writable): () => void {
    fd3.on('error', () => {});
    const send = (s: TerminalSize) => {
      if (!fd3.writableEnded && !fd3.destroyed) fd3.write(`${s.width} ${s.height}\n`);
    };
    if (io.resize.latest) send(io.resize.latest);
    io.resize.on('resize', send);
    return () => {
      io.resize.off('resize', send);
      fd3.destroy();
    };
  }
}

/** Copies a helper output to a client stream with backpressure (discarding it when the client did not ask). */
function forward(from: Readable, to: Writable | undefined): void {
  if (to) from.pipe(to, { end: false });
  else from.resume();
}
