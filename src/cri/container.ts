import { invalidArgument, unimplemented } from '../core/errors';
import type { ContainerService } from '../container/service';
import type { LinuxResourcesInput, MountPropagation, PidMode, SecurityInput, SecurityProfile } from '../container/spec';
import type { ContainerConfig, ContainerFilter, ContainerRecord, StoredResources } from '../container/types';
import type { HandlerSet, UnaryHandler } from './types';
import type { ContainerConfig__Output } from '../../cri-api/generated/runtime/v1/ContainerConfig';
import type { ContainerFilter__Output } from '../../cri-api/generated/runtime/v1/ContainerFilter';
import type { ContainerStatus } from '../../cri-api/generated/runtime/v1/ContainerStatus';
import type { Container } from '../../cri-api/generated/runtime/v1/Container';
import type { CreateContainerRequest__Output } from '../../cri-api/generated/runtime/v1/CreateContainerRequest';
import type { CreateContainerResponse } from '../../cri-api/generated/runtime/v1/CreateContainerResponse';
import type { StartContainerRequest__Output } from '../../cri-api/generated/runtime/v1/StartContainerRequest';
import type { StopContainerRequest__Output } from '../../cri-api/generated/runtime/v1/StopContainerRequest';
import type { RemoveContainerRequest__Output } from '../../cri-api/generated/runtime/v1/RemoveContainerRequest';
import type { ContainerStatusRequest__Output } from '../../cri-api/generated/runtime/v1/ContainerStatusRequest';
import type { ContainerStatusResponse } from '../../cri-api/generated/runtime/v1/ContainerStatusResponse';
import type { ListContainersRequest__Output } from '../../cri-api/generated/runtime/v1/ListContainersRequest';
import type { ListContainersResponse } from '../../cri-api/generated/runtime/v1/ListContainersResponse';
import type { ExecSyncRequest__Output } from '../../cri-api/generated/runtime/v1/ExecSyncRequest';
import type { ExecSyncResponse } from '../../cri-api/generated/runtime/v1/ExecSyncResponse';
import type { UpdateContainerResourcesRequest__Output } from '../../cri-api/generated/runtime/v1/UpdateContainerResourcesRequest';
import type { ReopenContainerLogRequest__Output } from '../../cri-api/generated/runtime/v1/ReopenContainerLogRequest';
import type { LinuxContainerResources__Output } from '../../cri-api/generated/runtime/v1/LinuxContainerResources';
import type { LinuxContainerSecurityContext__Output } from '../../cri-api/generated/runtime/v1/LinuxContainerSecurityContext';
import type { SecurityProfile__Output } from '../../cri-api/generated/runtime/v1/SecurityProfile';
import type { ContainerState } from '../../cri-api/generated/runtime/v1/ContainerState';
import { Signal } from '../../cri-api/generated/runtime/v1/Signal';

const PROPAGATION: Record<string, MountPropagation> = {
  PROPAGATION_PRIVATE: 'private',
  PROPAGATION_HOST_TO_CONTAINER: 'rslave',
  PROPAGATION_BIDIRECTIONAL: 'rshared',
};
const PROPAGATION_BACK: Record<MountPropagation, 'PROPAGATION_PRIVATE' | 'PROPAGATION_HOST_TO_CONTAINER' | 'PROPAGATION_BIDIRECTIONAL'> = {
  private: 'PROPAGATION_PRIVATE',
  rslave: 'PROPAGATION_HOST_TO_CONTAINER',
  rshared: 'PROPAGATION_BIDIRECTIONAL',
};

/** An int64 decimal string as bigint; InvalidArgument for anything else. */
function int64(v: string | undefined, what: string): bigint {
  if (v === undefined || v === '') return 0n;
  if (!/^-?\d+$/.test(v)) throw invalidArgument(`${what}: ${JSON.stringify(v)} is not an integer`);
  return BigInt(v);
}

export function toResources(r: LinuxContainerResources__Output | null | undefined): LinuxResourcesInput | undefined {
  if (!r) return undefined;
  return {
    cpuPeriod: int64(r.cpu_period, 'cpu_period'),
    cpuQuota: int64(r.cpu_quota, 'cpu_quota'),
    cpuShares: int64(r.cpu_shares, 'cpu_shares'),
    memoryLimitInBytes: int64(r.memory_limit_in_bytes, 'memory_limit_in_bytes'),
    memorySwapLimitInBytes: int64(r.memory_swap_limit_in_bytes, 'memory_swap_limit_in_bytes'),
    oomScoreAdj: int64(r.oom_score_adj, 'oom_score_adj'),
    cpusetCpus: r.cpuset_cpus,
    cpusetMems: r.cpuset_mems,
    hugepageLimits: (r.hugepage_limits ?? []).map((h) => ({ pageSize: h.page_size, limit: int64(h.limit, 'hugepage limit') })),
    unified: r.unified ?? {},
  };
}

/** SecurityProfile (or the deprecated *_profile_path string) → domain profile; undefined when nothing was asked. */
function profileOf(p: SecurityProfile__Output | null | undefined, legacy: string, what: string): SecurityProfile | undefined {
  if (p) {
    if (p.profile_type === 'RuntimeDefault') return { kind: 'RuntimeDefault' };
    if (p.profile_type === 'Localhost') {
      if (!p.localhost_ref) throw invalidArgument(`${what}: Localhost profile needs localhost_ref`);
      return { kind: 'Localhost', localhostRef: p.localhost_ref };
    }
    return { kind: 'Unconfined' };
  }
  if (!legacy) return undefined;
  if (legacy === 'runtime/default' || legacy === 'docker/default') return { kind: 'RuntimeDefault' };
  if (legacy === 'unconfined') return { kind: 'Unconfined' };
  if (legacy.startsWith('localhost/')) return { kind: 'Localhost', localhostRef: legacy.slice('localhost/'.length) };
  throw invalidArgument(`${what}: unknown profile ${JSON.stringify(legacy)}`);
}

function toSecurity(sc: LinuxContainerSecurityContext__Output | null | undefined): SecurityInput {
  if (!sc) return {};
  const sel = sc.selinux_options;
  return {
    privileged: sc.privileged,
    capabilities: sc.capabilities
      ? { add: sc.capabilities.add_capabilities, drop: sc.capabilities.drop_capabilities, addAmbient: sc.capabilities.add_ambient_capabilities }
      : undefined,
    noNewPrivs: sc.no_new_privs,
    readonlyRootfs: sc.readonly_rootfs,
    // proto3 cannot tell an empty list from none: empty means the defaults (as containerd does).
    maskedPaths: sc.masked_paths?.length ? sc.masked_paths : undefined,
    readonlyPaths: sc.readonly_paths?.length ? sc.readonly_paths : undefined,
    runAsUser: sc.run_as_user ? int64(sc.run_as_user.value, 'run_as_user') : undefined,
    runAsGroup: sc.run_as_group ? int64(sc.run_as_group.value, 'run_as_group') : undefined,
    runAsUsername: sc.run_as_username || undefined,
    supplementalGroups: (sc.supplemental_groups ?? []).map((g) => int64(g, 'supplemental_groups')),
    supplementalGroupsPolicy: sc.supplemental_groups_policy === 'Strict' ? 'Strict' : 'Merge',
    seccomp: profileOf(sc.seccomp, sc.seccomp_profile_path, 'seccomp'),
    apparmor: profileOf(sc.apparmor, sc.apparmor_profile, 'apparmor'),
    selinux: sel && (sel.user || sel.role || sel.type || sel.level) ? { user: sel.user, role: sel.role, type: sel.type, level: sel.level } : undefined,
  };
}

/** ContainerConfig (decoded) → domain config. Structural checks only; the service validates the rest. */
export function toContainerConfig(c: ContainerConfig__Output | null): ContainerConfig {
  if (!c) throw invalidArgument('CreateContainerRequest.config is required');
  if (!c.metadata) throw invalidArgument('ContainerConfig.metadata is required');
  const sc = c.linux?.security_context ?? null;
  const ns = sc?.namespace_options;
  if (ns?.userns_options && ns.userns_options.mode === 'POD') throw invalidArgument('user namespaces are not supported');
  if ((c.CDI_devices ?? []).length > 0) throw unimplemented('CDI devices are not supported');
  return {
    metadata: { name: c.metadata.name, attempt: c.metadata.attempt },
    image: c.image?.image?.trim() ?? '',
    imageAnnotations: c.image?.annotations ?? {},
    command: c.command ?? [],
    args: c.args ?? [],
    workingDir: c.working_dir ?? '',
    envs: (c.envs ?? []).map((e) => ({ key: e.key, value: Buffer.isBuffer(e.value) ? e.value.toString('utf8') : String(e.value ?? '') })),
    mounts: (c.mounts ?? []).map((m) => {
      if (m.image?.image) throw unimplemented(`image volume mounts are not supported (${m.container_path})`);
      if ((m.uidMappings ?? []).length > 0 || (m.gidMappings ?? []).length > 0) throw invalidArgument(`id-mapped mounts are not supported (${m.container_path})`);
      const propagation = PROPAGATION[m.propagation ?? 'PROPAGATION_PRIVATE'];
      if (!propagation) throw invalidArgument(`unknown mount propagation ${JSON.stringify(m.propagation)}`);
      return { containerPath: m.container_path, hostPath: m.host_path, readonly: m.readonly, recursiveReadOnly: m.recursive_read_only, propagation, selinuxRelabel: m.selinux_relabel };
    }),
    devices: (c.devices ?? []).map((dv) => ({ containerPath: dv.container_path, hostPath: dv.host_path, permissions: dv.permissions })),
    labels: c.labels ?? {},
    annotations: c.annotations ?? {},
    logPath: c.log_path ?? '',
    stdin: !!c.stdin,
    stdinOnce: !!c.stdin_once,
    tty: !!c.tty,
    resources: toResources(c.linux?.resources),
    security: toSecurity(sc),
    pidMode: pidModeOf(ns?.pid),
    pidTargetId: ns?.target_id ?? '',
    stopSignal: c.stop_signal && c.stop_signal !== 'RUNTIME_DEFAULT' ? String(c.stop_signal) : '',
  };
}

const STATES: Record<string, ContainerState> = {
  created: 'CONTAINER_CREATED',
  running: 'CONTAINER_RUNNING',
  exited: 'CONTAINER_EXITED',
};
const stateOf = (r: ContainerRecord) => STATES[r.state] ?? 'CONTAINER_UNKNOWN';

function toFilter(f: ContainerFilter__Output | null): ContainerFilter | undefined {
  if (!f) return undefined;
  const byState: Record<string, ContainerFilter['state']> = {
    CONTAINER_CREATED: 'created', CONTAINER_RUNNING: 'running', CONTAINER_EXITED: 'exited', CONTAINER_UNKNOWN: 'unknown',
  };
  return {
    id: f.id || undefined,
    sandboxId: f.pod_sandbox_id || undefined,
    state: f.state ? byState[f.state.state] : undefined,
    labelSelector: f.label_selector && Object.keys(f.label_selector).length ? f.label_selector : undefined,
  };
}

function criResources(r: StoredResources) {
  return {
    linux: {
      cpu_period: r.cpuPeriod,
      cpu_quota: r.cpuQuota,
      cpu_shares: r.cpuShares,
      memory_limit_in_bytes: r.memoryLimitInBytes,
      memory_swap_limit_in_bytes: r.memorySwapLimitInBytes,
      oom_score_adj: r.oomScoreAdj,
      cpuset_cpus: r.cpusetCpus,
      cpuset_mems: r.cpusetMems,
      hugepage_limits: r.hugepageLimits.map((h) => ({ page_size: h.pageSize, limit: h.limit })),
      unified: r.unified,
    },
  };
}

const imageSpec = (r: ContainerRecord) => ({ image: r.config.image, annotations: r.config.imageAnnotations, user_specified_image: r.config.image });

export function toCriStatus(r: ContainerRecord): ContainerStatus {
  return {
    id: r.id,
    metadata: { ...r.config.metadata },
    state: stateOf(r),
    created_at: r.createdAtNs,
    started_at: r.startedAtNs,
    finished_at: r.finishedAtNs,
    exit_code: r.exitCode,
    image: imageSpec(r),
    image_ref: r.imageId,
    image_id: r.imageId,
    reason: r.reason,
    message: r.message,
    labels: r.config.labels,
    annotations: r.config.annotations,
    mounts: r.config.mounts.map((m) => ({
      container_path: m.containerPath,
      host_path: m.hostPath,
      readonly: !!m.readonly,
      selinux_relabel: !!m.selinuxRelabel,
      propagation: PROPAGATION_BACK[m.propagation ?? 'private'],
      recursive_read_only: !!m.recursiveReadOnly,
    })),
    log_path: r.logPath,
    resources: criResources(r.resources),
    user: { linux: { uid: String(r.user.uid), gid: String(r.user.gid), supplemental_groups: r.user.supplementalGroups.map(String) } },
    stop_signal: r.stopSignal in Signal ? (r.stopSignal as keyof typeof Signal) : 'RUNTIME_DEFAULT',
  };
}

export function toCriContainer(r: ContainerRecord): Container {
  return {
    id: r.id,
    pod_sandbox_id: r.sandboxId,
    metadata: { ...r.config.metadata },
    image: imageSpec(r),
    image_ref: r.imageId,
    image_id: r.imageId,
    state: stateOf(r),
    created_at: r.createdAtNs,
    labels: r.config.labels,
    annotations: r.config.annotations,
  };
}

/** Seconds (int64 string) → ms; negative is InvalidArgument. */
function seconds(v: string, what: string): number {
  const n = int64(v, what);
  if (n < 0n) throw invalidArgument(`${what} must not be negative`);
  return Number(n);
}

/** CRI handlers of the container half of RuntimeService. */
export function containerHandlers(svc: ContainerService): HandlerSet {
  const CreateContainer: UnaryHandler<CreateContainerRequest__Output, CreateContainerResponse> = async (req) => ({
    container_id: await svc.create(req.pod_sandbox_id, toContainerConfig(req.config)),
  });
  const StartContainer: UnaryHandler<StartContainerRequest__Output, object> = async (req) => {
    await svc.start(req.container_id);
    return {};
  };
  const StopContainer: UnaryHandler<StopContainerRequest__Output, object> = async (req) => {
    await svc.stop(req.container_id, seconds(req.timeout, 'timeout'));
    return {};
  };
  const RemoveContainer: UnaryHandler<RemoveContainerRequest__Output, object> = async (req) => {
    await svc.remove(req.container_id);
    return {};
  };
  const ContainerStatus: UnaryHandler<ContainerStatusRequest__Output, ContainerStatusResponse> = async (req) => {
    const { record, info } = await svc.status(req.container_id, req.verbose);
    const verbose: Record<string, string> = info ? { info: JSON.stringify(info) } : {};
    return { status: toCriStatus(record), info: verbose };
  };
  const ListContainers: UnaryHandler<ListContainersRequest__Output, ListContainersResponse> = async (req) => ({
    containers: svc.list(toFilter(req.filter)).map(toCriContainer),
  });
  const ExecSync: UnaryHandler<ExecSyncRequest__Output, ExecSyncResponse> = async (req, ctx) => {
    const r = await svc.execSync(req.container_id, req.cmd ?? [], seconds(req.timeout, 'timeout') * 1000, ctx.signal);
    return { stdout: r.stdout, stderr: r.stderr, exit_code: r.exitCode };
  };
  const UpdateContainerResources: UnaryHandler<UpdateContainerResourcesRequest__Output, object> = async (req) => {
    if (!req.linux) throw invalidArgument('UpdateContainerResources: linux resources are required');
    await svc.updateResources(req.container_id, toResources(req.linux)!);
    return {};
  };
  const ReopenContainerLog: UnaryHandler<ReopenContainerLogRequest__Output, object> = async (req) => {
    await svc.reopenLog(req.container_id);
    return {};
  };
  return {
    unary: { CreateContainer, StartContainer, StopContainer, RemoveContainer, ContainerStatus, ListContainers, ExecSync, UpdateContainerResources, ReopenContainerLog },
  };
}


/** The PID namespace mode; an unknown enum number (it arrives as a number) is InvalidArgument. */
function pidModeOf(v: unknown): PidMode {
  if (v === undefined || v === null || v === '') return 'pod';
  if (typeof v !== 'string' || !['POD', 'CONTAINER', 'NODE', 'TARGET'].includes(v)) throw invalidArgument(`namespace_options.pid: unknown value ${String(v)}`);
  return v.toLowerCase() as PidMode;
}
