import type { CorralConfig } from '../config/schema';
import type { ContainerService } from '../container/service';
import type { ContainerRecord } from '../container/types';
import type { SandboxService } from '../sandbox/service';
import type { SandboxRecord } from '../sandbox/types';
import { podCgroupDirPath } from '../stats/cgroup-path';
import type { ContainerStatsResult, ContainerStatsTarget, CpuStats, MemoryStats, PodStatsResult, PodStatsTarget, StatsService } from '../stats/service';
import type { CpuUsage } from '../../cri-api/generated/runtime/v1/CpuUsage';
import type { MemoryUsage } from '../../cri-api/generated/runtime/v1/MemoryUsage';
import type { ContainerStats } from '../../cri-api/generated/runtime/v1/ContainerStats';
import type { PodSandboxStats } from '../../cri-api/generated/runtime/v1/PodSandboxStats';
import type { ContainerStatsFilter__Output } from '../../cri-api/generated/runtime/v1/ContainerStatsFilter';
import type { PodSandboxStatsFilter__Output } from '../../cri-api/generated/runtime/v1/PodSandboxStatsFilter';
import type { NetworkInterfaceUsage } from '../../cri-api/generated/runtime/v1/NetworkInterfaceUsage';
import type { InterfaceStats } from '../stats/types';
import { chunkedStream } from './chunked';
import type { HandlerSet, UnaryHandler } from './types';

const u64 = (v: bigint | undefined) => (v === undefined ? null : { value: v.toString() });

/** CRI CpuUsage of a container or a pod. */
function cpuUsage(c: CpuStats | undefined): CpuUsage | null {
  return c ? { timestamp: c.timestampNs.toString(), usage_core_nano_seconds: u64(c.usageCoreNanoSeconds), usage_nano_cores: u64(c.usageNanoCores) } : null;
}

/** CRI MemoryUsage of a container or a pod. */
function memoryUsage(m: MemoryStats | undefined): MemoryUsage | null {
  if (!m) return null;
  return {
    timestamp: m.timestampNs.toString(),
    working_set_bytes: u64(m.workingSetBytes),
    available_bytes: u64(m.availableBytes),
    usage_bytes: u64(m.usageBytes),
    rss_bytes: u64(m.rssBytes),
    page_faults: u64(m.pageFaults),
    major_page_faults: u64(m.majorPageFaults),
  };
}

/**
 * ContainerStats, ListContainerStats, PodSandboxStats, ListPodSandboxStats, ListMetricDescriptors,
 * ListPodSandboxMetrics and their Stream* twins. Stats are read on demand (nothing polls) for running
 * containers and ready pods.
 */
export function statsHandlers(d: { config: CorralConfig; stats: StatsService; containers: ContainerService; sandboxes: SandboxService }): HandlerSet {
  const containerTarget = (r: ContainerRecord): ContainerStatsTarget => ({
    id: r.id,
    podSandboxId: r.sandboxId,
    cgroupsPath: r.cgroupsPath,
    upperDir: r.paths.upper,
    writableLayerMountpoint: d.config.root,
    name: r.config.metadata.name,
    image: r.config.image,
    podName: r.podName,
    podNamespace: r.podNamespace,
  });
  const podTarget = (s: SandboxRecord): PodStatsTarget => ({
    id: s.id,
    podCgroupPath: podCgroupDirPath(d.config.runtime.cgroup_manager, s.spec.cgroupParent),
    infraPid: s.pid || undefined,
    podName: s.spec.metadata.name,
    podNamespace: s.spec.metadata.namespace,
    containers: d.containers.list({ sandboxId: s.id, state: 'running' }).map(containerTarget),
  });
  const toContainerStats = (r: ContainerRecord, s: ContainerStatsResult): ContainerStats => ({
    attributes: { id: r.id, metadata: { name: r.config.metadata.name, attempt: r.config.metadata.attempt }, labels: r.config.labels, annotations: r.config.annotations },
    cpu: cpuUsage(s.cpu),
    memory: memoryUsage(s.memory),
    writable_layer: s.writableLayer
      ? { timestamp: s.writableLayer.timestampNs.toString(), fs_id: { mountpoint: s.writableLayer.mountpoint }, used_bytes: u64(s.writableLayer.usedBytes), inodes_used: u64(s.writableLayer.inodesUsed) }
      : null,
    swap: s.swap ? { timestamp: s.swap.timestampNs.toString(), swap_usage_bytes: u64(s.swap.swapUsageBytes), swap_available_bytes: u64(s.swap.swapAvailableBytes) } : null,
  });
  const iface = (i: InterfaceStats): NetworkInterfaceUsage => ({ name: i.name, rx_bytes: u64(i.rxBytes), rx_errors: u64(i.rxErrors), tx_bytes: u64(i.txBytes), tx_errors: u64(i.txErrors) });
  const toPodStats = (s: SandboxRecord, p: PodStatsResult): PodSandboxStats => {
    const byId = new Map(d.containers.list({ sandboxId: s.id }).map((r) => [r.id, r]));
    return {
      attributes: { id: s.id, metadata: { ...s.spec.metadata }, labels: s.spec.labels, annotations: s.spec.annotations },
      linux: {
        cpu: cpuUsage(p.cpu),
        memory: memoryUsage(p.memory),
        network: p.network
          ? { timestamp: p.network.timestampNs.toString(), default_interface: p.network.defaultInterface ? iface(p.network.defaultInterface) : null, interfaces: p.network.interfaces.map(iface) }
          : null,
        process: p.process ? { timestamp: p.process.timestampNs.toString(), process_count: u64(p.process.processCount) } : null,
        containers: p.containers.flatMap((c) => (byId.has(c.id) ? [toContainerStats(byId.get(c.id)!, c)] : [])),
      },
    };
  };
  const runningContainers = (f: ContainerStatsFilter__Output | null | undefined) =>
    d.containers.list({ id: f?.id || undefined, sandboxId: f?.pod_sandbox_id || undefined, state: 'running', labelSelector: f?.label_selector });
  const readyPods = (f: PodSandboxStatsFilter__Output | null | undefined) =>
    d.sandboxes.list({ id: f?.id || undefined, state: 'ready', labelSelector: f?.label_selector });

  const ContainerStats: UnaryHandler<{ container_id: string }> = async (req) => {
    const r = d.containers.get(req.container_id);
    return { stats: toContainerStats(r, await d.stats.containerStats(containerTarget(r))) };
  };
  const ListContainerStats: UnaryHandler<{ filter: ContainerStatsFilter__Output | null }> = async (req) => {
    const rs = runningContainers(req.filter);
    const stats = await d.stats.listContainerStats(rs.map(containerTarget));
    return { stats: stats.map((s, i) => toContainerStats(rs[i], s)) };
  };
  const PodSandboxStats: UnaryHandler<{ pod_sandbox_id: string }> = async (req) => {
    const s = d.sandboxes.get(req.pod_sandbox_id);
    return { stats: toPodStats(s, await d.stats.podStats(podTarget(s))) };
  };
  const ListPodSandboxStats: UnaryHandler<{ filter: PodSandboxStatsFilter__Output | null }> = async (req) => {
    const ps = readyPods(req.filter);
    const stats = await d.stats.listPodStats(ps.map(podTarget));
    return { stats: stats.map((s, i) => toPodStats(ps[i], s)) };
  };
  const ListMetricDescriptors: UnaryHandler<object> = async () => ({ descriptors: d.stats.descriptors() });
  const ListPodSandboxMetrics: UnaryHandler<object> = async () => ({ pod_metrics: await d.stats.listPodMetrics(readyPods(null).map(podTarget)) });

  return {
    unary: { ContainerStats, ListContainerStats, PodSandboxStats, ListPodSandboxStats, ListMetricDescriptors, ListPodSandboxMetrics },
    stream: {
      StreamContainerStats: chunkedStream(ListContainerStats as UnaryHandler<any, any>, 'stats', 'container_stats'),
      StreamPodSandboxStats: chunkedStream(ListPodSandboxStats as UnaryHandler<any, any>, 'stats', 'pod_sandbox_stats'),
      StreamPodSandboxMetrics: chunkedStream(ListPodSandboxMetrics as UnaryHandler<any, any>, 'pod_metrics', 'pod_sandbox_metrics'),
    },
  };
}
