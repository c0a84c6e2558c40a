/**
 * A throwaway OCI registry for end-to-end tests: Debian's docker-registry (distribution v2.8) on a free loopback
 * port, storing into a fresh temp dir, optionally behind htpasswd basic auth.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { run } from '../../src/sys/exec';

export interface TestRegistry {
  /** "127.0.0.1:PORT" */
  host: string;
  /** "http://127.0.0.1:PORT" */
  url: string;
  auth?: { username: string; password: string };
  /** The registry's pid (for tests that check it is gone after stop()). */
  pid: number;
  /** The temp dir holding config, htpasswd file and storage; removed by stop(). */
  dir: string;
  stop(): Promise<void>;
}

export interface StartRegistryOptions {
  htpasswd?: { username: string; password: string };
  /** How long to wait for GET /v2/ to answer. Default 20 s. */
  readyTimeoutMs?: number;
}

const REGISTRY_BIN_CANDIDATES = ['/usr/bin/docker-registry', '/usr/sbin/docker-registry'];
const STOP_GRACE_MS = 5_000;
const MAX_PORT_ATTEMPTS = 5;
const TOKEN_HEADER = 'X-Corral-Test-Registry';

/** Registries still running; the 'exit' hook kills them if a test forgets stop() or crashes. */
const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
}

function findOnPath(names: string[], extra: string[] = []): string | undefined {
  const dirs = (process.env.PATH ?? '').split(':').filter(Boolean);
  for (const candidate of [...extra, ...names.flatMap((n) => dirs.map((d) => path.join(d, n)))]) {
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

/** Binds port 0 on loopback, reads the port the kernel chose and frees it again. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error('could not read a free port'))));
    });
  });
}

async function makeHtpasswd(file: string, username: string, password: string): Promise<void> {
  const bin = findOnPath(['htpasswd']);
  if (!bin) throw new Error('htpasswd not found: install Debian package apache2-utils');
  // -B bcrypt (the only hash distribution accepts), -b password from argv, -n print instead of editing a file.
  const res = await run(bin, ['-Bbn', username, password], { timeoutMs: 30_000 });
  const line = res.stdout.split('\n').find((l) => l.startsWith(`${username}:`));
  if (!line) throw new Error(`htpasswd printed no entry for ${username}`);
  fs.writeFileSync(file, line + '\n', { mode: 0o600 });
}

function configYaml(o: { storage: string; port: number; token: string; htpasswdFile?: string }): string {
  // JSON strings are valid YAML scalars, so paths need no further quoting rules.
  const q = (s: string) => JSON.stringify(s);
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${q(o.storage)}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${q(`127.0.0.1:${o.port}`)}`,
    // Our registry answers with this token, so readiness never mistakes another server that grabbed the port.
    '  headers:',
    `    ${TOKEN_HEADER}: [${q(o.token)}]`,
  ];
  if (o.htpasswdFile) {
    lines.push('auth:', '  htpasswd:', '    realm: corral-test', `    path: ${q(o.htpasswdFile)}`);
  }
  return lines.join('\n') + '\n';
}

interface Launched {
  child: ChildProcess;
  port: number;
  output: () => string;
  exited: Promise<void>;
}

function launch(bin: string, configFile: string, port: number): Launched {
  // setpriv --pdeathsig makes the kernel kill the registry when our process dies, even by SIGKILL,
  // where no 'exit' hook runs. The child also stays in our process group, so a terminal ^C reaches it.
  const setpriv = findOnPath(['setpriv']);
  const [file, args] = setpriv
    ? [setpriv, ['--pdeathsig', 'KILL', '--', bin, 'serve', configFile]]
    : [bin, ['serve', configFile]];
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-8192);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  // Do not keep the test process alive just for the registry; stop() or the exit hook ends it.
  child.unref();
  (child.stdout as unknown as { unref?: () => void }).unref?.();
  (child.stderr as unknown as { unref?: () => void }).unref?.();
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  return { child, port, output: () => out, exited };
}

function isExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function probe(url: string, authed: boolean, token: string): Promise<boolean> {
  const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2_000) });
  await res.arrayBuffer();
  if (res.headers.get(TOKEN_HEADER) !== token) throw new Error(`another server answers on ${url}`);
  return res.status === 200 || (authed && res.status === 401);
}

/** Polls GET /v2/ until it answers, failing at once if the registry exits (waitFor would poll on until the deadline). */
async function waitReady(l: Launched, url: string, authed: boolean, token: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    if (isExited(l.child)) throw new Error(`docker-registry exited early (${l.child.exitCode ?? l.child.signalCode})`);
    try {
      if (await probe(url, authed, token)) return;
      last = 'unexpected status';
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${url}/v2/: ${last}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function stopChild(l: Launched): Promise<void> {
  if (!isExited(l.child)) {
    l.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const grace = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), STOP_GRACE_MS)));
    const outcome = await Promise.race([l.exited.then(() => 'exited' as const), grace]);
    clearTimeout(timer);
    if (outcome === 'timeout') {
      l.child.kill('SIGKILL');
      await l.exited;
    }
  }
  live.delete(l.child);
}

/** Starts a registry and waits until it answers GET /v2/. Call stop() when done. */
export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const bin = findOnPath(['docker-registry'], REGISTRY_BIN_CANDIDATES);
  if (!bin) throw new Error('docker-registry not found: install Debian package docker-registry');
  installExitHook();

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corral-registry-'));
  const cleanupDir = () => fs.rmSync(dir, { recursive: true, force: true });
  try {
    const storage = path.join(dir, 'storage');
    fs.mkdirSync(storage);
    let htpasswdFile: string | undefined;
    if (opts.htpasswd) {
      htpasswdFile = path.join(dir, 'htpasswd');
      await makeHtpasswd(htpasswdFile, opts.htpasswd.username, opts.htpasswd.password);
    }
    const configFile = path.join(dir, 'config.yml');

    let lastError = '';
    for (let attempt = 0; attempt < MAX_PORT_ATTEMPTS; attempt++) {
      const port = await freePort();
      const token = crypto.randomBytes(12).toString('hex');
      fs.writeFileSync(configFile, configYaml({ storage, port, token, htpasswdFile }));
      const l = launch(bin, configFile, port);
      live.add(l.child);
      const url = `http://127.0.0.1:${port}`;
      try {
        await waitReady(l, url, !!opts.htpasswd, token, opts.readyTimeoutMs ?? 20_000);
      } catch (e) {
        await stopChild(l);
        lastError = `${(e as Error).message}; registry output: ${l.output().trim().slice(-2000)}`;
        // Someone took the port between our probe and the registry's bind: try another one.
        if (/address already in use/i.test(l.output())) continue;
        throw new Error(`docker-registry did not become ready: ${lastError}`);
      }
      const pid = l.child.pid!;
      let stopped: Promise<void> | undefined;
      return {
        host: `127.0.0.1:${port}`,
        url,
        auth: opts.htpasswd ? { ...opts.htpasswd } : undefined,
        pid,
        dir,
        stop: () =>
          (stopped ??= (async () => {
            await stopChild(l);
            cleanupDir();
          })()),
      };
    }
    throw new Error(`docker-registry could not bind a free port after ${MAX_PORT_ATTEMPTS} attempts: ${lastError}`);
  } catch (e) {
    cleanupDir();
    throw e;
  }
}
