import { existsSync, readFileSync } from 'node:fs';
import { mustRestrictOomScoreAdj, readDaemonCapabilities, type DaemonCapabilities } from '../../sys/caps';
import type { HostContext } from './input';

/** The hard RLIMIT_NOFILE of a process from its /proc/<pid>/limits text; undefined when unlimited or absent. */
export function parseNofileHard(limitsText: string): number | undefined {
  const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(limitsText);
  if (!m || m[2] === 'unlimited') return undefined;
  const n = Number(m[2]);
  return Number.isFinite(n) ? n : undefined;
}

export interface DetectOptions {
  cgroupManager: 'cgroupfs' | 'systemd';
  restrictOomScoreAdj: 'auto' | 'true' | 'false';
  procSelf?: string;
  sysRoot?: string;
  caps?: DaemonCapabilities;
}

/** Detects the daemon-wide facts the spec options need; call once at start. */
export function detectHostContext(o: DetectOptions): HostContext {
  const procSelf = o.procSelf ?? '/proc/self';
  const sys = o.sysRoot ?? '/sys';
  const daemonCaps = o.caps ?? readDaemonCapabilities(procSelf);
  let nofileHardLimit: number | undefined;
  try {
    nofileHardLimit = parseNofileHard(readFileSync(`${procSelf}/limits`, 'utf8'));
  } catch {
    nofileHardLimit = undefined;
  }
  const v2 = existsSync(`${sys}/fs/cgroup/cgroup.controllers`);
  const swapAccounting = v2 || existsSync(`${sys}/fs/cgroup/memory/memory.memsw.limit_in_bytes`);
  let apparmorEnabled = false;
  try {
    apparmorEnabled = readFileSync(`${sys}/module/apparmor/parameters/enabled`, 'utf8').trim() === 'Y';
  } catch {
    apparmorEnabled = false;
  }
  return {
    cgroupManager: o.cgroupManager,
    daemonCaps,
    restrictOomScoreAdj: mustRestrictOomScoreAdj(o.restrictOomScoreAdj, daemonCaps),
    nofileHardLimit,
    swapAccounting,
    recursiveReadOnlyMounts: false,
    apparmorEnabled,
    selinuxEnabled: existsSync(`${sys}/fs/selinux/enforce`),
    arch: process.arch,
  };
}
