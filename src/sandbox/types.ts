/** Domain types of the pod sandbox service (no protobuf types here). */

export type NamespaceMode = 'pod' | 'container' | 'node' | 'target';
export type Protocol = 'tcp' | 'udp' | 'sctp';

export interface PodMetadata {
  name: string;
  namespace: string;
  uid: string;
  attempt: number;
}

export interface PortMapping {
  protocol: Protocol;
  containerPort: number;
  hostPort: number;
  hostIp: string;
}

export interface DnsConfig {
  servers: string[];
  searches: string[];
  options: string[];
}

export type SeccompProfile = { type: 'unconfined' } | { type: 'runtime-default' } | { type: 'localhost'; path: string };

/** What kubelet asks for in RunPodSandbox, as a plain domain object. */
export interface PodSandboxSpec {
  metadata: PodMetadata;
  hostname: string;
  logDirectory: string;
  /** Undefined: the node's resolv.conf is used. */
  dns?: DnsConfig;
  portMappings: PortMapping[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  cgroupParent: string;
  sysctls: Record<string, string>;
  namespaces: { network: NamespaceMode; pid: NamespaceMode; ipc: NamespaceMode; targetId: string };
  runAsUser?: number;
  runAsGroup?: number;
  supplementalGroups: number[];
  readonlyRootfs: boolean;
  privileged: boolean;
  seccomp: SeccompProfile;
  /** Runtime handler name as requested ('' = the default handler). */
  runtimeHandler: string;
}

export type SandboxState = 'creating' | 'ready' | 'notready';

export interface PhaseTimings {
  namespacesMs?: number;
  cniAddMs?: number;
  infraStartMs?: number;
  totalMs?: number;
}

/** Where a sandbox's pieces live; the containers area joins these. */
export interface SandboxPaths {
  dir: string;
  bundle: string;
  netns?: string;
  ipcns?: string;
  utsns?: string;
  /** The pod's /dev/shm: a tmpfs mount under dir, or /dev/shm for host-IPC pods. */
  shm: string;
  /** Whether `shm` is our own mount (to unmount on stop). */
  shmMounted: boolean;
  resolvConf: string;
  hosts: string;
  hostname: string;
  infraLog: string;
}

/** The persisted record of one sandbox (<root>/sandboxes/<id>.json). */
export interface SandboxRecord {
  version: 1;
  id: string;
  spec: PodSandboxSpec;
  /** Resolved runtime handler name. */
  handler: string;
  configHash: string;
  state: SandboxState;
  createdAtNs: string;
  stoppedAtNs?: string;
  paths: SandboxPaths;
  cgroupsPath: string;
  /** Pid of the infra process (catatonit) in the host PID namespace; 0 when not running. */
  pid: number;
  ips: string[];
  network?: string;
  cniResult?: unknown;
  timings: PhaseTimings;
  /** The pause image the infra runs from (runtime.pause_image at creation); absent: the built-in catatonit. */
  infraImage?: string;
}

/** A filter for ListPodSandbox. */
export interface SandboxFilter {
  /** Id or id prefix. */
  id?: string;
  state?: 'ready' | 'notready';
  labelSelector?: Record<string, string>;
}
