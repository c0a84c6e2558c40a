import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { AttachRequest, ExecRequest, ExecResult, StreamIO, StreamingBackend, TerminalSize } from '../../src/streaming/backend';
import { run } from '../../src/sys/exec';
import { waitFor } from '../../src/core/wait';

/**
 * A StreamingBackend over local processes, so the streaming server is testable before containers
 * exist: exec runs argv directly (tty: under `script`, resized with `stty -F`), attach connects to a
 * process started with startContainer(), port-forward dials 127.0.0.1:port.
 */
export class ProcessBackend implements StreamingBackend {
  readonly resizes: TerminalSize[] = [];
  readonly live = new Set<ChildProcess>();
  readonly aborted: string[] = [];
  private readonly containers = new Map<string, { child: ChildProcess; outputs: Set<NodeJS.WritableStream> }>();
  private readonly tmp = mkdtempSync(join(tmpdir(), 'corral-stream-test-'));
  private seq = 0;

  async exec(req: ExecRequest, io: StreamIO, signal: AbortSignal): Promise<ExecResult> {
    io.resize.on('resize', (s) => this.resizes.push(s));
    const ttyFile = join(this.tmp, `tty-${++this.seq}`);
    const child = req.tty
      ? spawn('script', ['-qefc', `tty > ${ttyFile}; exec ${req.cmd.map(shellQuote).join(' ')}`, '/dev/null'], {
          stdio: [io.stdin ? 'pipe' : 'ignore', 'pipe', 'ignore'],
          env: { ...process.env, SHELL: '/bin/sh', TERM: 'xterm' },
          detached: true,
        })
      : spawn(req.cmd[0], req.cmd.slice(1), { stdio: [io.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], detached: true });
    this.live.add(child);
    const kill = () => {
      this.aborted.push(req.cmd.join(' '));
      killGroup(child);
    };
    signal.addEventListener('abort', kill, { once: true });
    if (req.tty) this.applyResizes(io, ttyFile);
    if (io.stdin && child.stdin) {
      child.stdin.on('error', () => {});
      io.stdin.pipe(child.stdin);
    }
    const outputs: Promise<void>[] = [];
    if (child.stdout) outputs.push(copyOut(child.stdout, io.stdout));
    if (child.stderr) outputs.push(copyOut(child.stderr, io.stderr));
    try {
      const code = await new Promise<number>((resolve, reject) => {
        child.once('error', reject);
        child.once('close', (c, sig) => resolve(c ?? 128 + signalNumber(sig)));
      });
      await Promise.all(outputs);
      return { exitCode: code };
    } finally {
      signal.removeEventListener('abort', kill);
      this.live.delete(child);
      io.stdin?.unpipe();
    }
  }

  /** Starts a long-running process that attach() can connect to. */
  startContainer(id: string, argv: string[]): ChildProcess {
    const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
    const outputs = new Set<NodeJS.WritableStream>();
    const fan = (chunk: Buffer) => {
      for (const o of outputs) o.write(chunk);
    };
    child.stdout!.on('data', fan);
    child.stderr!.on('data', fan);
    child.stdin!.on('error', () => {});
    this.containers.set(id, { child, outputs });
    this.live.add(child);
    child.once('close', () => this.live.delete(child));
    return child;
  }

  async attach(req: AttachRequest, io: StreamIO, signal: AbortSignal): Promise<void> {
    const c = this.containers.get(req.containerId);
    if (!c || c.child.exitCode !== null) throw new Error(`container ${req.containerId} is not running`);
    if (io.stdout) c.outputs.add(io.stdout);
    const onData = (d: Buffer) => c.child.stdin!.write(d);
    io.stdin?.on('data', onData);
    try {
      await new Promise<void>((resolve) => {
        c.child.once('close', () => resolve());
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
    } finally {
      io.stdin?.off('data', onData);
      if (io.stdout) c.outputs.delete(io.stdout);
    }
  }

  portForward(target: { podSandboxId: string; port: number }, stream: Duplex, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const sock = net.connect(target.port, '127.0.0.1');
      let connected = false;
      const onAbort = () => sock.destroy();
      signal.addEventListener('abort', onAbort, { once: true });
      sock.once('connect', () => {
        connected = true;
        stream.pipe(sock);
        sock.pipe(stream);
      });
      sock.once('error', (e) => {
        if (!connected) reject(e);
      });
      sock.once('close', () => {
        signal.removeEventListener('abort', onAbort);
        stream.unpipe(sock);
        resolve();
      });
    });
  }

  /** Kills everything still running and removes temp files. */
  async cleanup(): Promise<void> {
    for (const c of this.live) killGroup(c);
    await waitFor(() => this.live.size === 0, { timeoutMs: 5000, what: 'test processes to exit' });
    rmSync(this.tmp, { recursive: true, force: true });
  }

  private applyResizes(io: StreamIO, ttyFile: string): void {
    let chain = Promise.resolve();
    const apply = (s: TerminalSize) => {
      chain = chain.then(async () => {
        try {
          const tty = await waitFor(() => readFileSync(ttyFile, 'utf8').trim(), { timeoutMs: 5000, what: 'pty name' });
          await run('stty', ['-F', tty, 'rows', String(s.height), 'cols', String(s.width)], { timeoutMs: 5000, allowFailure: true });
        } catch {
          // the process may be gone already
        }
      });
    };
    if (io.resize.latest) apply(io.resize.latest);
    io.resize.on('resize', apply);
  }
}

function copyOut(from: NodeJS.ReadableStream, to: NodeJS.WritableStream | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (to) from.pipe(to, { end: false });
    else from.resume();
    from.once('end', () => resolve());
    from.once('close', () => resolve());
  });
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    child.kill('SIGKILL');
  }
}

function signalNumber(sig: NodeJS.Signals | null): number {
  const { constants } = require('node:os') as typeof import('node:os');
  return sig ? (constants.signals[sig] ?? 0) : 0;
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
