import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { waitFor } from '../../src/core/wait';
import { criClients, type ImageClient, type RuntimeClient } from './cri-client';

/** Compiled CLI entry point (dist/e2e/harness → dist/src/cli/main.js). */
export const CORRAL_MAIN = path.join(__dirname, '..', '..', 'src', 'cli', 'main.js');

/** The node flags the daemon runs with: those of main.js's shebang ("#!/usr/bin/env -S node --flag ..."). */
export const DAEMON_NODE_FLAGS: string[] = (() => {
  const first = readFileSync(CORRAL_MAIN, 'utf8').split('\n', 1)[0];
  return first.replace(/^.*\bnode\b/, '').trim().split(/\s+/).filter(Boolean);
})();

export interface DaemonOptions {
  /** Extra TOML written as a drop-in (<config>.d/50-test.toml), so it may open any section. */
  config?: string;
  /** Extra command-line arguments. */
  args?: string[];
  env?: Record<string, string>;
  /** Log level of the daemon (default debug, captured in logs()). */
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /** Do not wait for Version to answer (for tests of failing start-up). */
  noWait?: boolean;
}

export interface TestDaemon {
  dir: string;
  socket: string;
  root: string;
  runRoot: string;
  configFile: string;
  rt: RuntimeClient;
  img: ImageClient;
  /** stderr of the daemon(s) started so far. */
  logs(): string;
  /** Address "127.0.0.1:PORT" of the metrics endpoint, parsed from the log. */
  metricsAddress(): string | undefined;
  pid(): number | undefined;
  /** Resolves when the current daemon process exits. */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Starts the daemon again on the same dirs (after stop or kill); `env` replaces the start-up env from then on. */
  start(opts?: { env?: Record<string, string> }): Promise<void>;
  /** Stops the daemon, removes every container, mount and file it made (corral wipe --force), and the temp dir. */
  cleanup(): Promise<void>;
}

/**
 * Starts a corral daemon as a child process on a private temp root, run root and socket, with a
 * config that points metrics at a random port and CNI at an empty private dir unless overridden.
 */
export async function startDaemon(opts: DaemonOptions = {}): Promise<TestDaemon> {
  const dir = mkdtempSync('/tmp/corral-e2e-');
  const root = path.join(dir, 'root');
  const runRoot = path.join(dir, 'run');
  const socket = path.join(dir, 'corral.sock');
  const configFile = path.join(dir, 'corral.toml');
  const cniDir = path.join(dir, 'cni');
  mkdirSync(cniDir);
  writeFileSync(
    configFile,
    [
      `socket = ${JSON.stringify(socket)}`,
      `root = ${JSON.stringify(root)}`,
      `run_root = ${JSON.stringify(runRoot)}`,
      `shutdown_grace_seconds = 5`,
      `[log]`,
      `level = ${JSON.stringify(opts.logLevel ?? 'debug')}`,
      `[metrics]`,
      `address = "127.0.0.1:0"`,
      `[cni]`,
      `conf_dirs = [${JSON.stringify(cniDir)}]`,
      '',
    ].join('\n'),
  );
  if (opts.config) {
    mkdirSync(`${configFile}.d`);
    writeFileSync(path.join(`${configFile}.d`, '50-test.toml'), opts.config);
  }
  let env = opts.env;
  let log = '';
  let child: ChildProcess | undefined;
  let exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> = Promise.resolve({ code: null, signal: null });
  const { rt, img } = criClients(socket);

  const launch = async () => {
    const argv = [...DAEMON_NODE_FLAGS, CORRAL_MAIN, '--config', configFile, ...(opts.args ?? [])];
    // setpriv --pdeathsig: if the test process dies, the daemon gets SIGTERM instead of lingering.
    const c = existsSync('/usr/bin/setpriv')
      ? spawn('/usr/bin/setpriv', ['--pdeathsig', 'TERM', process.execPath, ...argv], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(process.execPath, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    child = c;
    c.stdout!.on('data', (b: Buffer) => (log += b.toString()));
    c.stderr!.on('data', (b: Buffer) => (log += b.toString()));
    exit = new Promise((resolve) => c.on('exit', (code, signal) => resolve({ code, signal })));
    if (opts.noWait) return;
    let dead = false;
    void exit.then(() => (dead = true));
    await waitFor(
      async () => {
        if (dead) throw new Error(`corral exited during start-up:\n${log}`);
        await rt.Version({}, { timeoutMs: 1000 });
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 50, what: 'corral to answer Version' },
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n--- daemon log ---\n${log}`);
    });
  };

  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return exit;
    c.kill(signal);
    const res = await Promise.race([exit, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 20_000).unref())]);
    if (res === 'timeout') {
      c.kill('SIGKILL');
      return exit;
    }
    return res;
  };

  await launch();
  return {
    dir,
    socket,
    root,
    runRoot,
    configFile,
    rt,
    img,
    logs: () => log,
    metricsAddress: () => /serving metrics address=(\S+)/.exec(log)?.[1],
    pid: () => child?.pid,
    exited: () => exit,
    stop,
    start: (o?: { env?: Record<string, string> }) => {
      if (o?.env) env = o.env;
      return launch();
    },
    cleanup: async () => {
      await stop();
      rt.close();
      img.close();
      await new Promise<void>((resolve) => {
        const w = spawn(process.execPath, [CORRAL_MAIN, 'wipe', '--force', '--config', configFile], { stdio: 'ignore' });
        w.on('exit', () => resolve());
        w.on('error', () => resolve());
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
