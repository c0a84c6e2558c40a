import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/**
 * The OCI cgroupsPath of a pod's infra (or a container) under the pod's cgroup parent.
 * cgroupfs: "/<parent>/<prefix>-<id>"; systemd: "<parent slice>:<prefix>:<id>" (runc's slice:prefix:name form).
 */
export function cgroupsPathFor(manager: 'cgroupfs' | 'systemd', parent: string, prefix: string, id: string): string {
  if (manager === 'systemd') {
    const slice = parent ? path.basename(parent) : 'system.slice';
    return `${slice}:${prefix}:${id}`;
  }
  const p = parent ? '/' + parent.replace(/^\/+|\/+$/g, '') : '';
  return `${p}/${prefix}-${id}`;
}

/** Validates a kubelet cgroup parent for the given driver; returns an error message or undefined. */
export function checkCgroupParent(manager: 'cgroupfs' | 'systemd', parent: string): string | undefined {
  if (!parent) return undefined;
  if (parent.split('/').includes('..')) return `cgroup_parent ${JSON.stringify(parent)} must not contain ".."`;
  if (manager === 'systemd' && !path.basename(parent).endsWith('.slice')) {
    return `cgroup_parent ${JSON.stringify(parent)} must name a systemd slice (name ending in .slice) with the systemd cgroup driver`;
  }
  return undefined;
}

/** Directories of a cgroupfs cgroup path in every mounted hierarchy (v1 controllers and the v2 tree). */
export async function cgroupDirs(cgroupPath: string, mountRoot = '/sys/fs/cgroup'): Promise<string[]> {
  const rel = cgroupPath.replace(/^\/+/, '');
  let entries: string[] = [];
  try {
    entries = await fs.readdir(mountRoot);
  } catch {
    return [];
  }
  const isV2 = entries.includes('cgroup.controllers');
  if (isV2) return [path.join(mountRoot, rel)];
  return entries.map((e) => path.join(mountRoot, e, rel));
}

/** Lists the existing directories of a cgroupfs path (for leak checks). */
export async function existingCgroupDirs(cgroupPath: string, mountRoot = '/sys/fs/cgroup'): Promise<string[]> {
  const out: string[] = [];
  for (const d of await cgroupDirs(cgroupPath, mountRoot)) {
    try {
      if ((await fs.stat(d)).isDirectory()) out.push(d);
    } catch {
      /* absent */
    }
  }
  return out;
}

/** Removes an empty cgroupfs cgroup in every hierarchy (rmdir, deepest first). Non-empty ones are left. */
export async function removeCgroup(cgroupPath: string, mountRoot = '/sys/fs/cgroup'): Promise<void> {
  for (const d of await existingCgroupDirs(cgroupPath, mountRoot)) {
    await fs.rmdir(d).catch(() => undefined);
  }
}
