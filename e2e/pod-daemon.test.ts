import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { startDaemon } from './harness/daemon';
import { conflist, enableNetwork, removeNetwork } from './harness/network';
import { waitFor } from '../src/core/wait';
import { run } from '../src/sys/exec';
import { existingCgroupDirs, removeCgroup } from '../src/sys/cgroups';

// Pods through the real daemon over gRPC: network readiness follows the CNI config dir, a pod gets an IP,
// stop/remove are idempotent and leave nothing behind, and a daemon restart keeps the pod.

const NET_D = { name: 'corral-e2ed', bridge: 'corral-e2ed0', subnet: '10.237.0.0/24' };
const NET_P = { name: 'corral-e2ep', bridge: 'corral-e2ep0', subnet: '10.236.0.0/24' };
const NET_V = { name: 'corral-e2ev', bridge: 'corral-e2ev0', subnet: '10.238.0.0/24' };
const pod = (name: string, logDir: string) => ({
  metadata: { name, namespace: 'e2e', uid: `uid-${name}`, attempt: 0 },
  hostname: name,
  log_directory: logDir,
  dns_config: { servers: ['10.0.0.53'], searches: ['e2e.svc'], options: ['ndots:2'] },
  linux: { cgroup_parent: '/corral-e2e-daemon' },
  labels: { app: name },
});

test('pod lifecycle through the daemon: NetworkReady, IP, restart, stop/remove with no leftovers', { timeout: 120_000 }, async () => {
  const d = await startDaemon();
  const cniDir = path.join(d.dir, 'cni');
  try {
    const cond = async () => (await d.rt.Status({})).status!.conditions.find((c) => c.type === 'NetworkReady')!;
    const before = await cond();
    assert.equal(before.status, false);
    assert.equal(before.reason, 'NetworkPluginNotReady');
    // A CNI config dropped in after start is picked up without a restart.
    writeFileSync(path.join(cniDir, '10-e2e.conflist'), JSON.stringify(conflist(NET_D)));
    await waitFor(async () => (await cond()).status, { what: 'NetworkReady' });

    const { pod_sandbox_id: id } = await d.rt.RunPodSandbox({ config: pod('web', path.join(d.dir, 'logs')) });
    assert.match(id, /^[0-9a-f]{64}$/);
    const st = await d.rt.PodSandboxStatus({ pod_sandbox_id: id, verbose: true });
    assert.equal(st.status!.state, 'SANDBOX_READY');
    assert.match(st.status!.network!.ip, /^10\.237\.0\.\d+$/);
    assert.ok(BigInt(st.status!.created_at) > 1_600_000_000_000_000_000n, 'created_at in ns');
    assert.equal(st.status!.labels.app, 'web');
    const info = JSON.parse(st.info.info);
    const netns: string = info.netnsPath ?? info.netns_path ?? info.paths?.netns;
    assert.ok(netns && existsSync(netns), `verbose info names the pinned netns: ${st.info.info}`);

    const list = await d.rt.ListPodSandbox({ filter: { label_selector: { app: 'web' } } });
    assert.deepEqual(list.items.map((p) => p.id), [id]);

    // The pod survives a daemon restart (SIGKILL: nothing gets a chance to clean up).
    await d.stop('SIGKILL');
    await d.start();
    const again = await d.rt.PodSandboxStatus({ pod_sandbox_id: id });
    assert.equal(again.status!.state, 'SANDBOX_READY');
    assert.equal(again.status!.network!.ip, st.status!.network!.ip);

    await d.rt.StopPodSandbox({ pod_sandbox_id: id });
    await d.rt.StopPodSandbox({ pod_sandbox_id: id });
    assert.equal((await d.rt.PodSandboxStatus({ pod_sandbox_id: id })).status!.state, 'SANDBOX_NOTREADY');
    await d.rt.RemovePodSandbox({ pod_sandbox_id: id });
    await d.rt.RemovePodSandbox({ pod_sandbox_id: id });
    await assert.rejects(d.rt.PodSandboxStatus({ pod_sandbox_id: id }), (e: { code: number }) => e.code === 5);
    assert.equal(existsSync(netns), false, 'netns file removed');
    const mounts = (await run('cat', ['/proc/self/mountinfo'])).stdout;
    assert.ok(!mounts.includes(d.runRoot), 'no mounts left under the run root');
    const links = (await run('ip', ['-o', 'link', 'show', 'master', NET_D.bridge], { allowFailure: true })).stdout.trim();
    assert.equal(links, '', 'no veth left on the bridge');
    const ps = (await run('ps', ['-eo', 'args'])).stdout;
    assert.ok(!ps.split('\n').some((l) => l.includes('conmon') && l.includes(id)), 'no conmon left');
  } finally {
    await d.cleanup();
    await removeNetwork(NET_D);
    await removeCgroup('/corral-e2e-daemon');
    assert.deepEqual(await existingCgroupDirs('/corral-e2e-daemon'), [], 'no cgroup left');
  }
});

test('runtime.pause_image: the infra runs from a pulled, pinned, leased pause image', { timeout: 120_000 }, async () => {
  const { startRegistry } = await import('./harness/registry');
  const { buildPauseImage, pushImage } = await import('./harness/oci-image');
  const reg = await startRegistry();
  const ref = `${reg.host}/e2e/pause:3.10`;
  await pushImage(reg, 'e2e/pause', '3.10', buildPauseImage());
  const d = await startDaemon({ config: `[runtime]\npause_image = ${JSON.stringify(ref)}\n` });
  try {
    await enableNetwork(d, NET_P);
    const { pod_sandbox_id: id } = await d.rt.RunPodSandbox({ config: pod('paused', path.join(d.dir, 'logs')) });
    const st = await d.rt.PodSandboxStatus({ pod_sandbox_id: id, verbose: true });
    assert.equal(st.status!.state, 'SANDBOX_READY');
    const info = JSON.parse(st.info.info);
    assert.equal(info.image, ref);
    const cmdline = (await run('cat', [`/proc/${info.pid}/cmdline`])).stdout.split('\0');
    assert.equal(cmdline[0], '/pause', 'infra runs the image entrypoint');
    const img = await d.img.ImageStatus({ image: { image: ref } });
    assert.equal(img.image!.pinned, true, 'the pause image is pinned');
    await d.rt.StopPodSandbox({ pod_sandbox_id: id });
    await d.rt.RemovePodSandbox({ pod_sandbox_id: id });
    const mounts = (await run('cat', ['/proc/self/mountinfo'])).stdout;
    assert.ok(!mounts.includes(d.runRoot), 'pause rootfs unmounted');
  } finally {
    await d.cleanup();
    await reg.stop();
    await removeNetwork(NET_P);
    await removeCgroup('/corral-e2e-daemon');
  }
});

test('GetContainerEvents streams a pod lifecycle with its status', { timeout: 120_000 }, async () => {
  const d = await startDaemon();
  try {
    await enableNetwork(d, NET_V);
    const stream = d.rt.stream('GetContainerEvents', {});
    const events: { type: string; id: string; state?: string }[] = [];
    stream.on('data', (e) => events.push({ type: e.container_event_type, id: e.container_id, state: e.pod_sandbox_status?.state }));
    stream.on('error', () => {});
    // The server sends headers once the subscription is registered.
    await new Promise((resolve) => stream.once('metadata', resolve));
    const { pod_sandbox_id: id } = await d.rt.RunPodSandbox({ config: pod('evented', path.join(d.dir, 'logs')) });
    await waitFor(() => events.some((e) => e.id === id && e.type === 'CONTAINER_STARTED_EVENT'), { what: 'STARTED event' });
    await d.rt.StopPodSandbox({ pod_sandbox_id: id });
    await d.rt.RemovePodSandbox({ pod_sandbox_id: id });
    await waitFor(() => events.some((e) => e.id === id && e.type === 'CONTAINER_DELETED_EVENT'), { what: 'DELETED event' });
    const mine = events.filter((e) => e.id === id);
    assert.deepEqual(mine.map((e) => e.type), ['CONTAINER_CREATED_EVENT', 'CONTAINER_STARTED_EVENT', 'CONTAINER_STOPPED_EVENT', 'CONTAINER_DELETED_EVENT']);
    assert.equal(mine[1].state, 'SANDBOX_READY');
    assert.equal(mine[2].state, 'SANDBOX_NOTREADY');
    stream.cancel();
  } finally {
    await d.cleanup();
    await removeNetwork(NET_V);
    await removeCgroup('/corral-e2e-daemon');
  }
});

test('UpdatePodSandboxResources: NotFound for unknown pods, InvalidArgument for bad values, accepted otherwise', { timeout: 60_000 }, async () => {
  const d = await startDaemon({ config: '[runtime]\n' });
  try {
    await assert.rejects(d.rt.UpdatePodSandboxResources({ pod_sandbox_id: 'nope' }), (e: { code: number }) => e.code === 5);
    const { pod_sandbox_id: id } = await d.rt.RunPodSandbox({
      config: { ...pod('resize', path.join(d.dir, 'logs')), linux: { cgroup_parent: '/corral-e2e-daemon', security_context: { namespace_options: { network: 'NODE' } } } },
    });
    await assert.rejects(d.rt.UpdatePodSandboxResources({ pod_sandbox_id: id, resources: { memory_limit_in_bytes: '-5' } }), (e: { code: number }) => e.code === 3);
    await d.rt.UpdatePodSandboxResources({ pod_sandbox_id: id, resources: { cpu_shares: '512', memory_limit_in_bytes: '268435456' } });
    await d.rt.StopPodSandbox({ pod_sandbox_id: id });
    await d.rt.RemovePodSandbox({ pod_sandbox_id: id });
  } finally {
    await d.cleanup();
    await removeCgroup('/corral-e2e-daemon');
  }
});
