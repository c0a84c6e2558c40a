/**
 * Stats through the real daemon: a CPU loop shows rising usage and nano-cores, memory allocation shows in the
 * working set, a pod receiving traffic shows rx bytes, the writable layer grows after a write, the kubelet
 * metrics RPCs answer, and the runtime counters reach /metrics.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as path from 'node:path';
import { startDaemon, type TestDaemon } from './harness/daemon';
import { startRegistry, type TestRegistry } from './harness/registry';
import { buildBusyboxImage, pushImage } from './harness/oci-image';
import { enableNetwork, removeNetwork } from './harness/network';
import { waitFor } from '../src/core/wait';
import { removeCgroup } from '../src/sys/cgroups';

const CGROUP_PARENT = '/corral-e2e-stats';
const NETWORK = { name: 'corral-e2e-stats', bridge: 'corral-sts0', subnet: '10.241.0.0/24' };
let reg: TestRegistry;
let d: TestDaemon;
let image: string;
let podId: string;
let podIp: string;

const podConfig = () => ({
  metadata: { name: 'stats', namespace: 'e2e-stats', uid: 'uid-stats', attempt: 0 },
  hostname: 'stats',
  log_directory: path.join(d.dir, 'logs'),
  linux: { cgroup_parent: CGROUP_PARENT },
  labels: { app: 'stats' },
});

async function startContainer(name: string, cmd: string[]): Promise<string> {
  const { container_id: id } = await d.rt.CreateContainer({
    pod_sandbox_id: podId,
    config: { metadata: { name, attempt: 0 }, image: { image }, command: cmd, log_path: `${name}.log`, labels: { ctr: name } },
    sandbox_config: podConfig(),
  });
  await d.rt.StartContainer({ container_id: id });
  return id;
}

before(async () => {
  reg = await startRegistry();
  await pushImage(reg, 'e2e/busybox', '1', buildBusyboxImage());
  image = `${reg.host}/e2e/busybox:1`;
  d = await startDaemon();
  await enableNetwork(d, NETWORK);
  await d.img.PullImage({ image: { image } });
  podId = (await d.rt.RunPodSandbox({ config: podConfig() })).pod_sandbox_id;
  podIp = (await d.rt.PodSandboxStatus({ pod_sandbox_id: podId })).status!.network!.ip;
});

after(async () => {
  if (d) {
    await d.rt.StopPodSandbox({ pod_sandbox_id: podId }).catch(() => {});
    await d.rt.RemovePodSandbox({ pod_sandbox_id: podId }).catch(() => {});
    await d.cleanup();
  }
  await reg?.stop();
  await removeNetwork(NETWORK);
  await removeCgroup(CGROUP_PARENT);
});

test('a CPU loop shows rising usage and nano-cores', { timeout: 60_000 }, async () => {
  const id = await startContainer('spin', ['sh', '-c', 'while :; do :; done']);
  const first = (await d.rt.ContainerStats({ container_id: id })).stats!;
  const before = BigInt(first.cpu!.usage_core_nano_seconds!.value);
  const later = await waitFor(async () => {
    const s = (await d.rt.ContainerStats({ container_id: id })).stats!;
    const cores = BigInt(s.cpu?.usage_nano_cores?.value ?? '0');
    return BigInt(s.cpu!.usage_core_nano_seconds!.value) > before + 100_000_000n && cores > 100_000_000n ? s : undefined;
  }, { timeoutMs: 30_000, intervalMs: 200, what: 'CPU usage to rise' });
  assert.equal(later.attributes!.id, id);
  assert.equal(later.attributes!.labels.ctr, 'spin');
  await d.rt.StopContainer({ container_id: id, timeout: '0' });
});

test('allocated memory shows in the working set; the writable layer grows after a write', { timeout: 60_000 }, async () => {
  const id = await startContainer('mem', ['sleep', '3600']);
  const before = (await d.rt.ContainerStats({ container_id: id })).stats!;
  const layerBefore = BigInt(before.writable_layer?.used_bytes?.value ?? '0');
  // 64 MiB in the pod's /dev/shm (tmpfs: charged to the container's memory cgroup, never "inactive file").
  await d.rt.ExecSync({ container_id: id, cmd: ['dd', 'if=/dev/zero', 'of=/dev/shm/fill', 'bs=1048576', 'count=64'], timeout: '30' });
  await d.rt.ExecSync({ container_id: id, cmd: ['dd', 'if=/dev/zero', 'of=/written', 'bs=1048576', 'count=5'], timeout: '30' });
  const mem = (await d.rt.ContainerStats({ container_id: id })).stats!.memory!;
  assert.ok(BigInt(mem.working_set_bytes!.value) > 64n * 1024n * 1024n, `working set ${mem.working_set_bytes!.value}`);
  // Layer usage is cached for a few seconds: wait for the new figure.
  await waitFor(async () => BigInt((await d.rt.ContainerStats({ container_id: id })).stats!.writable_layer!.used_bytes!.value) >= layerBefore + 5n * 1024n * 1024n,
    { timeoutMs: 30_000, intervalMs: 500, what: 'writable layer to grow' });
  const list = await d.rt.ListContainerStats({ filter: { pod_sandbox_id: podId, label_selector: { ctr: 'mem' } } });
  assert.deepEqual(list.stats.map((s) => s.attributes!.id), [id]);
  await d.rt.ExecSync({ container_id: id, cmd: ['rm', '/dev/shm/fill'], timeout: '10' });
  await d.rt.StopContainer({ container_id: id, timeout: '0' });
});

test('a pod receiving traffic shows rx bytes; kubelet metrics RPCs answer', { timeout: 60_000 }, async () => {
  const rx = async () => BigInt((await d.rt.PodSandboxStats({ pod_sandbox_id: podId })).stats!.linux!.network!.default_interface!.rx_bytes!.value);
  const start = await rx();
  // Connection attempts to a closed port: every SYN is received on the pod's eth0 (and answered with RST).
  for (let i = 0; i < 20; i++) {
    await new Promise<void>((resolve) => {
      const s = net.connect({ host: podIp, port: 9 });
      s.on('error', () => resolve());
      s.on('connect', () => s.end(resolve));
    });
  }
  await waitFor(async () => (await rx()) > start + 20n * 40n, { what: 'rx bytes to grow' });
  const pods = await d.rt.ListPodSandboxStats({ filter: { id: podId } });
  assert.equal(pods.stats.length, 1);
  const desc = await d.rt.ListMetricDescriptors({});
  const names = desc.descriptors.map((x) => x.name);
  for (const n of ['container_cpu_usage_seconds_total', 'container_memory_working_set_bytes', 'container_network_receive_bytes_total']) assert.ok(names.includes(n), n);
  const m = await d.rt.ListPodSandboxMetrics({});
  const mine = m.pod_metrics.find((p) => p.pod_sandbox_id === podId)!;
  assert.ok(mine.metrics.some((x) => x.name === 'container_network_receive_bytes_total'));
});

test('runtime counters reach /metrics', async () => {
  const text = await (await fetch(`http://${d.metricsAddress()}/metrics`)).text();
  assert.match(text, /^corral_containers_created_total [1-9]/m);
  assert.match(text, /^corral_containers_started_total [1-9]/m);
  assert.match(text, /^corral_pods\{state="ready"\} 1$/m);
  assert.match(text, /^corral_cni_operation_duration_seconds_count\{operation="ADD"\} [1-9]/m);
  assert.match(text, /^corral_oci_runtime_operation_duration_seconds_count\{operation="start",binary="runc"\} [1-9]/m);
});
