/** StatsService over fixture cgroup v2 trees and a fake /proc. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { CgroupReader } from '../../src/stats/cgroup';
import { CpuRateTracker } from '../../src/stats/cpu-rate';
import { StatsService, type ContainerStatsTarget } from '../../src/stats/service';
import { fakeTree, v2Files } from './fixtures';

const NETDEV = `h1\nh2\n    lo: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n  eth0: 4242 7 0 0 0 0 0 0 99 3 0 0 0 0 0 0\n`;

function setup() {
  const tree = fakeTree({
    'cg/cgroup.controllers': '',
    ...v2Files('cg/pods/p1', { usageUsec: 5000, current: 30_000_000, pids: 4 }),
    ...v2Files('cg/pods/p1/corral-c1', { usageUsec: 1000, current: 20_000_000, inactiveFile: 5_000_000, max: '50000000' }),
    ...v2Files('cg/pods/p1/corral-c2', { usageUsec: 2000, current: 1_000_000, inactiveFile: 0 }),
    'proc/77/net/dev': NETDEV,
    'upper/c1/file': 'x'.repeat(8192),
  });
  let live = ['c1', 'c2', 'p1'];
  const svc = new StatsService({
    reader: new CgroupReader({ root: path.join(tree.dir, 'cg') }),
    cpu: new CpuRateTracker({ minIntervalNs: 0n }),
    procRoot: path.join(tree.dir, 'proc'),
    liveIds: () => live,
  });
  const c = (id: string, upper?: string): ContainerStatsTarget => ({
    id, podSandboxId: 'p1', cgroupsPath: `/pods/p1/corral-${id}`, upperDir: upper, name: id, image: 'img', podName: 'web', podNamespace: 'ns',
  });
  return { tree, svc, c, setLive: (ids: string[]) => (live = ids) };
}

test('container stats: cpu, memory, swap and writable layer; nano-cores from the second sample', async (t) => {
  const { tree, svc, c } = setup();
  t.after(() => tree.remove());
  const target = c('c1', path.join(tree.dir, 'upper/c1'));
  const first = await svc.containerStats(target);
  assert.equal(first.cpu?.usageCoreNanoSeconds, 1_000_000n);
  assert.equal(first.cpu?.usageNanoCores, undefined);
  assert.equal(first.memory?.workingSetBytes, 15_000_000n);
  assert.equal(first.memory?.availableBytes, 35_000_000n);
  assert.equal(first.swap?.swapUsageBytes, 0n);
  assert.ok(first.writableLayer && first.writableLayer.usedBytes >= 8192n && first.writableLayer.inodesUsed === 2n);
  assert.equal(first.writableLayer.mountpoint, path.join(tree.dir, 'upper/c1'));
  writeFileSync(path.join(tree.dir, 'cg/pods/p1/corral-c1/cpu.stat'), 'usage_usec 999999999\n');
  const second = await svc.containerStats(target);
  assert.ok(second.cpu?.usageNanoCores !== undefined && second.cpu.usageNanoCores > 0n);
});

test('a container whose cgroup is gone answers with the id only', async (t) => {
  const { tree, svc, c } = setup();
  t.after(() => tree.remove());
  assert.deepEqual(await svc.containerStats(c('gone')), { id: 'gone' });
});

test('pod stats: pod cgroup, network of the infra pid, process count and containers', async (t) => {
  const { tree, svc, c } = setup();
  t.after(() => tree.remove());
  const p = await svc.podStats({ id: 'p1', podCgroupPath: '/pods/p1', infraPid: 77, podName: 'web', podNamespace: 'ns', containers: [c('c1'), c('c2')] });
  assert.equal(p.cpu?.usageCoreNanoSeconds, 5_000_000n);
  assert.equal(p.memory?.usageBytes, 30_000_000n);
  assert.equal(p.process?.processCount, 4n);
  assert.equal(p.network?.defaultInterface?.name, 'eth0');
  assert.equal(p.network?.defaultInterface?.rxBytes, 4242n);
  assert.deepEqual(p.containers.map((x) => x.id), ['c1', 'c2']);
});

test('pod stats without a pod cgroup sum the containers', async (t) => {
  const { tree, svc, c } = setup();
  t.after(() => tree.remove());
  const [p] = await svc.listPodStats([{ id: 'p1', podName: 'web', podNamespace: 'ns', containers: [c('c1'), c('c2')] }]);
  assert.equal(p.cpu?.usageCoreNanoSeconds, 3_000_000n);
  assert.equal(p.memory?.workingSetBytes, 15_000_000n + 1_000_000n);
  assert.equal(p.network, undefined);
});

test('pod metrics and descriptors; list operations prune state of vanished ids', async (t) => {
  const { tree, svc, c, setLive } = setup();
  t.after(() => tree.remove());
  const [pm] = await svc.listPodMetrics([{ id: 'p1', podCgroupPath: '/pods/p1', infraPid: 77, podName: 'web', podNamespace: 'ns', containers: [c('c1')] }]);
  const names = new Set(svc.descriptors().map((d) => d.name));
  assert.ok(pm.metrics.some((m) => m.name === 'container_network_receive_bytes_total' && m.value.value === '4242'));
  assert.ok(pm.container_metrics[0].metrics.some((m) => m.name === 'container_memory_working_set_bytes' && m.value.value === '15000000'));
  for (const m of [...pm.metrics, ...pm.container_metrics[0].metrics]) assert.ok(names.has(m.name), m.name);
  // CPU baseline of c2 exists after a read, and is dropped once c2 is no longer live.
  await svc.containerStats(c('c2'));
  setLive(['c1', 'p1']);
  await svc.listContainerStats([c('c1')]);
  const again = await svc.containerStats(c('c2'));
  assert.equal(again.cpu?.usageNanoCores, undefined, 'c2 baseline was pruned');
});
