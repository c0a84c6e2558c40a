import { promises as fs } from 'node:fs';
import { run } from './exec';

/** Decodes the octal escapes (\040 for space, ...) that /proc/self/mountinfo uses in paths. */
function unescapeMountPath(p: string): string {
  return p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points of the daemon's mount namespace, parsed from mountinfo text (field 5). */
export function parseMountPoints(mountinfo: string): string[] {
  const out: string[] = [];
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    if (f.length > 5) out.push(unescapeMountPath(f[4]));
  }
  return out;
}

export async function mountPoints(): Promise<Set<string>> {
  return new Set(parseMountPoints(await fs.readFile('/proc/self/mountinfo', 'utf8')));
}

/**
 * Unmounts every path that is currently a mount point (all of them in one umount call); paths that are
 * not mounted are skipped. Repeated mounts on one path are all removed.
 */
export async function unmountAll(paths: readonly string[], timeoutMs = 10_000): Promise<void> {
  for (let round = 0; round < 4; round++) {
    const mounted = await mountPoints();
    const targets = paths.filter((p) => mounted.has(p));
    if (targets.length === 0) return;
    await run('umount', targets, { timeoutMs });
  }
}

/** Mounts a tmpfs for a pod's /dev/shm. */
export async function mountShm(target: string, sizeBytes: number, timeoutMs = 10_000): Promise<void> {
  await fs.mkdir(target, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', shmOptions(sizeBytes), 'shm', target], { timeoutMs });
}

export function shmOptions(sizeBytes: number): string {
  return `nosuid,nodev,noexec,mode=1777,size=${sizeBytes}`;
}
