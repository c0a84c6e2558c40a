import { promises as fs } from 'node:fs';
import * as path from 'node:path';

const CGROUP_ROOT = '/sys/fs/cgroup';

/** Whether a cgroupfs path is usable here (systemd "slice:prefix:name" paths are not). */
function isCgroupfsPath(p: string): boolean {
  return p.startsWith('/') && !p.includes(':');
}

/** Parses the oom_kill counter of cgroup v1 memory.oom_control or v2 memory.events. */
export function parseOomKills(text: string): number {
  const m = /^oom_kill\s+(\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
}

/** OOM kills the kernel counted in the container's memory cgroup (0 when unknown or gone). */
export async function cgroupOomKills(cgroupsPath: string, root = CGROUP_ROOT): Promise<number> {
  if (!isCgroupfsPath(cgroupsPath)) return 0;
  const rel = cgroupsPath.replace(/^\/+/, '');
  for (const f of [path.join(root, 'memory', rel, 'memory.oom_control'), path.join(root, rel, 'memory.events'), path.join(root, 'unified', rel, 'memory.events')]) {
    try {
      return parseOomKills(await fs.readFile(f, 'utf8'));
    } catch {
      /* try the next layout */
    }
  }
  return 0;
}

/** Pids in the container's cgroup (from the pids, memory or v2 hierarchy). */
export async function cgroupPids(cgroupsPath: string, root = CGROUP_ROOT): Promise<number[]> {
  if (!isCgroupfsPath(cgroupsPath)) return [];
  const rel = cgroupsPath.replace(/^\/+/, '');
  for (const d of ['pids', 'memory', 'freezer', '', 'unified']) {
    try {
      const text = await fs.readFile(path.join(root, d, rel, 'cgroup.procs'), 'utf8');
      return text.split('\n').filter(Boolean).map(Number).filter((n) => n > 0);
    } catch {
      /* next */
    }
  }
  return [];
}

/** SIGKILLs every process in the container's cgroup; returns how many were signalled. */
export async function killCgroup(cgroupsPath: string, root = CGROUP_ROOT): Promise<number> {
  let n = 0;
  for (const pid of await cgroupPids(cgroupsPath, root)) {
    try {
      process.kill(pid, 'SIGKILL');
      n++;
    } catch {
      /* already gone */
    }
  }
  return n;
}
