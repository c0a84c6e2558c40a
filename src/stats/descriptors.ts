import type { CgroupSample, DiskUsageSample, InterfaceStats, NetworkSample } from './types';

/**
 * Kubelet metrics without cAdvisor: ListMetricDescriptors and ListPodSandboxMetrics data. kubelet's CRI metrics
 * collector (pkg/kubelet/metrics/collectors/cri_metrics.go) turns each descriptor into a Prometheus Desc with
 * `label_keys` as variable labels and each Metric into a const metric, so label_values must match label_keys
 * one for one, and a Metric whose name has no descriptor is dropped.
 *
 * Names, help and types follow cAdvisor. Label keys are cAdvisor's kubelet set (container, id, image, name,
 * namespace, pod) rather than cri-o's (id, name, image): dashboards and alerts written for /metrics/cadvisor
 * select on pod/namespace/container. Pod-level series carry container="" like cAdvisor's pod cgroup series.
 *
 * The shapes here are structural copies of the CRI messages (snake_case, int64 as decimal strings) so the CRI
 * handler can return them as they are; this module does not import generated types.
 */

export type MetricKind = 'COUNTER' | 'GAUGE';

export interface MetricDescriptorData {
  name: string;
  help: string;
  label_keys: string[];
}

export interface MetricData {
  name: string;
  /** ns since the epoch, decimal. */
  timestamp: string;
  metric_type: MetricKind;
  label_values: string[];
  value: { value: string };
}

export interface ContainerMetricsData {
  container_id: string;
  metrics: MetricData[];
}

export interface PodSandboxMetricsData {
  pod_sandbox_id: string;
  metrics: MetricData[];
  container_metrics: ContainerMetricsData[];
}

/** Values of the base labels, in BASE_LABEL_KEYS order. */
export interface MetricLabels {
  /** Container name ("" for pod-level series). */
  container: string;
  /** Container or sandbox id. */
  id: string;
  /** Image reference the container runs ("" for pod-level series). */
  image: string;
  /** Container name ("" for pod-level series). */
  name: string;
  namespace: string;
  pod: string;
}

export const BASE_LABEL_KEYS = ['container', 'id', 'image', 'name', 'namespace', 'pod'] as const;

/** What one metric set is computed from: any part may be missing (cgroup gone, no netns, no upper dir). */
export interface MetricSources {
  cgroup?: CgroupSample;
  writableLayer?: DiskUsageSample;
  network?: NetworkSample;
}

export interface ContainerMetricInput {
  containerId: string;
  labels: MetricLabels;
  cgroup?: CgroupSample;
  writableLayer?: DiskUsageSample;
}

export interface PodMetricInput {
  podSandboxId: string;
  /** Pod-level labels: use podLabels(). */
  labels: MetricLabels;
  /** The pod cgroup (all its containers together). */
  cgroup?: CgroupSample;
  /** The pod's network namespace. */
  network?: NetworkSample;
  containers: ContainerMetricInput[];
}

interface Point {
  extra: string[];
  value: bigint;
  timestampNs: bigint;
}

interface Def {
  name: string;
  help: string;
  type: MetricKind;
  extraLabels: string[];
  points(s: MetricSources): Point[];
}

const NS_PER_S = 1_000_000_000n;

const cg = <T>(s: MetricSources, f: (c: CgroupSample) => T | undefined): { v: T; ts: bigint } | undefined => {
  if (!s.cgroup) return undefined;
  const v = f(s.cgroup);
  return v === undefined ? undefined : { v, ts: s.cgroup.timestampNs };
};

const gaugeFromCgroup = (name: string, help: string, f: (c: CgroupSample) => bigint | undefined): Def => ({
  name,
  help,
  type: 'GAUGE',
  extraLabels: [],
  points: (s) => {
    const r = cg(s, f);
    return r ? [{ extra: [], value: r.v, timestampNs: r.ts }] : [];
  },
});

const perInterface = (name: string, help: string, f: (i: InterfaceStats) => bigint): Def => ({
  name,
  help,
  type: 'COUNTER',
  extraLabels: ['interface'],
  points: (s) => (s.network ? s.network.interfaces.map((i) => ({ extra: [i.name], value: f(i), timestampNs: s.network!.timestampNs })) : []),
});

/** Every metric corral reports, in ListMetricDescriptors order. */
const DEFS: Def[] = [
  {
    name: 'container_cpu_usage_seconds_total',
    help: 'Cumulative cpu time consumed in seconds.',
    type: 'COUNTER',
    extraLabels: ['cpu'],
    // CRI carries uint64 values: whole seconds, as cri-o does.
    points: (s) => {
      const r = cg(s, (c) => c.cpu?.usageNs);
      return r ? [{ extra: ['total'], value: r.v / NS_PER_S, timestampNs: r.ts }] : [];
    },
  },
  gaugeFromCgroup('container_memory_usage_bytes', 'Current memory usage in bytes, including all memory regardless of when it was accessed', (c) => c.memory?.usageBytes),
  gaugeFromCgroup('container_memory_working_set_bytes', 'Current working set in bytes.', (c) => c.memory?.workingSetBytes),
  gaugeFromCgroup('container_memory_rss', 'Size of RSS in bytes.', (c) => c.memory?.rssBytes),
  gaugeFromCgroup('container_memory_cache', 'Number of bytes of page cache memory.', (c) => c.memory?.cacheBytes),
  gaugeFromCgroup('container_memory_swap', 'Container swap usage in bytes.', (c) => c.memory?.swapUsageBytes),
  {
    name: 'container_memory_failures_total',
    help: 'Cumulative count of memory allocation failures.',
    type: 'COUNTER',
    extraLabels: ['failure_type', 'scope'],
    points: (s) => {
      const m = s.cgroup?.memory;
      if (!m || !s.cgroup) return [];
      const ts = s.cgroup.timestampNs;
      const out: Point[] = [];
      // Our counters are hierarchical; cAdvisor reports them under both scopes.
      for (const [type, v] of [['pgfault', m.pageFaults], ['pgmajfault', m.majorPageFaults]] as const) {
        if (v === undefined) continue;
        out.push({ extra: [type, 'container'], value: v, timestampNs: ts }, { extra: [type, 'hierarchy'], value: v, timestampNs: ts });
      }
      return out;
    },
  },
  // cAdvisor reports 0 for "no limit".
  gaugeFromCgroup('container_spec_memory_limit_bytes', 'Memory limit for the container.', (c) => (c.memory ? c.memory.limitBytes ?? 0n : undefined)),
  {
    name: 'container_oom_events_total',
    help: 'Count of out of memory events observed for the container',
    type: 'COUNTER',
    extraLabels: [],
    points: (s) => {
      const r = cg(s, (c) => c.memory?.oomKills);
      return r ? [{ extra: [], value: r.v, timestampNs: r.ts }] : [];
    },
  },
  gaugeFromCgroup('container_processes', 'Number of processes running inside the container.', (c) => c.pids?.current),
  {
    name: 'container_fs_usage_bytes',
    help: 'Number of bytes that are consumed by the container on this filesystem.',
    type: 'GAUGE',
    extraLabels: [],
    points: (s) => (s.writableLayer ? [{ extra: [], value: s.writableLayer.usedBytes, timestampNs: s.writableLayer.timestampNs }] : []),
  },
  {
    name: 'container_fs_inodes_used',
    help: 'Number of inodes used by the container on this filesystem.',
    type: 'GAUGE',
    extraLabels: [],
    points: (s) => (s.writableLayer ? [{ extra: [], value: s.writableLayer.inodesUsed, timestampNs: s.writableLayer.timestampNs }] : []),
  },
  perInterface('container_network_receive_bytes_total', 'Cumulative count of bytes received', (i) => i.rxBytes),
  perInterface('container_network_receive_packets_total', 'Cumulative count of packets received', (i) => i.rxPackets),
  perInterface('container_network_receive_packets_dropped_total', 'Cumulative count of packets dropped while receiving', (i) => i.rxDropped),
  perInterface('container_network_receive_errors_total', 'Cumulative count of errors encountered while receiving', (i) => i.rxErrors),
  perInterface('container_network_transmit_bytes_total', 'Cumulative count of bytes transmitted', (i) => i.txBytes),
  perInterface('container_network_transmit_packets_total', 'Cumulative count of packets transmitted', (i) => i.txPackets),
  perInterface('container_network_transmit_packets_dropped_total', 'Cumulative count of packets dropped while transmitting', (i) => i.txDropped),
  perInterface('container_network_transmit_errors_total', 'Cumulative count of errors encountered while transmitting', (i) => i.txErrors),
];

/** ListMetricDescriptors data: every metric name corral may send, with help and label keys. */
export function metricDescriptors(): MetricDescriptorData[] {
  return DEFS.map((d) => ({ name: d.name, help: d.help, label_keys: [...BASE_LABEL_KEYS, ...d.extraLabels] }));
}

/** Every metric computable from `sources`, labelled with `labels` (plus each metric's own extra labels). */
export function computeMetrics(labels: MetricLabels, sources: MetricSources): MetricData[] {
  const base = BASE_LABEL_KEYS.map((k) => labels[k]);
  const out: MetricData[] = [];
  for (const d of DEFS) {
    for (const p of d.points(sources)) {
      out.push({
        name: d.name,
        timestamp: p.timestampNs.toString(),
        metric_type: d.type,
        label_values: [...base, ...p.extra],
        value: { value: p.value.toString() },
      });
    }
  }
  return out;
}

/** ListPodSandboxMetrics data for one pod: pod-level cgroup and network metrics, then each container's. */
export function podSandboxMetrics(input: PodMetricInput): PodSandboxMetricsData {
  return {
    pod_sandbox_id: input.podSandboxId,
    metrics: computeMetrics(input.labels, { cgroup: input.cgroup, network: input.network }),
    container_metrics: input.containers.map((c) => ({
      container_id: c.containerId,
      metrics: computeMetrics(c.labels, { cgroup: c.cgroup, writableLayer: c.writableLayer }),
    })),
  };
}

/** Base label values of a container's series. */
export function containerLabels(c: { id: string; name: string; image: string; podName: string; podNamespace: string }): MetricLabels {
  return { container: c.name, id: c.id, image: c.image, name: c.name, namespace: c.podNamespace, pod: c.podName };
}

/** Base label values of a pod's own series (container="" like cAdvisor's pod cgroup). */
export function podLabels(p: { id: string; podName: string; podNamespace: string }): MetricLabels {
  return { container: '', id: p.id, image: '', name: '', namespace: p.podNamespace, pod: p.podName };
}
