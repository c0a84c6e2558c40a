/** Domain types of the container service (no protobuf types here). */
import type { DeviceRequest, LinuxResourcesInput, MountRequest, PidMode, ResolvedUser, SecurityInput } from './spec';

export interface ContainerMetadata {
  name: string;
  attempt: number;
}

/** What kubelet asks for in CreateContainer, as a plain domain object. */
export interface ContainerConfig {
  metadata: ContainerMetadata;
  /** Image reference as requested (tag, digest or id). */
  image: string;
  /** The requested image's annotations (reported back in status). */
  imageAnnotations: Record<string, string>;
  command: string[];
  args: string[];
  workingDir: string;
  envs: { key: string; value: string }[];
  mounts: MountRequest[];
  devices: DeviceRequest[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Relative to the sandbox's log directory. */
  logPath: string;
  stdin: boolean;
  stdinOnce: boolean;
  tty: boolean;
  resources?: LinuxResourcesInput;
  security: SecurityInput;
  /** PID namespace mode of the container and, for 'target', the container whose namespace it joins. */
  pidMode: PidMode;
  pidTargetId: string;
  /** Stop signal name ('' = the image's or SIGTERM). */
  stopSignal: string;
}

export type ContainerState = 'creating' | 'created' | 'running' | 'exited';

/** Why a container is exited: kubelet shows these reasons. */
export type ExitReason = 'Completed' | 'Error' | 'OOMKilled' | 'ContainerCannotRun' | '';

/** Resources as persisted and reported (int64 values as decimal strings). */
export interface StoredResources {
  cpuPeriod: string;
  cpuQuota: string;
  cpuShares: string;
  memoryLimitInBytes: string;
  memorySwapLimitInBytes: string;
  oomScoreAdj: string;
  cpusetCpus: string;
  cpusetMems: string;
  hugepageLimits: { pageSize: string; limit: string }[];
  unified: Record<string, string>;
}

/** Where one container's pieces live. */
export interface ContainerPaths {
  /** <root>/containers/<id>: upper and work dirs, image volumes. */
  dir: string;
  upper: string;
  work: string;
  volumes: string;
  /** <run_root>/containers/<id>: the bundle (config.json, conmon's persist files and ctl fifo). */
  bundle: string;
  /** The overlay mount point (bundle/rootfs). */
  rootfs: string;
}

/** The persisted record of one container (<root>/containers/<id>.json). */
export interface ContainerRecord {
  version: 1;
  id: string;
  sandboxId: string;
  /** Pod metadata, for logs and the conmon name. */
  podName: string;
  podNamespace: string;
  config: Omit<ContainerConfig, 'resources' | 'security' | 'envs'>;
  configHash: string;
  imageId: string;
  /** Runtime handler of the sandbox. */
  handler: string;
  /** Full log path (sandbox log_directory + log_path), '' when none. */
  logPath: string;
  paths: ContainerPaths;
  /** Whether the container has its own PID namespace (stop can then rely on the init's exit). */
  ownPidNamespace: boolean;
  cgroupsPath: string;
  state: ContainerState;
  createdAtNs: string;
  startedAtNs: string;
  finishedAtNs: string;
  exitCode: number;
  reason: ExitReason;
  message: string;
  pid: number;
  user: ResolvedUser;
  stopSignal: string;
  resources: StoredResources;
}

/** A filter for ListContainers. */
export interface ContainerFilter {
  /** Id or id prefix. */
  id?: string;
  state?: Exclude<ContainerState, 'creating'> | 'unknown';
  sandboxId?: string;
  labelSelector?: Record<string, string>;
}

export interface ExecSyncResult {
  stdout: Buffer;
  stderr: Buffer;
  exitCode: number;
}
