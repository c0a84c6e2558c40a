import { readFileSync } from 'node:fs';

/** Linux capability names by bit number (as in linux/capability.h). */
export const CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN',
  'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE',
  'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP',
  'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ',
  'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
] as const;

/** Decodes a hex capability mask (as in /proc/<pid>/status) into capability names. */
export function decodeCapMask(hex: string): Set<string> {
  const mask = BigInt('0x' + hex.trim());
  const out = new Set<string>();
  CAPABILITIES.forEach((name, bit) => {
    if (mask & (1n << BigInt(bit))) out.add(name);
  });
  return out;
}

/** What the daemon itself may grant and set; read once at start and passed to spec builders. */
export interface DaemonCapabilities {
  /** Effective capability names of the daemon process. */
  effective: Set<string>;
  /** The daemon's own oom_score_adj: without CAP_SYS_RESOURCE nothing lower can be set. */
  ownOomScoreAdj: number;
}

/** Parses the CapEff line of a /proc/<pid>/status text. */
export function parseCapEff(statusText: string): Set<string> {
  const m = /^CapEff:\s*([0-9a-fA-F]+)$/m.exec(statusText);
  if (!m) throw new Error('no CapEff line in status');
  return decodeCapMask(m[1]);
}

export function readDaemonCapabilities(procDir = '/proc/self'): DaemonCapabilities {
  const effective = parseCapEff(readFileSync(`${procDir}/status`, 'utf8'));
  let ownOomScoreAdj = 0;
  try {
    ownOomScoreAdj = Number(readFileSync(`${procDir}/oom_score_adj`, 'utf8').trim()) || 0;
  } catch {
    ownOomScoreAdj = 0;
  }
  return { effective, ownOomScoreAdj };
}

/**
 * Whether oom_score_adj must be clamped: setting `restrict_oom_score_adj` ('auto' means: when the daemon
 * lacks CAP_SYS_RESOURCE).
 */
export function mustRestrictOomScoreAdj(setting: 'auto' | 'true' | 'false', caps: DaemonCapabilities): boolean {
  if (setting === 'true') return true;
  if (setting === 'false') return false;
  return !caps.effective.has('CAP_SYS_RESOURCE');
}

/** Clamps a requested oom_score_adj to [own value, 1000] (the kernel refuses lower values without CAP_SYS_RESOURCE). */
export function clampOomScoreAdj(requested: number, caps: DaemonCapabilities): number {
  return Math.min(1000, Math.max(requested, caps.ownOomScoreAdj));
}

/** Splits requested capabilities into those the daemon holds (grantable) and those it lacks (dropped). */
export function grantableCapabilities(requested: readonly string[], caps: DaemonCapabilities): { granted: string[]; dropped: string[] } {
  const granted: string[] = [];
  const dropped: string[] = [];
  for (const c of requested) (caps.effective.has(c) ? granted : dropped).push(c);
  return { granted, dropped };
}

/**
 * A warning sink that logs each distinct message once (the daemon would otherwise warn on every container).
 */
export function onceWarner(warn: (msg: string, fields?: Record<string, unknown>) => void): (key: string, msg: string, fields?: Record<string, unknown>) => void {
  const seen = new Set<string>();
  return (key, msg, fields) => {
    if (seen.has(key)) return;
    seen.add(key);
    warn(msg, fields);
  };
}
