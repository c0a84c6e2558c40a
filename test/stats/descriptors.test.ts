import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE_LABEL_KEYS,
  computeMetrics,
  containerLabels,
  metricDescriptors,
  podLabels,
  podSandboxMetrics,
  type MetricData,
} from '../../src/stats/descriptors';
import type { CgroupSample, NetworkSample } from '../../src/stats/types';
import type { MetricDescriptor } from '../../cri-api/generated/runtime/v1/MetricDescriptor';
import type { PodSandboxMetrics } from '../../cri-api/generated/runtime/v1/PodSandboxMetrics';

const TS = 1_700_000_000_123_456_789n;

const cgroup: CgroupSample = {
  timestampNs: TS,
  monotonicNs: 1n,
  cpu: { usageNs: 12_900_000_000n },
  memory: { usageBytes: 100n, workingSetBytes: 60n, rssBytes: 50n, cacheBytes: 40n, pageFaults: 9n, majorPageFaults: 1n, oomKills: 2n },
  pids: { current: 3n },
};
const network: NetworkSample = {
  timestampNs: TS + 1n,
  interfaces: [
    { name: 'eth0', rxBytes: 1000n, rxPackets: 10n, rxErrors: 1n, rxDropped: 0n, txBytes: 2000n, txPackets: 20n, txErrors: 2n, txDropped: 0n },
    { name: 'net1', rxBytes: 5n, rxPackets: 1n, rxErrors: 0n, rxDropped: 0n, txBytes: 6n, txPackets: 1n, txErrors: 0n, txDropped: 0n },
  ],
};

const find = (ms: MetricData[], name: string, extra: string[] = []) =>
  ms.filter((m) => m.name === name && extra.every((e, i) => m.label_values[BASE_LABEL_KEYS.length + i] === e));

test('descriptors: the cAdvisor names kubelet expects, unique, each with help and base label keys', () => {
  const ds = metricDescriptors();
  const names = ds.map((d) => d.name);
  for (const n of [
    'container_cpu_usage_seconds_total',
    'container_memory_working_set_bytes',
    'container_memory_usage_bytes',
    'container_memory_rss',
    'container_network_receive_bytes_total',
    'container_network_transmit_bytes_total',
    'container_network_receive_errors_total',
    'container_network_transmit_errors_total',
  ]) assert.ok(names.includes(n), n);
  assert.equal(new Set(names).size, names.length);
  for (const d of ds) {
    assert.ok(d.help.length > 5, d.name);
    assert.deepEqual(d.label_keys.slice(0, BASE_LABEL_KEYS.length), [...BASE_LABEL_KEYS]);
    assert.match(d.name, /^container_[a-z_]+$/);
  }
  assert.deepEqual(ds.find((d) => d.name === 'container_network_receive_bytes_total')?.label_keys.slice(-1), ['interface']);
  assert.deepEqual(ds.find((d) => d.name === 'container_cpu_usage_seconds_total')?.label_keys.slice(-1), ['cpu']);
  // Structurally the CRI message.
  const wire: MetricDescriptor[] = ds;
  assert.equal(wire.length, ds.length);
});

test('every metric has a descriptor and exactly as many label values as its label keys (kubelet drops mismatches)', () => {
  const byName = new Map(metricDescriptors().map((d) => [d.name, d]));
  const ms = computeMetrics(containerLabels({ id: 'c1', name: 'app', image: 'busybox:1', podName: 'p', podNamespace: 'ns' }), {
    cgroup,
    network,
    writableLayer: { timestampNs: TS, usedBytes: 4096n, inodesUsed: 3n },
  });
  assert.ok(ms.length > 20);
  for (const m of ms) {
    const d = byName.get(m.name);
    assert.ok(d, m.name);
    assert.equal(m.label_values.length, d.label_keys.length, m.name);
    assert.match(m.timestamp, /^\d{19}$/);
    assert.match(m.value.value, /^\d+$/);
    assert.ok(m.metric_type === 'COUNTER' || m.metric_type === 'GAUGE');
  }
});

test('values: cpu seconds, working set, network per interface, timestamps as ns strings', () => {
  const labels = containerLabels({ id: 'c1', name: 'app', image: 'busybox:1', podName: 'p', podNamespace: 'ns' });
  assert.deepEqual(BASE_LABEL_KEYS.map((k) => labels[k]), ['app', 'c1', 'busybox:1', 'app', 'ns', 'p']);
  const ms = computeMetrics(labels, { cgroup, network });
  const cpu = find(ms, 'container_cpu_usage_seconds_total');
  assert.equal(cpu.length, 1);
  assert.equal(cpu[0].value.value, '12');
  assert.equal(cpu[0].metric_type, 'COUNTER');
  assert.deepEqual(cpu[0].label_values.slice(-1), ['total']);
  assert.equal(cpu[0].timestamp, TS.toString());
  const ws = find(ms, 'container_memory_working_set_bytes')[0];
  assert.equal(ws.value.value, '60');
  assert.equal(ws.metric_type, 'GAUGE');
  assert.equal(find(ms, 'container_network_receive_bytes_total', ['eth0'])[0].value.value, '1000');
  assert.equal(find(ms, 'container_network_transmit_errors_total', ['eth0'])[0].value.value, '2');
  assert.equal(find(ms, 'container_network_receive_bytes_total', ['net1'])[0].timestamp, (TS + 1n).toString());
  assert.equal(find(ms, 'container_memory_failures_total', ['pgmajfault', 'container'])[0].value.value, '1');
  assert.equal(find(ms, 'container_spec_memory_limit_bytes')[0].value.value, '0', 'no limit → 0 like cAdvisor');
  assert.equal(find(ms, 'container_oom_events_total')[0].value.value, '2');
  assert.equal(find(ms, 'container_processes')[0].value.value, '3');
  assert.equal(find(ms, 'container_fs_usage_bytes').length, 0, 'no writable layer given');
  assert.equal(find(ms, 'container_memory_swap').length, 0, 'swap not known');
});

test('nothing known → no metrics; pod metrics hold pod series (container="") and per-container lists', () => {
  assert.deepEqual(computeMetrics(podLabels({ id: 'p', podName: 'p', podNamespace: 'ns' }), {}), []);
  const pm = podSandboxMetrics({
    podSandboxId: 'sb1',
    labels: podLabels({ id: 'sb1', podName: 'web', podNamespace: 'default' }),
    network,
    containers: [
      { containerId: 'c1', labels: containerLabels({ id: 'c1', name: 'app', image: 'img', podName: 'web', podNamespace: 'default' }), cgroup },
      { containerId: 'c2', labels: containerLabels({ id: 'c2', name: 'side', image: 'img', podName: 'web', podNamespace: 'default' }) },
    ],
  });
  const wire: PodSandboxMetrics = pm;
  assert.equal(wire.pod_sandbox_id, 'sb1');
  const rx = find(pm.metrics, 'container_network_receive_bytes_total', ['eth0'])[0];
  assert.deepEqual(rx.label_values, ['', 'sb1', '', '', 'default', 'web', 'eth0']);
  assert.equal(pm.container_metrics.length, 2);
  assert.equal(pm.container_metrics[0].container_id, 'c1');
  assert.ok(find(pm.container_metrics[0].metrics, 'container_memory_rss').length === 1);
  assert.equal(find(pm.container_metrics[0].metrics, 'container_network_receive_bytes_total').length, 0, 'network is pod-level only');
  assert.deepEqual(pm.container_metrics[1].metrics, []);
});
