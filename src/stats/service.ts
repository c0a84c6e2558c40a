import { errorMessage } from '../core/errors';
import type { Logger } from '../log/logger';
import { nullLogger } from '../log/logger';
import { CgroupReader } from './cgroup';
import { CpuRateTracker } from './cpu-rate';
import {
  containerLabels,
  metricDescriptors,
  podLabels,
  podSandboxMetrics,
  type MetricDescriptorData,
  type PodSandboxMetricsData,
} from './descriptors';
import { DiskUsageCache } from './disk-usage';
import { readNetworkStats } from './netdev';
import type { CgroupSample, DiskUsageSample, MemorySample, NetworkSample } from './types';

/** What the stats service needs to know about one container (the containers area supplies it). */
export interface ContainerStatsTarget {
  id: string;
  podSandboxId: string;
  /** OCI cgroupsPath as given to runc (cgroupfs "/parent/corral-<id>" or systemd "slice:corral:<id>"). */
  cgroupsPath: string;
  /** The overlay upper dir (writable layer); undefined when the rootfs is not mounted. */
  upperDir?: string;
  /** Reported as writable_layer.fs_id.mountpoint (the filesystem holding upperDir). */
  writableLayerMountpoint?: string;
  /** For metric labels. */
  name: string;
  image: string;
  podName: string;
  podNamespace: string;
}

/** What the stats service needs to know about one pod. */
export interface PodStatsTarget {
  id: string;
  /** The pod cgroup (podCgroupDirPath of kubelet's cgroup_parent); when absent, pod cpu/memory sum its containers. */
  podCgroupPath?: string;
  /** Host pid of a process in the pod's network namespace (the infra process); 0 or undefined when none. */
  infraPid?: number;
  podName: string;
  podNamespace: string;
  containers: ContainerStatsTarget[];
}

export interface CpuStats {
  timestampNs: bigint;
  usageCoreNanoSeconds: bigint;
  /** Undefined on the first sample of an id (kubelet then computes its own). */
  usageNanoCores?: bigint;
}

export interface MemoryStats extends MemorySample {
  timestampNs: bigint;
}

export interface SwapStats {
  timestampNs: bigint;
  swapUsageBytes?: bigint;
  swapAvailableBytes?: bigint;
}

export interface WritableLayerStats extends DiskUsageSample {
  mountpoint: string;
}

export interface ContainerStatsResult {
  id: string;
  cpu?: CpuStats;
  memory?: MemoryStats;
  swap?: SwapStats;
  writableLayer?: WritableLayerStats;
}

export interface PodStatsResult {
  id: string;
  cpu?: CpuStats;
  memory?: MemoryStats;
  network?: NetworkSample;
  process?: { timestampNs: bigint; processCount: bigint };
  containers: ContainerStatsResult[];
}

export interface StatsServiceOptions {
  log?: Logger;
  reader?: CgroupReader;
  cpu?: CpuRateTracker;
  disk?: DiskUsageCache;
  /** /proc, for tests. */
  procRoot?: string;
  /**
   * Ids of every container and pod that still exists. Called by the list operations to drop cached CPU
   * baselines and disk usage of ids that are gone; without it, call forget() on removal.
   */
  liveIds?: () => Iterable<string>;
}

/**
 * Container and pod stats computed on demand from cgroups, /proc/<pid>/net/dev and the writable layer.
 * Nothing polls: every figure is read when asked for, the only state is the previous CPU sample per id
 * (for nano-cores) and a short-lived disk usage cache.
 */
export class StatsService {
  private readonly log: Logger;
  private readonly reader: CgroupReader;
  private readonly cpu: CpuRateTracker;
  private readonly disk: DiskUsageCache;

  constructor(private readonly opts: StatsServiceOptions = {}) {
    this.log = opts.log ?? nullLogger;
    this.reader = opts.reader ?? new CgroupReader();
    this.cpu = opts.cpu ?? new CpuRateTracker();
    this.disk = opts.disk ?? new DiskUsageCache({ log: this.log });
  }

  async containerStats(t: ContainerStatsTarget): Promise<ContainerStatsResult> {
    const [sample, layer] = await Promise.all([this.readCgroup(t.cgroupsPath), t.upperDir ? this.disk.usage(t.upperDir) : undefined]);
    return this.toContainerResult(t, sample, layer);
  }

  /** Stats of many containers, read concurrently. */
  async listContainerStats(targets: ContainerStatsTarget[]): Promise<ContainerStatsResult[]> {
    this.prune();
    return Promise.all(targets.map((t) => this.containerStats(t)));
  }

  async podStats(t: PodStatsTarget): Promise<PodStatsResult> {
    const [podSample, network, containers] = await Promise.all([
      t.podCgroupPath ? this.readCgroup(t.podCgroupPath) : undefined,
      t.infraPid ? readNetworkStats(t.infraPid, this.opts.procRoot) : undefined,
      Promise.all(t.containers.map((c) => this.containerStats(c))),
    ]);
    const out: PodStatsResult = { id: t.id, containers };
    if (network) out.network = network;
    if (podSample) {
      if (podSample.cpu) out.cpu = this.cpuStats(t.id, podSample, podSample.cpu.usageNs);
      if (podSample.memory) out.memory = { timestampNs: podSample.timestampNs, ...podSample.memory };
      if (podSample.pids) out.process = { timestampNs: podSample.timestampNs, processCount: podSample.pids.current };
    } else {
      Object.assign(out, sumContainers(containers));
    }
    return out;
  }

  async listPodStats(targets: PodStatsTarget[]): Promise<PodStatsResult[]> {
    this.prune();
    return Promise.all(targets.map((t) => this.podStats(t)));
  }

  /** ListMetricDescriptors data. */
  descriptors(): MetricDescriptorData[] {
    return metricDescriptors();
  }

  /** ListPodSandboxMetrics data of one pod and its containers. */
  async podMetrics(t: PodStatsTarget): Promise<PodSandboxMetricsData> {
    const [podSample, network, containers] = await Promise.all([
      t.podCgroupPath ? this.readCgroup(t.podCgroupPath) : undefined,
      t.infraPid ? readNetworkStats(t.infraPid, this.opts.procRoot) : undefined,
      Promise.all(
        t.containers.map(async (c) => {
          const [cgroup, writableLayer] = await Promise.all([this.readCgroup(c.cgroupsPath), c.upperDir ? this.disk.usage(c.upperDir) : undefined]);
          return { c, cgroup, writableLayer };
        }),
      ),
    ]);
    return podSandboxMetrics({
      podSandboxId: t.id,
      labels: podLabels({ id: t.id, podName: t.podName, podNamespace: t.podNamespace }),
      cgroup: podSample,
      network,
      containers: containers.map(({ c, cgroup, writableLayer }) => ({
        containerId: c.id,
        labels: containerLabels({ id: c.id, name: c.name, image: c.image, podName: c.podName, podNamespace: c.podNamespace }),
        cgroup,
        writableLayer,
      })),
    });
  }

  async listPodMetrics(targets: PodStatsTarget[]): Promise<PodSandboxMetricsData[]> {
    this.prune();
    return Promise.all(targets.map((t) => this.podMetrics(t)));
  }

  /** Drops cached state of a removed container or pod (and its upper dir). */
  forget(id: string, upperDir?: string): void {
    this.cpu.delete(id);
    if (upperDir) this.disk.delete(upperDir);
  }

  private prune(): void {
    if (!this.opts.liveIds) return;
    this.cpu.retain(this.opts.liveIds());
  }

  private async readCgroup(cgroupsPath: string): Promise<CgroupSample | undefined> {
    try {
      return await this.reader.read(cgroupsPath);
    } catch (e) {
      this.log.debug('cgroup read failed', { cgroupsPath, error: errorMessage(e) });
      return undefined;
    }
  }

  private cpuStats(id: string, s: CgroupSample, usageNs: bigint): CpuStats {
    const rate = this.cpu.update(id, usageNs, s.monotonicNs);
    const out: CpuStats = { timestampNs: s.timestampNs, usageCoreNanoSeconds: usageNs };
    if (rate !== undefined) out.usageNanoCores = rate;
    return out;
  }

  private toContainerResult(t: ContainerStatsTarget, s: CgroupSample | undefined, layer: DiskUsageSample | undefined): ContainerStatsResult {
    const out: ContainerStatsResult = { id: t.id };
    if (s?.cpu) out.cpu = this.cpuStats(t.id, s, s.cpu.usageNs);
    if (s?.memory) {
      out.memory = { timestampNs: s.timestampNs, ...s.memory };
      if (s.memory.swapUsageBytes !== undefined || s.memory.swapAvailableBytes !== undefined) {
        out.swap = { timestampNs: s.timestampNs, swapUsageBytes: s.memory.swapUsageBytes, swapAvailableBytes: s.memory.swapAvailableBytes };
      }
    }
    if (layer) out.writableLayer = { ...layer, mountpoint: t.writableLayerMountpoint ?? t.upperDir ?? '' };
    return out;
  }
}

/** Pod cpu/memory when there is no pod cgroup to read: the sum of its containers. */
function sumContainers(cs: ContainerStatsResult[]): Pick<PodStatsResult, 'cpu' | 'memory'> {
  const out: Pick<PodStatsResult, 'cpu' | 'memory'> = {};
  const withCpu = cs.filter((c) => c.cpu);
  if (withCpu.length > 0) {
    const cpu: CpuStats = {
      timestampNs: withCpu.reduce((m, c) => (c.cpu!.timestampNs > m ? c.cpu!.timestampNs : m), 0n),
      usageCoreNanoSeconds: withCpu.reduce((a, c) => a + c.cpu!.usageCoreNanoSeconds, 0n),
    };
    if (withCpu.every((c) => c.cpu!.usageNanoCores !== undefined)) cpu.usageNanoCores = withCpu.reduce((a, c) => a + c.cpu!.usageNanoCores!, 0n);
    out.cpu = cpu;
  }
  const withMem = cs.filter((c) => c.memory);
  if (withMem.length > 0) {
    const sum = (f: (m: MemoryStats) => bigint | undefined) => withMem.reduce((a, c) => a + (f(c.memory!) ?? 0n), 0n);
    out.memory = {
      timestampNs: withMem.reduce((m, c) => (c.memory!.timestampNs > m ? c.memory!.timestampNs : m), 0n),
      usageBytes: sum((m) => m.usageBytes),
      workingSetBytes: sum((m) => m.workingSetBytes),
      rssBytes: sum((m) => m.rssBytes),
      pageFaults: sum((m) => m.pageFaults),
      majorPageFaults: sum((m) => m.majorPageFaults),
    };
  }
  return out;
}
