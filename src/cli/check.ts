import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { CorralConfig } from '../config/schema';
import { isExecutable } from '../daemon/preflight';
import { run } from '../sys/exec';

export interface CheckResult {
  name: string;
  ok: boolean;
  detail: string;
  /** How to fix it, when not ok. */
  fix?: string;
}

const CNI_PLUGINS = ['bridge', 'host-local', 'portmap', 'loopback'];

async function versionOf(bin: string, args: string[] = ['--version']): Promise<string> {
  try {
    const r = await run(bin, args, { timeoutMs: 10_000, allowFailure: true });
    return (r.stdout || r.stderr).split('\n')[0].trim();
  } catch {
    return '';
  }
}

async function binary(name: string, file: string, pkg: string, args?: string[]): Promise<CheckResult> {
  if (!isExecutable(file)) return { name, ok: false, detail: `${file} not found`, fix: `apt-get install ${pkg}` };
  return { name, ok: true, detail: `${file} ${await versionOf(file, args)}`.trim() };
}

/** Cgroup layout: v2 unified, v1 (possibly with a v2 hierarchy beside it), and the controllers corral needs. */
export function cgroupLayout(): { version: 'v1' | 'v2' | 'none'; missing: string[] } {
  if (existsSync('/sys/fs/cgroup/cgroup.controllers')) {
    const ctl = readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8').trim().split(/\s+/);
    return { version: 'v2', missing: ['cpu', 'memory', 'pids'].filter((c) => !ctl.includes(c)) };
  }
  const mounts = existsSync('/proc/self/mounts') ? readFileSync('/proc/self/mounts', 'utf8') : '';
  const v1 = mounts.split('\n').filter((l) => l.split(' ')[2] === 'cgroup');
  if (v1.length === 0) return { version: 'none', missing: ['cpu', 'memory', 'pids'] };
  const have = new Set(v1.flatMap((l) => l.split(' ')[3].split(',')));
  return { version: 'v1', missing: ['cpu', 'cpuacct', 'memory', 'pids', 'devices', 'freezer'].filter((c) => !have.has(c)) };
}

/** Everything corral needs on the host, each with what is missing and how to install it. */
export async function checkHost(c: CorralConfig): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  for (const [name, h] of Object.entries(c.runtime.handlers)) results.push(await binary(`runtime handler ${name}`, h.path, 'runc'));
  results.push(await binary('conmon', c.runtime.conmon, 'conmon'));
  if (!c.runtime.pause_image) results.push(await binary('catatonit (built-in pause)', c.runtime.catatonit, 'catatonit'));
  for (const p of CNI_PLUGINS) {
    const found = c.cni.plugin_dirs.map((d) => path.join(d, p)).find(isExecutable);
    results.push(found
      ? { name: `CNI plugin ${p}`, ok: true, detail: found }
      : { name: `CNI plugin ${p}`, ok: false, detail: `not in ${c.cni.plugin_dirs.join(', ')}`, fix: 'apt-get install containernetworking-plugins' });
  }
  for (const [bin, pkg] of [['iptables', 'iptables'], ['unshare', 'util-linux'], ['nsenter', 'util-linux'], ['mount', 'mount']] as const) {
    const found = ['/usr/sbin', '/usr/bin', '/sbin', '/bin'].map((d) => path.join(d, bin)).find(isExecutable);
    results.push(found ? { name: bin, ok: true, detail: found } : { name: bin, ok: false, detail: 'not found in PATH', fix: `apt-get install ${pkg}` });
  }
  const fsTypes = existsSync('/proc/filesystems') ? readFileSync('/proc/filesystems', 'utf8') : '';
  results.push(/\boverlay\b/.test(fsTypes)
    ? { name: 'overlayfs', ok: true, detail: 'supported by the kernel' }
    : { name: 'overlayfs', ok: false, detail: 'not in /proc/filesystems', fix: 'modprobe overlay' });
  const cg = cgroupLayout();
  results.push(cg.version !== 'none' && cg.missing.length === 0
    ? { name: 'cgroups', ok: true, detail: `${cg.version}, driver ${c.runtime.cgroup_manager}` }
    : { name: 'cgroups', ok: false, detail: cg.version === 'none' ? 'no cgroup hierarchy mounted' : `${cg.version}: missing controllers ${cg.missing.join(', ')}`, fix: 'mount the cgroup hierarchy and enable the missing controllers' });
  let cniConf = '';
  for (const d of c.cni.conf_dirs) {
    try {
      const names = (await import('node:fs')).readdirSync(d).filter((n) => /\.(conf|conflist|json)$/.test(n)).sort();
      if (names.length > 0) {
        cniConf = path.join(d, names[0]);
        break;
      }
    } catch {
      // missing dir: keep looking
    }
  }
  results.push(cniConf
    ? { name: 'CNI config', ok: true, detail: cniConf }
    : { name: 'CNI config', ok: false, detail: `no .conf/.conflist in ${c.cni.conf_dirs.join(', ')} (pods stay NotReady until one appears)`, fix: 'install a CNI config, e.g. the bridge example in the README' });
  return results;
}

export function formatCheck(results: CheckResult[]): string {
  return results
    .map((r) => `${r.ok ? 'ok     ' : 'MISSING'} ${r.name}: ${r.detail}${r.ok || !r.fix ? '' : `\n        fix: ${r.fix}`}`)
    .join('\n') + '\n';
}
