import type { OciDevice, OciDeviceCgroup, OciMount, OciSpec } from '../../oci/types';

export const DEFAULT_PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** containerd's / moby's default capability set for unprivileged containers. */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
  'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

export const DEFAULT_MASKED_PATHS: readonly string[] = [
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];

export const DEFAULT_READONLY_PATHS: readonly string[] = [
  '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger',
];

/** RLIMIT_NOFILE like containerd (clamped to the daemon's own hard limit when it lacks CAP_SYS_RESOURCE). */
export const DEFAULT_NOFILE = 1048576;

export function defaultMounts(): OciMount[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
  ];
}

const charDev = (path: string, major: number, minor: number): OciDevice => ({ path, type: 'c', major, minor, fileMode: 0o666, uid: 0, gid: 0 });

/** Devices every container gets (runc would create these too; listing them keeps the spec explicit). */
export function defaultDevices(): OciDevice[] {
  return [
    charDev('/dev/null', 1, 3), charDev('/dev/zero', 1, 5), charDev('/dev/full', 1, 7),
    charDev('/dev/random', 1, 8), charDev('/dev/urandom', 1, 9), charDev('/dev/tty', 5, 0),
  ];
}

const allowChar = (major: number | undefined, minor: number | undefined, access = 'rwm'): OciDeviceCgroup => ({
  allow: true, type: 'c', ...(major !== undefined ? { major } : {}), ...(minor !== undefined ? { minor } : {}), access,
});

/** Device cgroup rules: deny all, then mknod of anything and the default devices, console, ptmx and ptys. */
export function defaultDeviceRules(): OciDeviceCgroup[] {
  return [
    { allow: false, access: 'rwm' },
    { allow: true, type: 'c', access: 'm' },
    { allow: true, type: 'b', access: 'm' },
    allowChar(1, 3), allowChar(1, 5), allowChar(1, 7), allowChar(1, 8), allowChar(1, 9),
    allowChar(5, 0), allowChar(5, 1), allowChar(5, 2), allowChar(136, undefined),
  ];
}

/** The starting point every container spec is built from. */
export function baseContainerSpec(): OciSpec {
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: [],
      env: [DEFAULT_PATH_ENV],
      cwd: '/',
      capabilities: {
        bounding: [...DEFAULT_CAPABILITIES],
        effective: [...DEFAULT_CAPABILITIES],
        inheritable: [],
        permitted: [...DEFAULT_CAPABILITIES],
        ambient: [],
      },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: DEFAULT_NOFILE, soft: DEFAULT_NOFILE }],
      noNewPrivileges: false,
    },
    root: { path: 'rootfs', readonly: false },
    mounts: defaultMounts(),
    linux: {
      namespaces: [{ type: 'mount' }],
      devices: defaultDevices(),
      resources: { devices: defaultDeviceRules() },
      maskedPaths: [...DEFAULT_MASKED_PATHS],
      readonlyPaths: [...DEFAULT_READONLY_PATHS],
    },
  };
}
