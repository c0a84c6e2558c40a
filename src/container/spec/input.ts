import type { DaemonCapabilities } from '../../sys/caps';

/** The parts of an OCI image config the spec builder reads (image-spec `config` object). */
export interface ImageProcessConfig {
  User?: string;
  Env?: string[] | null;
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  WorkingDir?: string;
  StopSignal?: string;
  Volumes?: Record<string, unknown> | null;
}

export type MountPropagation = 'private' | 'rslave' | 'rshared';

export interface MountRequest {
  containerPath: string;
  hostPath: string;
  readonly?: boolean;
  /** Needs `recursive_read_only` support from the runtime (runc >= 1.2); refused otherwise. */
  recursiveReadOnly?: boolean;
  propagation?: MountPropagation;
  /** Accepted; with SELinux off it only yields a warning. */
  selinuxRelabel?: boolean;
}

export interface DeviceRequest {
  containerPath: string;
  hostPath: string;
  /** Any of r, w, m; empty means "rwm". */
  permissions?: string;
}

/** CRI `NamespaceMode` for the PID namespace. */
export type PidMode = 'pod' | 'container' | 'node' | 'target';

export interface NamespaceInput {
  /** Pinned network namespace of the pod; undefined = host network. */
  network?: string;
  /** Pinned IPC namespace of the pod; undefined = host IPC. */
  ipc?: string;
  /** Pinned UTS namespace of the pod; undefined = host UTS. */
  uts?: string;
  pidMode: PidMode;
  /** The pod's (pod mode) or the target container's (target mode) PID namespace path, e.g. /proc/<pid>/ns/pid. */
  pidPath?: string;
}

export interface LinuxResourcesInput {
  cpuPeriod?: bigint;
  cpuQuota?: bigint;
  cpuShares?: bigint;
  cpusetCpus?: string;
  cpusetMems?: string;
  memoryLimitInBytes?: bigint;
  memorySwapLimitInBytes?: bigint;
  oomScoreAdj?: bigint;
  hugepageLimits?: { pageSize: string; limit: bigint }[];
  unified?: Record<string, string>;
}

export type SecurityProfile =
  | { kind: 'RuntimeDefault' }
  | { kind: 'Unconfined' }
  | { kind: 'Localhost'; localhostRef: string };

export interface SecurityInput {
  privileged?: boolean;
  capabilities?: { add?: string[]; drop?: string[]; addAmbient?: string[] };
  noNewPrivs?: boolean;
  readonlyRootfs?: boolean;
  /** undefined = defaults; [] = nothing masked (kubelet's procMount: Unmasked). */
  maskedPaths?: string[];
  readonlyPaths?: string[];
  runAsUser?: bigint;
  runAsGroup?: bigint;
  runAsUsername?: string;
  supplementalGroups?: bigint[];
  supplementalGroupsPolicy?: 'Merge' | 'Strict';
  /** undefined = Unconfined (containerd's behaviour when kubelet sends nothing). */
  seccomp?: SecurityProfile;
  apparmor?: SecurityProfile;
  selinux?: { user?: string; role?: string; type?: string; level?: string };
}

/** What the pod supplies: its files, namespaces, cgroup and sysctls. */
export interface PodInput {
  id: string;
  name?: string;
  namespace?: string;
  uid?: string;
  /** Pod hostname (HOSTNAME env); empty = the host's. */
  hostname: string;
  /** Host paths of the pod's files bind-mounted into each container (skipped when absent or overridden). */
  hostnamePath?: string;
  hostsPath?: string;
  resolvConfPath?: string;
  shmPath?: string;
  namespaces: NamespaceInput;
  /** The pod's cgroup parent as kubelet gave it ('' = none). */
  cgroupParent: string;
  sysctls?: Record<string, string>;
  privileged?: boolean;
}

/** Everything needed to generate a container's OCI spec: plain domain values, no protobuf. */
export interface ContainerSpecInput {
  id: string;
  name: string;
  attempt?: number;
  /** Reference the container was created from (annotation only). */
  imageName?: string;
  image: ImageProcessConfig;
  /**
   * The image root for /etc/passwd and /etc/group lookups: one directory, or overlay lowerdirs top layer first
   * (the first layer holding the file wins).
   */
  imageRoot: string | string[];
  /** root.path written into the spec (bundle-relative "rootfs" or an absolute mounted path). */
  rootfsPath: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  envs?: { key: string; value: string }[];
  tty?: boolean;
  stdin?: boolean;
  stdinOnce?: boolean;
  mounts?: MountRequest[];
  devices?: DeviceRequest[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  /** Stop signal name from the request ('' or undefined = the image's, else SIGTERM). */
  stopSignal?: string;
  resources?: LinuxResourcesInput;
  security?: SecurityInput;
  pod: PodInput;
  /**
   * Directory under which image VOLUMEs not covered by a request mount get a per-volume host dir
   * (the caller creates the returned `imageVolumes[].hostPath` dirs before starting).
   */
  volumesDir?: string;
}

/** Daemon-wide facts and settings the options consult (detected once at start). */
export interface HostContext {
  cgroupManager: 'cgroupfs' | 'systemd';
  daemonCaps: DaemonCapabilities;
  /** Clamp oom_score_adj to the daemon's own value (restrict_oom_score_adj resolved to a boolean). */
  restrictOomScoreAdj: boolean;
  /** The daemon's RLIMIT_NOFILE hard limit: without CAP_SYS_RESOURCE nothing higher can be set. */
  nofileHardLimit?: number;
  /** Whether memory+swap limits can be set (cgroup v1 memory.memsw.* present, or v2). */
  swapAccounting: boolean;
  /** Runtime supports "rro" mount options (runc >= 1.2). */
  recursiveReadOnlyMounts?: boolean;
  apparmorEnabled?: boolean;
  selinuxEnabled?: boolean;
  /** Host /dev scanned for privileged containers (tests point it elsewhere). */
  hostDevDir?: string;
  /** process.arch of the host; selects the seccomp architecture map. */
  arch?: string;
}

/** The resolved user, also reported by ContainerStatus. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  supplementalGroups: number[];
}

export interface ContainerSpecResult {
  spec: import('../../oci/types').OciSpec;
  user: ResolvedUser;
  stopSignal: string;
  /** Host dirs the caller must create (image VOLUMEs). */
  imageVolumes: { containerPath: string; hostPath: string }[];
  /** Things accepted but not applied (e.g. AppArmor requested on a host without it), to log once. */
  warnings: string[];
}
