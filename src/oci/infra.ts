import {
  applyOpts, baseSpec, withAnnotations, withCgroupsPath, withHostNamespace, withHostname, withMount, withNamespace,
  withOomScoreAdj, withProcessArgs, withReadonlyRootfs, withRootPath, withSeccomp, withSysctls, withUser,
  type SpecOpt,
} from './spec';
import type { OciSeccomp, OciSpec } from './types';

/** Where the pause binary appears inside the infra container. */
export const PAUSE_PATH = '/catatonit';

/** What the infra ("pause") container of a pod needs. Namespace paths are pinned files; absent = host's. */
export interface InfraSpecInput {
  /** Read-only minimal rootfs shared by all infra containers. */
  rootfs: string;
  /** Host path of the static catatonit. */
  catatonit: string;
  hostname: string;
  /** Pinned network namespace file, or undefined for host network. */
  netns?: string;
  ipcns?: string;
  utsns?: string;
  /** 'pod' (own PID namespace; containers may share it) or 'node' (host PID namespace). */
  pid: 'pod' | 'node';
  cgroupsPath: string;
  sysctls: Record<string, string>;
  uid: number;
  gid: number;
  readonlyRootfs: boolean;
  oomScoreAdj?: number;
  seccomp?: OciSeccomp;
  /** The pod's /dev/shm (a tmpfs dir or the host's /dev/shm). */
  shmPath?: string;
  annotations: Record<string, string>;
  /** Infra command from a pause image; absent: the built-in catatonit, bind-mounted at PAUSE_PATH. */
  args?: string[];
}

export function infraSpecOpts(i: InfraSpecInput): SpecOpt[] {
  const opts: SpecOpt[] = [
    withRootPath(i.rootfs),
    withReadonlyRootfs(i.readonlyRootfs),
    ...(i.args
      ? [withProcessArgs(...i.args)]
      : [withProcessArgs(PAUSE_PATH, '-P'), withMount({ destination: PAUSE_PATH, type: 'bind', source: i.catatonit, options: ['rbind', 'ro', 'nosuid', 'nodev'] })]),
    withUser(i.uid, i.gid),
    withCgroupsPath(i.cgroupsPath),
    withSysctls(i.sysctls),
    withOomScoreAdj(i.oomScoreAdj),
    withSeccomp(i.seccomp),
    withAnnotations(i.annotations),
    i.netns ? withNamespace('network', i.netns) : withHostNamespace('network'),
    i.ipcns ? withNamespace('ipc', i.ipcns) : withHostNamespace('ipc'),
    // Host network pods keep the node's hostname (UTS) like kubelet expects.
    i.utsns ? withNamespace('uts', i.utsns) : withHostNamespace('uts'),
    i.pid === 'node' ? withHostNamespace('pid') : withNamespace('pid'),
  ];
  if (i.utsns) opts.push(withHostname(i.hostname));
  if (i.shmPath) opts.push(withMount({ destination: '/dev/shm', type: 'bind', source: i.shmPath, options: ['rbind', 'rw', 'nosuid', 'nodev', 'noexec'] }));
  return opts;
}

export function buildInfraSpec(i: InfraSpecInput): OciSpec {
  return applyOpts(baseSpec(), infraSpecOpts(i));
}

/** Directories the infra rootfs needs as mount points (runc cannot create them in a read-only root). */
export const INFRA_ROOTFS_DIRS = ['proc', 'dev', 'sys', 'etc', 'tmp'];
