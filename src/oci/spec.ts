import type { OciMount, OciNamespace, OciSeccomp, OciSpec } from './types';

/** A composable spec option: mutates the spec (containerd's SpecOpts, in TS). */
export type SpecOpt = (s: OciSpec) => void;

export function applyOpts(s: OciSpec, opts: readonly SpecOpt[]): OciSpec {
  for (const o of opts) o(s);
  return s;
}

/** A minimal spec: no capabilities, read-only rootfs, the usual /proc, /dev, /sys mounts, new mount namespace. */
export function baseSpec(): OciSpec {
  return {
    ociVersion: '1.0.2',
    process: {
      user: { uid: 0, gid: 0 },
      args: [],
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      cwd: '/',
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      noNewPrivileges: true,
    },
    root: { path: 'rootfs', readonly: true },
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ],
    linux: {
      namespaces: [{ type: 'mount' }],
      maskedPaths: [
        '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}

/** Joins (path given) or creates (no path) a namespace; replaces an earlier entry of the same type. */
export const withNamespace = (type: OciNamespace['type'], nsPath?: string): SpecOpt => (s) => {
  s.linux.namespaces = s.linux.namespaces.filter((n) => n.type !== type);
  s.linux.namespaces.push(nsPath ? { type, path: nsPath } : { type });
};

/** Removes a namespace entry: the container shares the host's. */
export const withHostNamespace = (type: OciNamespace['type']): SpecOpt => (s) => {
  s.linux.namespaces = s.linux.namespaces.filter((n) => n.type !== type);
};

export const withProcessArgs = (...args: string[]): SpecOpt => (s) => {
  s.process.args = args;
};

export const withHostname = (hostname: string): SpecOpt => (s) => {
  if (hostname) s.hostname = hostname;
};

export const withCgroupsPath = (p: string): SpecOpt => (s) => {
  s.linux.cgroupsPath = p;
};

export const withSysctls = (sysctls: Record<string, string>): SpecOpt => (s) => {
  if (Object.keys(sysctls).length > 0) s.linux.sysctl = { ...s.linux.sysctl, ...sysctls };
};

export const withUser = (uid: number, gid: number, additionalGids: number[] = []): SpecOpt => (s) => {
  s.process.user = { uid, gid, ...(additionalGids.length > 0 ? { additionalGids } : {}) };
};

export const withReadonlyRootfs = (ro: boolean): SpecOpt => (s) => {
  s.root.readonly = ro;
};

export const withRootPath = (p: string): SpecOpt => (s) => {
  s.root.path = p;
};

export const withMount = (m: OciMount): SpecOpt => (s) => {
  s.mounts = s.mounts.filter((x) => x.destination !== m.destination);
  s.mounts.push(m);
};

export const withOomScoreAdj = (v: number | undefined): SpecOpt => (s) => {
  if (v !== undefined) s.process.oomScoreAdj = v;
};

export const withAnnotations = (a: Record<string, string>): SpecOpt => (s) => {
  s.annotations = { ...s.annotations, ...a };
};

export const withSeccomp = (p: OciSeccomp | undefined): SpecOpt => (s) => {
  if (p) s.linux.seccomp = p;
  else delete s.linux.seccomp;
};

/** Drops /proc and /sys masking (privileged pods). */
export const withoutMasking: SpecOpt = (s) => {
  s.linux.maskedPaths = [];
  s.linux.readonlyPaths = [];
};
