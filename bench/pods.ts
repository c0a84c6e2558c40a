/**
 * RunPodSandbox through the daemon (gRPC over its socket): p50/p95 for 30 sequential and 10 concurrent
 * pods, alternating A/B/B/A with the floor measured in the same run (the same namespaces + CNI ADD +
 * `runc run -d` of the catatonit infra done directly by this script), per-phase timings from verbose
 * status, and the daemon's RSS with 50 pods alive. Needs root, runc, conmon, catatonit and CNI plugins.
 *   npx tsc -p . --outDir dist-x && node dist-x/bench/pods.js       (BENCH_QUICK=1: smaller counts)
 */
import { existsSync, mkdirSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run } from '../src/sys/exec';
import { pinNamespaces, unpinNamespaces } from '../src/sys/netns';
import { execPlugin, pluginStdin } from '../src/network/invoke';
import { parseNetworkConfig } from '../src/network/config';
import { buildInfraSpec, INFRA_ROOTFS_DIRS } from '../src/oci/infra';
import { newId } from '../src/core/ids';
import { conflist, NETWORKS, removeCgroupTree, removeNetwork, unmountUnder } from './lib-net';
import { leftOversText, removeAllPods, startCorral, type Peer } from './lib-peer';
import { rssMiB, runQuiet } from './lib-proc';
import { alternate, n, pct, pool, ratio, round, summarize, timed } from './lib-stats';
import { table } from './lib-table';

const CGROUP = '/corral-bench-pods';
const SEQ = n(30, 6);
const CONC = 10;
const ALIVE = n(50, 15);
const CAN_RUN = process.getuid?.() === 0 && ['/usr/bin/conmon', '/usr/sbin/runc', '/usr/bin/catatonit', '/usr/lib/cni/bridge'].every((p) => existsSync(p));

async function main() {
  if (!CAN_RUN) {
    console.log('bench/pods: needs root, runc, conmon, catatonit and CNI plugins; skipped');
    return;
  }
  const list = parseNetworkConfig(JSON.stringify(conflist(NETWORKS.floor)), 'floor.conflist');
  const floorRoot = await fs.mkdtemp(path.join(os.tmpdir(), 'corral-bench-floor-'));
  const rootfs = path.join(floorRoot, 'rootfs');
  for (const d of INFRA_ROOTFS_DIRS) await fs.mkdir(path.join(rootfs, d), { recursive: true });
  await fs.writeFile(path.join(rootfs, 'catatonit'), '');
  const runcRoot = path.join(floorRoot, 'runc');
  const floorIds: string[] = [];
  const pod = (id: string) => ({ namespace: 'bench', name: id.slice(0, 8), uid: id, id });

  const floorOne = async (): Promise<number> => {
    const id = newId();
    floorIds.push(id);
    const t = performance.now();
    const ns = { net: path.join(floorRoot, 'netns', id), ipc: path.join(floorRoot, 'ipcns', id), uts: path.join(floorRoot, 'utsns', id) };
    const shm = path.join(floorRoot, 'shm', id);
    await pinNamespaces({ ...ns, shm: { path: shm, sizeBytes: 64 << 20 } });
    const inv = { command: 'ADD' as const, containerId: id, netns: ns.net, ifName: 'eth0', pod: pod(id), pluginDirs: ['/usr/lib/cni'] };
    let prev: unknown;
    for (const p of list.plugins) prev = await execPlugin(p.type, inv, pluginStdin(list, p, {}, prev), 20_000);
    const bundle = path.join(floorRoot, 'b', id);
    await fs.mkdir(bundle, { recursive: true });
    const spec = buildInfraSpec({ rootfs, catatonit: '/usr/bin/catatonit', hostname: 'floor', netns: ns.net, ipcns: ns.ipc, utsns: ns.uts, pid: 'pod', cgroupsPath: `${CGROUP}/floor-${id}`, sysctls: {}, uid: 65535, gid: 65535, readonlyRootfs: true, shmPath: shm, annotations: {} });
    await fs.writeFile(path.join(bundle, 'config.json'), JSON.stringify(spec));
    await runQuiet('/usr/sbin/runc', [`--root=${runcRoot}`, 'run', '--detach', '--bundle', bundle, id]);
    return performance.now() - t;
  };
  const floorCleanup = async () => {
    await pool(floorIds.splice(0), 4, async (id) => {
      await run('/usr/sbin/runc', [`--root=${runcRoot}`, 'delete', '--force', id], { allowFailure: true });
      const netns = path.join(floorRoot, 'netns', id);
      const inv = { command: 'DEL' as const, containerId: id, netns, ifName: 'eth0', pod: pod(id), pluginDirs: ['/usr/lib/cni'] };
      for (const p of [...list.plugins].reverse()) await execPlugin(p.type, inv, pluginStdin(list, p, {}), 20_000).catch(() => undefined);
      await unpinNamespaces([netns, path.join(floorRoot, 'ipcns', id), path.join(floorRoot, 'utsns', id), path.join(floorRoot, 'shm', id)]);
    });
  };

  let peer: Peer | undefined;
  try {
    peer = await startCorral({ network: NETWORKS.corral, cgroupParent: CGROUP });
    const p = peer;
    let seq = 0;
    const corralOne = async (): Promise<number> => {
      const name = `p${seq++}`;
      const config = { metadata: { name, namespace: 'bench', uid: `uid-${name}`, attempt: 0 }, hostname: name, log_directory: path.join(p.dir, 'logs', name), linux: { cgroup_parent: CGROUP } };
      mkdirSync(config.log_directory, { recursive: true });
      return timed(() => p.rt.RunPodSandbox({ config }, { timeoutMs: 120_000 }));
    };

    // Warm up both paths once (page cache, bridge creation).
    await floorOne();
    await corralOne();
    await floorCleanup();
    await removeAllPods(p.rt);

    const seqR = await alternate(SEQ, { corral: corralOne, floor: floorOne });
    const infos = await Promise.all((await p.rt.ListPodSandbox({})).items.map((s) => p.rt.PodSandboxStatus({ pod_sandbox_id: s.id, verbose: true })));
    const phases = infos.map((i) => (JSON.parse(i.info.info ?? '{}') as { timings?: Record<string, number> }).timings ?? {});
    const med = (k: string) => pct(phases.map((t) => t[k] ?? 0), 50).toFixed(1);
    const phaseLine = `corral phases p50: namespaces ${med('namespacesMs')} ms, cni_add ${med('cniAddMs')} ms, infra_start ${med('infraStartMs')} ms, total ${med('totalMs')} ms (CNI ADD and infra start overlap)`;
    await removeAllPods(p.rt);
    await floorCleanup();
    const concR = await alternate(2, {
      corral: async () => {
        const xs = await Promise.all(Array.from({ length: CONC }, corralOne));
        await removeAllPods(p.rt);
        return xs;
      },
      floor: async () => {
        const xs = await Promise.all(Array.from({ length: CONC }, floorOne));
        await floorCleanup();
        return xs;
      },
    });

    await pool(Array.from({ length: ALIVE }), 4, corralOne);
    const rss = (await rssMiB(p.pid)) ?? NaN;

    const row = (label: string, c: number[], f: number[]) => {
      const cs = summarize(c);
      const fs2 = summarize(f);
      return [label, cs.p50, cs.p95, fs2.p50, fs2.p95, ratio(cs.p50, fs2.p50)];
    };
    console.log('RunPodSandbox through the daemon (gRPC), alternating with the floor (namespaces + CNI ADD + runc run, done directly)\n');
    console.log(table(['workload', 'corral p50', 'corral p95', 'floor p50', 'floor p95', 'ratio p50'], [row(`${SEQ} sequential`, seqR.corral, seqR.floor), row(`${CONC} concurrent (x2)`, concR.corral, concR.floor)]));
    console.log(`\n${phaseLine}`);
    console.log(`daemon RSS with ${ALIVE} pods alive: ${rss.toFixed(1)} MiB`);
    const seqRatio = ratio(pct(seqR.corral, 50), pct(seqR.floor, 50));
    console.log(seqRatio <= 1.3 ? `TARGET MET: sequential p50 is ${seqRatio.toFixed(2)}x the floor (target ≤ 1.3x)` : `TARGET NOT MET: sequential p50 is ${seqRatio.toFixed(2)}x the floor (target ≤ 1.3x)`);
    console.log('RESULT ' + JSON.stringify({ bench: 'pods', sequential: { corral: summarize(seqR.corral), floor: summarize(seqR.floor) }, concurrent: { corral: summarize(concR.corral), floor: summarize(concR.floor) }, ratioSeqP50: round(seqRatio, 3), rssMiB: round(rss, 1), alive: ALIVE, targetMet: seqRatio <= 1.3 }));
  } finally {
    await floorCleanup().catch(() => undefined);
    if (peer) console.log(`cleanup: corral left behind ${leftOversText(await peer.stop())}`);
    await removeNetwork(NETWORKS.floor);
    await removeCgroupTree(CGROUP);
    await unmountUnder(floorRoot);
    await fs.rm(floorRoot, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
