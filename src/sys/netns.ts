import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { run } from './exec';
import { shmOptions, unmountAll } from './mount';

/** Which namespaces to create and pin (bind-mount target file for each), plus an optional /dev/shm tmpfs. */
export interface PinRequest {
  net?: string;
  ipc?: string;
  uts?: string;
  shm?: { path: string; sizeBytes: number };
}

/** The argv of the one helper call that creates the namespaces, pins them and mounts the shm tmpfs. */
export function pinArgv(req: PinRequest): { file: string; args: string[] } {
  const ns: string[] = [];
  if (req.net) ns.push(`--net=${req.net}`);
  if (req.ipc) ns.push(`--ipc=${req.ipc}`);
  if (req.uts) ns.push(`--uts=${req.uts}`);
  const mountArgs = req.shm ? ['mount', '-t', 'tmpfs', '-o', shmOptions(req.shm.sizeBytes), 'shm', req.shm.path] : ['true'];
  if (ns.length === 0) return { file: mountArgs[0], args: mountArgs.slice(1) };
  // unshare creates the namespaces, bind-mounts each onto its file, then runs the program. Without --mount
  // the program (mount) still acts on the host's mount namespace, so one spawn does all of it.
  return { file: 'unshare', args: [...ns, '--', ...mountArgs] };
}

/**
 * Creates and pins namespaces (and the shm tmpfs) with one `unshare` helper call. The target files are
 * created first (a bind mount needs an existing file). On failure the caller's undo (unpin) cleans up.
 */
export async function pinNamespaces(req: PinRequest, timeoutMs = 10_000): Promise<void> {
  for (const f of [req.net, req.ipc, req.uts]) {
    if (!f) continue;
    await fs.mkdir(path.dirname(f), { recursive: true });
    await (await fs.open(f, 'w')).close();
  }
  if (req.shm) await fs.mkdir(req.shm.path, { recursive: true });
  const { file, args } = pinArgv(req);
  if (file === 'true') return;
  await run(file, args, { timeoutMs });
}

/** Unmounts pinned namespace files / shm dirs and removes them. Idempotent. */
export async function unpinNamespaces(paths: readonly string[], timeoutMs = 10_000): Promise<void> {
  const list = paths.filter((p) => !!p);
  if (list.length === 0) return;
  await unmountAll(list, timeoutMs);
  for (const p of list) await fs.rm(p, { force: true, recursive: true });
}

/** Whether a pinned namespace file still exists (a lost netns is not an error for CNI DEL). */
export async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}
