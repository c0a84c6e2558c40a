import { invalidArgument } from '../core/errors';
import { toResources } from './container';
import { validateResources } from '../container/spec/resources';
import type { UpdatePodSandboxResourcesRequest__Output } from '../../cri-api/generated/runtime/v1/UpdatePodSandboxResourcesRequest';
import { nowNs } from '../core/ids';
import type { HandlerSet, UnaryHandler } from './types';
import type { SandboxService } from '../sandbox/service';
import type { NamespaceMode, PodSandboxSpec, SandboxFilter, SandboxRecord, SeccompProfile } from '../sandbox/types';
import type { RunPodSandboxRequest__Output } from '../../cri-api/generated/runtime/v1/RunPodSandboxRequest';
import type { RunPodSandboxResponse } from '../../cri-api/generated/runtime/v1/RunPodSandboxResponse';
import type { StopPodSandboxRequest__Output } from '../../cri-api/generated/runtime/v1/StopPodSandboxRequest';
import type { RemovePodSandboxRequest__Output } from '../../cri-api/generated/runtime/v1/RemovePodSandboxRequest';
import type { PodSandboxStatusRequest__Output } from '../../cri-api/generated/runtime/v1/PodSandboxStatusRequest';
import type { PodSandboxStatusResponse } from '../../cri-api/generated/runtime/v1/PodSandboxStatusResponse';
import type { ListPodSandboxRequest__Output } from '../../cri-api/generated/runtime/v1/ListPodSandboxRequest';
import type { ListPodSandboxResponse } from '../../cri-api/generated/runtime/v1/ListPodSandboxResponse';
import type { PodSandboxConfig__Output } from '../../cri-api/generated/runtime/v1/PodSandboxConfig';
import type { LinuxSandboxSecurityContext__Output } from '../../cri-api/generated/runtime/v1/LinuxSandboxSecurityContext';
import type { PodSandbox } from '../../cri-api/generated/runtime/v1/PodSandbox';
import type { PodSandboxStatus as PodSandboxStatusMsg } from '../../cri-api/generated/runtime/v1/PodSandboxStatus';

/** An enum field as its name; an unknown value arrives as a number and is InvalidArgument. */
function enumName(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw invalidArgument(`${what}: unknown value ${String(v)}`);
  return v;
}
const nsMode = (m: string | undefined, what = 'namespace mode'): NamespaceMode => ((enumName(m, what) ?? 'POD').toLowerCase() as NamespaceMode);
const toNsMode = (m: NamespaceMode) => m.toUpperCase() as 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';

function int64(v: { value: string } | null | undefined, what: string): number | undefined {
  if (!v) return undefined;
  const n = Number(v.value);
  if (!Number.isSafeInteger(n) || n < 0) throw invalidArgument(`${what}: invalid value ${v.value}`);
  return n;
}

function seccompOf(sc: LinuxSandboxSecurityContext__Output | null): SeccompProfile {
  if (sc?.seccomp) {
    if (sc.seccomp.profile_type === 'RuntimeDefault') return { type: 'runtime-default' };
    if (sc.seccomp.profile_type === 'Localhost') return { type: 'localhost', path: sc.seccomp.localhost_ref };
    return { type: 'unconfined' };
  }
  const p = sc?.seccomp_profile_path ?? '';
  if (p === 'runtime/default' || p === 'docker/default') return { type: 'runtime-default' };
  if (p.startsWith('localhost/')) return { type: 'localhost', path: p.slice('localhost/'.length) };
  return { type: 'unconfined' };
}

/** PodSandboxConfig (decoded) → domain spec. Structural checks only; the service validates the rest. */
export function toPodSandboxSpec(c: PodSandboxConfig__Output | null, runtimeHandler: string): PodSandboxSpec {
  if (!c) throw invalidArgument('RunPodSandboxRequest.config is required');
  if (!c.metadata) throw invalidArgument('PodSandboxConfig.metadata is required');
  const sc = c.linux?.security_context ?? null;
  const no = sc?.namespace_options;
  if (no?.userns_options && no.userns_options.mode === 'POD') throw invalidArgument('user namespaces are not supported');
  return {
    metadata: { name: c.metadata.name, namespace: c.metadata.namespace, uid: c.metadata.uid, attempt: c.metadata.attempt },
    hostname: c.hostname,
    logDirectory: c.log_directory,
    dns: c.dns_config ? { servers: c.dns_config.servers, searches: c.dns_config.searches, options: c.dns_config.options } : undefined,
    portMappings: c.port_mappings.map((p) => ({
      protocol: (enumName(p.protocol, 'port_mappings.protocol') ?? 'TCP').toLowerCase() as 'tcp' | 'udp' | 'sctp',
      containerPort: p.container_port,
      hostPort: p.host_port,
      hostIp: p.host_ip,
    })),
    labels: c.labels ?? {},
    annotations: c.annotations ?? {},
    cgroupParent: c.linux?.cgroup_parent ?? '',
    sysctls: c.linux?.sysctls ?? {},
    namespaces: { network: nsMode(no?.network), pid: nsMode(no?.pid), ipc: nsMode(no?.ipc), targetId: no?.target_id ?? '' },
    runAsUser: int64(sc?.run_as_user, 'run_as_user'),
    runAsGroup: int64(sc?.run_as_group, 'run_as_group'),
    supplementalGroups: (sc?.supplemental_groups ?? []).map(Number),
    readonlyRootfs: sc?.readonly_rootfs ?? false,
    privileged: sc?.privileged ?? false,
    seccomp: seccompOf(sc),
    runtimeHandler,
  };
}

const stateOf = (r: SandboxRecord) => (r.state === 'ready' ? 'SANDBOX_READY' : 'SANDBOX_NOTREADY');
const metadataOf = (r: SandboxRecord) => ({ ...r.spec.metadata });

function toFilter(f: ListPodSandboxRequest__Output['filter']): SandboxFilter | undefined {
  if (!f) return undefined;
  return {
    id: f.id || undefined,
    state: f.state ? (f.state.state === 'SANDBOX_READY' ? 'ready' : 'notready') : undefined,
    labelSelector: f.label_selector && Object.keys(f.label_selector).length ? f.label_selector : undefined,
  };
}

/** CRI handlers of the pod half of RuntimeService. */
export function sandboxHandlers(svc: SandboxService): HandlerSet {
  const RunPodSandbox: UnaryHandler<RunPodSandboxRequest__Output, RunPodSandboxResponse> = async (req) => ({
    pod_sandbox_id: await svc.run(toPodSandboxSpec(req.config, req.runtime_handler)),
  });
  const StopPodSandbox: UnaryHandler<StopPodSandboxRequest__Output, object> = async (req) => {
    await svc.stop(req.pod_sandbox_id);
    return {};
  };
  const RemovePodSandbox: UnaryHandler<RemovePodSandboxRequest__Output, object> = async (req) => {
    await svc.remove(req.pod_sandbox_id);
    return {};
  };
  const PodSandboxStatus: UnaryHandler<PodSandboxStatusRequest__Output, PodSandboxStatusResponse> = async (req) => {
    const { record, info } = svc.status(req.pod_sandbox_id);
    return {
      status: toCriPodSandboxStatus(record),
      info: (req.verbose ? { info: JSON.stringify(info) } : {}) as Record<string, string>,
      containers_statuses: [],
      timestamp: nowNs().toString(),
    };
  };
  // Pod-level resources belong to kubelet's pod cgroup, which kubelet resizes itself; like containerd without
  // NRI, corral validates the call (known pod, sane values) and has nothing more to apply.
  const UpdatePodSandboxResources: UnaryHandler<UpdatePodSandboxResourcesRequest__Output, object> = async (req) => {
    svc.get(req.pod_sandbox_id);
    for (const r of [req.overhead, req.resources]) {
      const input = toResources(r);
      if (input) validateResources(input);
    }
    return {};
  };
  const ListPodSandbox: UnaryHandler<ListPodSandboxRequest__Output, ListPodSandboxResponse> = async (req) => ({
    items: svc.list(toFilter(req.filter)).map(
      (r): PodSandbox => ({
        id: r.id,
        metadata: metadataOf(r),
        state: stateOf(r),
        created_at: r.createdAtNs,
        labels: r.spec.labels,
        annotations: r.spec.annotations,
        runtime_handler: r.spec.runtimeHandler,
      }),
    ),
  });
  return { unary: { RunPodSandbox, StopPodSandbox, RemovePodSandbox, PodSandboxStatus, ListPodSandbox, UpdatePodSandboxResources } };
}

/** The CRI PodSandboxStatus of a record (also sent with GetContainerEvents). */
export function toCriPodSandboxStatus(r: SandboxRecord): PodSandboxStatusMsg {
  const [ip, ...more] = r.ips;
  const ns = r.spec.namespaces;
  return {
    id: r.id,
    metadata: metadataOf(r),
    state: stateOf(r),
    created_at: r.createdAtNs,
    network: { ip: ip ?? '', additional_ips: more.map((x) => ({ ip: x })) },
    linux: { namespaces: { options: { network: toNsMode(ns.network), pid: toNsMode(ns.pid), ipc: toNsMode(ns.ipc), target_id: ns.targetId } } },
    labels: r.spec.labels,
    annotations: r.spec.annotations,
    runtime_handler: r.spec.runtimeHandler,
  };
}
