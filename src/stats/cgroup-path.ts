import * as path from 'node:path';
import { invalidArgument } from '../core/errors';

/**
 * Maps an OCI cgroupsPath (as corral writes it, see src/sys/cgroups.ts) to the directory path of the
 * cgroup relative to a hierarchy root:
 * - cgroupfs driver: "/<parent>/corral-<id>" is already a path;
 * - systemd driver: "<slice>:<prefix>:<name>" is runc's form and maps to "<expanded slice>/<prefix>-<name>.scope".
 */
export function cgroupDirPath(cgroupsPath: string): string {
  if (cgroupsPath.startsWith('/') || !cgroupsPath.includes(':')) {
    if (cgroupsPath.split('/').includes('..')) throw invalidArgument(`cgroup path ${JSON.stringify(cgroupsPath)} escapes the hierarchy`);
    const norm = path.posix.normalize('/' + cgroupsPath);
    return norm.length > 1 ? norm.replace(/\/+$/, '') : norm;
  }
  const parts = cgroupsPath.split(':');
  if (parts.length !== 3) throw invalidArgument(`systemd cgroup path ${JSON.stringify(cgroupsPath)} is not slice:prefix:name`);
  const [slice, prefix, name] = parts;
  if (!name || name.includes('/')) throw invalidArgument(`systemd cgroup path ${JSON.stringify(cgroupsPath)} has a bad unit name`);
  // runc's unit name: a name already ending in .slice is used as is, otherwise "<prefix>-<name>.scope".
  const unit = name.endsWith('.slice') ? name : `${prefix ? `${prefix}-` : ''}${name}.scope`;
  return path.posix.join(expandSlice(slice || 'system.slice'), unit);
}

/**
 * systemd's slice nesting: "a-b-c.slice" lives at "/a.slice/a-b.slice/a-b-c.slice"; "-.slice" is the root.
 * (runc libcontainer/cgroups/systemd ExpandSlice.)
 */
export function expandSlice(slice: string): string {
  const suffix = '.slice';
  if (!slice.endsWith(suffix) || slice.includes('/')) throw invalidArgument(`invalid systemd slice ${JSON.stringify(slice)}`);
  if (slice === '-.slice') return '/';
  const base = slice.slice(0, -suffix.length);
  if (base.includes('--') || base.startsWith('-') || base.endsWith('-')) throw invalidArgument(`invalid systemd slice ${JSON.stringify(slice)}`);
  let out = '';
  let prefix = '';
  for (const component of base.split('-')) {
    const unit = `${prefix}${component}${suffix}`;
    out += '/' + unit;
    prefix += component + '-';
  }
  return out;
}

/**
 * The directory path of a pod's cgroup (kubelet's cgroup_parent) for a driver: cgroupfs parents are paths,
 * systemd parents name a slice ("kubepods-burstable-pod<uid>.slice", possibly with a leading path).
 * Undefined when kubelet gave no parent.
 */
export function podCgroupDirPath(manager: 'cgroupfs' | 'systemd', parent: string): string | undefined {
  if (!parent) return undefined;
  if (manager === 'systemd') return expandSlice(path.posix.basename(parent));
  return cgroupDirPath('/' + parent.replace(/^\/+/, ''));
}
