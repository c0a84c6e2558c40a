import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import * as path from 'node:path';
import { invalidArgument } from '../../core/errors';
import type { MountRequest } from './input';
import type { OciMount } from '../../oci/types';
import type { SpecOpt } from './opts';

/** Files under /proc a bind mount may cover (what runc itself allows, e.g. for lxcfs). */
const PROC_ALLOWED = new Set([
  '/proc/cpuinfo', '/proc/diskstats', '/proc/meminfo', '/proc/stat', '/proc/swaps', '/proc/uptime', '/proc/loadavg',
  '/proc/slabinfo', '/proc/net/dev', '/proc/sys/kernel/ns_last_pid',
]);

/** Checks a container path and returns it normalized; throws InvalidArgument for one that would shadow /, /proc or /sys. */
export function checkContainerPath(p: string): string {
  if (!p || !path.posix.isAbsolute(p)) throw invalidArgument(`mount container path ${JSON.stringify(p)} must be an absolute path`);
  const n = path.posix.normalize(p).replace(/(.)\/+$/, '$1');
  if (n === '/') throw invalidArgument('a mount may not cover the container root "/"');
  if (n === '/proc' || n === '/sys') throw invalidArgument(`mount ${JSON.stringify(p)} would shadow ${n}`);
  if (n.startsWith('/proc/') && !PROC_ALLOWED.has(n)) throw invalidArgument(`mount ${JSON.stringify(p)} would shadow part of /proc`);
  return n;
}

/** OCI options of a CRI bind mount. */
export function bindOptions(m: Pick<MountRequest, 'readonly' | 'propagation' | 'recursiveReadOnly'>, rroSupported = false): string[] {
  const prop = m.propagation ?? 'private';
  const propOpt = { private: 'rprivate', rslave: 'rslave', rshared: 'rshared' }[prop];
  if (!propOpt) throw invalidArgument(`unknown mount propagation ${JSON.stringify(prop)}`);
  const opts = ['rbind', propOpt, m.readonly ? 'ro' : 'rw'];
  if (m.recursiveReadOnly) {
    if (!m.readonly) throw invalidArgument('recursive read-only mount must also be read-only');
    if (prop !== 'private') throw invalidArgument('recursive read-only mount needs private propagation');
    if (!rroSupported) throw invalidArgument('recursive read-only mounts are not supported by this runtime');
    opts.push('rro');
  }
  return opts;
}

const depth = (p: string) => p.split('/').filter(Boolean).length;

/**
 * Request mounts, the pod's files (/etc/hostname, /etc/hosts, /etc/resolv.conf, /dev/shm) and image volumes,
 * over the default mounts: a supplied mount replaces the default with the same destination, a supplied /dev
 * drops the defaults below it, and supplied mounts are ordered parents first.
 */
export const withMounts: SpecOpt = (s, ctx) => {
  const i = ctx.input;
  const ro = !!i.security?.readonlyRootfs;
  const supplied: OciMount[] = [];
  const taken = new Set<string>();

  for (const m of i.mounts ?? []) {
    const dest = checkContainerPath(m.containerPath);
    if (taken.has(dest)) throw invalidArgument(`duplicate mount destination ${JSON.stringify(dest)}`);
    if (!m.hostPath || !path.isAbsolute(m.hostPath)) throw invalidArgument(`mount host path ${JSON.stringify(m.hostPath)} must be an absolute path`);
    try {
      statSync(m.hostPath);
    } catch (e) {
      throw invalidArgument(`mount host path ${JSON.stringify(m.hostPath)} does not exist`, e);
    }
    if (m.selinuxRelabel) ctx.warnings.push(`selinux_relabel ignored for ${dest}: SELinux labelling is not supported on this host`);
    taken.add(dest);
    supplied.push({ destination: dest, type: 'bind', source: m.hostPath, options: bindOptions(m, ctx.host.recursiveReadOnlyMounts) });
    if (m.propagation === 'rshared') s.linux.rootfsPropagation = 'rshared';
    else if (m.propagation === 'rslave' && s.linux.rootfsPropagation !== 'rshared') s.linux.rootfsPropagation = 'rslave';
  }

  const podFiles: [string, string | undefined, boolean][] = [
    ['/etc/hostname', i.pod.hostnamePath, ro],
    ['/etc/hosts', i.pod.hostsPath, ro],
    ['/etc/resolv.conf', i.pod.resolvConfPath, ro],
    ['/dev/shm', i.pod.shmPath, false],
  ];
  for (const [dest, src, readonly] of podFiles) {
    if (!src || taken.has(dest)) continue;
    taken.add(dest);
    const opts = dest === '/dev/shm' ? ['rbind', 'rprivate', 'rw', 'nosuid', 'nodev', 'noexec'] : ['rbind', 'rprivate', readonly ? 'ro' : 'rw'];
    supplied.push({ destination: dest, type: 'bind', source: src, options: opts });
  }

  for (const vol of Object.keys(i.image.Volumes ?? {})) {
    if (!path.posix.isAbsolute(vol)) continue;
    const dest = path.posix.normalize(vol).replace(/(.)\/+$/, '$1');
    if (taken.has(dest)) continue;
    if (!i.volumesDir) {
      ctx.warnings.push(`image volume ${dest} not mounted: no volumes directory configured`);
      continue;
    }
    const hostPath = path.join(i.volumesDir, createHash('sha256').update(dest).digest('hex').slice(0, 32));
    taken.add(dest);
    ctx.imageVolumes.push({ containerPath: dest, hostPath });
    supplied.push({ destination: dest, type: 'bind', source: hostPath, options: ['rbind', 'rprivate', 'rw'] });
  }

  const devSupplied = taken.has('/dev');
  const defaults = s.mounts.filter((m) => !taken.has(m.destination) && !(devSupplied && m.destination.startsWith('/dev/')));
  const ordered = supplied.map((m, idx) => ({ m, idx })).sort((a, b) => depth(a.m.destination) - depth(b.m.destination) || a.idx - b.idx);
  s.mounts = [...defaults, ...ordered.map((x) => x.m)];
};
