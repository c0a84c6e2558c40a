/**
 * RunPodSandbox latency (30 sequential, 10 concurrent) against a floor measured in the same run: the
 * same namespaces + CNI ADD + `runc run -d` of the pause done directly. Also the RSS with 50 pods alive.
 * Runs the sandbox area in-process (no gRPC hop). Needs root, runc, conmon, catatonit and CNI plugins.
 *   npx tsc -p . --outDir dist-x && node dist-x/bench/pods.js
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { systemFixture, podConfig, CAN_RUN_SYSTEM, testConflist } from '../test/sandbox/system-fixture';
import { run } from '../src/sys/exec';
import { pinNamespaces, unpinNamespaces } from '../src/sys/netns';
import { execPlugin, pluginStdin } from '../src/network/invoke';
import { parseNetworkConfig } from '../src/network/config';
import { buildInfraSpec, INFRA_ROOTFS_DIRS } from '../src/oci/infra';
import { newId } from '../src/core/ids';

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};
const fmt = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(1)} ms  p95 ${pct(xs, 95).toFixed(1)} ms`;

/** `runc run --detach` with stdio on /dev/null (the container would otherwise hold our pipes open). */
function runDetached(file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn(file, args, { stdio: 'ignore' });
    const timer = setTimeout(() => c.kill('SIGKILL'), 30_000);
    c.on('error', reject);
    c.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${file} ${args.join(' ')}: exit ${code}`));
    });
  });
}

async function main() {
  if (!CAN_RUN_SYSTEM) {
    console.log('bench/pods: needs root, runc, conmon, catatonit and CNI plugins; skipped');
    return;
  }
  const fx = await systemFixture({ network: 'corral-bench', bridge: 'corral-bench0', subnet: '10.234.0.0/23' });
  const list = parseNetworkConfig(JSON.stringify(testConflist('corral-bench', 'corral-bench0', '10.234.0.0/23')), 'bench.conflist');
  const floorRoot = path.join(fx.dir, 'floor');
  const rootfs = path.join(floorRoot, 'rootfs');
  for (const d of INFRA_ROOTFS_DIRS) await fs.mkdir(path.join(rootfs, d), { recursive: true });
  await fs.writeFile(path.join(rootfs, 'catatonit'), '');
  const runcRoot = path.join(floorRoot, 'runc');
  const floorIds: string[] = [];

  const floorOne = async (): Promise<number> => {
    const id = newId();
    floorIds.push(id);
    const t = performance.now();
    const ns = { net: path.join(floorRoot, 'netns', id), ipc: path.join(floorRoot, 'ipcns', id), uts: path.join(floorRoot, 'utsns', id) };
    const shm = path.join(floorRoot, 'shm', id);
    await pinNamespaces({ ...ns, shm: { path: shm, sizeBytes: 64 << 20 } });
    const inv = { command: 'ADD' as const, containerId: id, netns: ns.net, ifName: 'eth0', pod: { namespace: 'bench', name: id.slice(0, 8), uid: id, id }, pluginDirs: ['/usr/lib/cni'] };
    let prev: unknown;
    for (const p of list.plugins) prev = await execPlugin(p.type, inv, pluginStdin(list, p, {}, prev), 20_000);
    const bundle = path.join(floorRoot, 'b', id);
    await fs.mkdir(bundle, { recursive: true });
    const spec = buildInfraSpec({ rootfs, catatonit: '/usr/bin/catatonit', hostname: 'floor', netns: ns.net, ipcns: ns.ipc, utsns: ns.uts, pid: 'pod', cgroupsPath: `/corral-e2e/floor-${id}`, sysctls: {}, uid: 65535, gid: 65535, readonlyRootfs: true, shmPath: shm, annotations: {} });
    await fs.writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec));
    await runDetached('/usr/sbin/runc', [`--root=${runcRoot}`, 'run', '--detach', '--bundle', bundle, id]);
    return performance.now() - t;
  };
  const floorCleanup = async () => {
    for (const id of floorIds.splice(0)) {
      await run('/usr/sbin/runc', [`--root=${runcRoot}`, 'delete', '--force', id], { allowFailure: true });
      const netns = path.join(floorRoot, 'netns', id);
      const inv = { command: 'DEL' as const, containerId: id, netns, ifName: 'eth0', pod: { namespace: 'bench', name: id.slice(0, 8), uid: id, id }, pluginDirs: ['/usr/lib/cni'] };
      for (const p of [...list.plugins].reverse()) await execPlugin(p.type, inv, pluginStdin(list, p, {}), 20_000).catch(() => undefined);
      await unpinNamespaces([netns, path.join(floorRoot, 'ipcns', id), path.join(floorRoot, 'utsns', id), path.join(floorRoot, 'shm', id)]);
    }
  };
  const corralOne = async (): Promise<number> => {
    const t = performance.now();
    await fx.call('RunPodSandbox', { config: podConfig(), runtime_handler: '' });
    return performance.now() - t;
  };
  const removeAll = async () => {
    await Promise.all(fx.area.service.list().map((s) => fx.area.service.remove(s.id)));
  };

  try {
    // Warm up both paths once (page cache, bridge creation).
    await floorOne();
    await corralOne();
    await floorCleanup();
    await removeAll();

    const seqFloor: number[] = [];
    for (let i = 0; i < 30; i++) seqFloor.push(await floorOne());
    await floorCleanup();
    const seqCorral: number[] = [];
    for (let i = 0; i < 30; i++) seqCorral.push(await corralOne());
    const phases = fx.area.service.list().map((r) => r.timings);
    const med = (k: 'namespacesMs' | 'cniAddMs' | 'infraStartMs' | 'totalMs') => pct(phases.map((t) => t[k] ?? 0), 50).toFixed(1);
    const phaseLine = `phases p50: namespaces ${med('namespacesMs')} ms, cni_add ${med('cniAddMs')} ms, infra_start ${med('infraStartMs')} ms, total ${med('totalMs')} ms`;
    await removeAll();
    const conFloor = await Promise.all(Array.from({ length: 10 }, floorOne));
    await floorCleanup();
    const conCorral = await Promise.all(Array.from({ length: 10 }, corralOne));
    await removeAll();

    console.log('RunPodSandbox (in-process service, no gRPC hop)');
    console.log(`  30 sequential  corral: ${fmt(seqCorral)}   floor: ${fmt(seqFloor)}   ratio p50 ${(pct(seqCorral, 50) / pct(seqFloor, 50)).toFixed(2)}x`);
    console.log(`    ${phaseLine} (CNI ADD and infra start overlap)`);
    console.log(`  10 concurrent  corral: ${fmt(conCorral)}   floor: ${fmt(conFloor)}   ratio p50 ${(pct(conCorral, 50) / pct(conFloor, 50)).toFixed(2)}x`);

    for (let i = 0; i < 50; i++) await corralOne();
    global.gc?.();
    console.log(`  RSS with 50 pods alive: ${(process.memoryUsage().rss / 1048576).toFixed(1)} MB`);
  } finally {
    await floorCleanup().catch(() => undefined);
    await removeAll().catch(() => undefined);
    await fx.cleanup();
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
