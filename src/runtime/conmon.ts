import { closeSync, openSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { deadlineExceeded, internal } from '../core/errors';
import { spawnChild } from '../sys/spawn-child';

/** Everything conmon needs to create one container (`runc create` under conmon). */
export interface ConmonLaunch {
  conmon: string;
  runtimePath: string;
  runtimeRoot: string;
  id: string;
  /** Container name for conmon's log lines. */
  name: string;
  bundle: string;
  /** CRI log file (k8s-file format). */
  logPath: string;
  exitDir: string;
  persistDir: string;
  socketDir: string;
  containerPidFile: string;
  conmonPidFile: string;
  terminal?: boolean;
  stdin?: boolean;
  stdinOnce?: boolean;
  systemdCgroup?: boolean;
  logSizeMax?: number;
  timeoutMs?: number;
}

/** conmon's argv, the same flags cri-o passes (internal/oci/runtime_oci.go), minus --syslog. */
export function conmonArgs(l: ConmonLaunch): string[] {
  const a = [
    '-b', l.bundle,
    '-c', l.id,
    '--exit-dir', l.exitDir,
    '-l', `k8s-file:${l.logPath}`,
    '--log-level', 'error',
    '-n', l.name,
    '-P', l.conmonPidFile,
    '-p', l.containerPidFile,
    '--persist-dir', l.persistDir,
    '-r', l.runtimePath,
    '--runtime-arg', `--root=${l.runtimeRoot}`,
    '--socket-dir-path', l.socketDir,
    '-u', l.id,
    // Single fork: conmon stays our (detached, own-session) child, so we reap it when it exits; it still
    // outlives a daemon restart. With the double fork, exited monitors become zombies on hosts whose
    // PID 1 does not reap orphans (this VM's is one).
    '--sync',
  ];
  if (l.systemdCgroup) a.push('-s');
  if (l.logSizeMax !== undefined && l.logSizeMax >= 0) a.push('--log-size-max', String(l.logSizeMax));
  if (l.terminal) a.push('-t');
  else if (l.stdin) {
    if (!l.stdinOnce) a.push('--leave-stdin-open');
    a.push('-i');
  }
  return a;
}

/** Parses the JSON message conmon writes on the sync pipe: {"pid": N, "message": "..."}. */
export function parseSyncMessage(text: string): { pid: number; message?: string } {
  const v = JSON.parse(text) as { pid?: number; data?: number; message?: string };
  const pid = v.pid ?? v.data;
  if (typeof pid !== 'number') throw new Error(`unexpected conmon sync message: ${text}`);
  return { pid, message: v.message };
}

/**
 * Runs conmon with the sync pipe on fd 3 and the start pipe on fd 4 (cri-o's protocol). conmon waits
 * for a byte on the start pipe, runs `runc create`, and reports the container pid (or -1 and a message)
 * on the sync pipe. conmon runs in its own session and survives the daemon.
 */
export async function launchConmon(l: ConmonLaunch): Promise<{ pid: number }> {
  const timeoutMs = l.timeoutMs ?? 60_000;
  // conmon outlives us: its stderr goes to a file (a pipe we close would hand it EPIPE later).
  const errFile = path.join(l.persistDir, 'conmon.err');
  const errFd = openSync(errFile, 'w', 0o600);
  let child;
  try {
    // spawnChild: a conmon that dies before reading the start byte hands us ECONNRESET on that pipe; its exit reports it.
    child = spawnChild(l.conmon, conmonArgs(l), {
      cwd: l.bundle,
      detached: true,
      stdio: ['ignore', 'ignore', errFd, 'pipe', 'pipe'],
      // A UTF-8 locale: conmon's option parser (GLib) converts string arguments from the locale's charset and
      // exits 1 on a non-ASCII pod name or log path under the C locale.
      env: { _OCI_SYNCPIPE: '3', _OCI_STARTPIPE: '4', PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C.UTF-8' },
    });
  } finally {
    closeSync(errFd);
  }
  const sync = child.stdio[3] as Readable;
  const startPipe = child.stdio[4] as Writable;
  const stderrText = () => {
    try {
      return readFileSync(errFile, 'utf8').trim().split('\n').slice(-3).join('; ');
    } catch {
      return '';
    }
  };

  let timer: NodeJS.Timeout | undefined;
  const cleanup = () => {
    clearTimeout(timer);
    sync.destroy();
    startPipe.destroy();
  };
  try {
    const earlyExit = new Promise<never>((_, reject) => {
      child.once('error', (e) => reject(internal(`${l.conmon}: ${e.message}`, e)));
      child.once('exit', (code, signal) => {
        const detail = stderrText();
        reject(internal(`conmon for ${l.id} exited ${signal ?? code} before reporting a pid${detail ? ': ' + detail : ''}`));
      });
    });
    const syncMsg = new Promise<string>((resolve, reject) => {
      let buf = '';
      sync.setEncoding('utf8');
      sync.on('data', (s: string) => {
        buf += s;
        const nl = buf.indexOf('\n');
        if (nl >= 0) resolve(buf.slice(0, nl));
      });
      sync.on('end', () => {
        if (buf.trim()) return resolve(buf.trim());
        // conmon closes the pipe as it dies: its exit status and stderr say more than the closed pipe.
        const noPid = internal(`conmon for ${l.id} closed the sync pipe without a pid`);
        Promise.race([earlyExit, delay(1000).then(() => Promise.reject(noPid))]).catch(reject);
      });
      sync.on('error', reject);
    });
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(deadlineExceeded(`creating container ${l.id}: conmon did not report a pid within ${timeoutMs} ms`)), timeoutMs);
    });
    earlyExit.catch(() => undefined);
    syncMsg.catch(() => undefined);
    // Our cgroup choice is made (conmon stays in the daemon's cgroup): let conmon go on.
    startPipe.write(Buffer.from([0]));
    // A sync message sent just before conmon exits must win over the exit.
    const text = await Promise.race([syncMsg, deadline, earlyExit.catch(async (e) => (await Promise.race([syncMsg, delay(50)])) ?? Promise.reject(e))]);
    const msg = parseSyncMessage(text);
    if (msg.pid <= 0) throw internal(`container create failed: ${msg.message ?? 'no message from conmon'}`);
    return { pid: msg.pid };
  } catch (e) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    throw e;
  } finally {
    cleanup();
    child.unref();
  }
}

function delay(ms: number): Promise<undefined> {
  return new Promise((r) => setTimeout(() => r(undefined), ms));
}
