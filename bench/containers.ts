/**
 * Containers through the real daemon (gRPC over its socket), against a floor measured in the same run:
 * the same overlay mount + `runc create` + `runc start` done directly with the same OCI spec.
 *  - CreateContainer+StartContainer p50/p95, 30 sequential containers (floor: 30 direct ones)
 *  - daemon RSS with 100 running containers
 *  - ListContainers and ContainerStatus p50 with 500 containers
 * Needs root, runc, conmon, catatonit, CNI plugins, docker-registry and busybox-static.
 *   npx tsc -p . --outDir dist-x && node dist-x/bench/containers.js
 */
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { startDaemon } from '../e2e/harness/daemon';
import { startRegistry } from '../e2e/harness/registry';
import { buildBusyboxImage, pushImage } from '../e2e/harness/oci-image';
import { CAN_RUN_SYSTEM } from '../test/sandbox/system-fixture';
import { enableNetwork, removeNetwork } from '../e2e/harness/network';
import { newId } from '../src/core/ids';
import { run } from '../src/sys/exec';
import { removeCgroup } from '../src/sys/cgroups';
import { unmountAll } from '../src/sys/mount';
import { runQuiet } from './lib-proc';
import { pct } from './lib-stats';

const CGROUP_PARENT = '/corral-bench-ctr';
const NETWORK = { name: 'corral-bench-ctr', bridge: 'corral-bctr0', subnet: '10.236.0.0/24' };

const r1 = (n: number) => Math.round(n * 100) / 100;

/** VmRSS in MiB. */
function rssMb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Where the RSS lives: anonymous (heap, malloc) vs file-backed (mostly node's own code pages), and the thread count. */
function rssBreakdown(pid: number): string {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  return `anon ${r1(field('RssAnon') / 1024)} MiB, file ${r1(field('RssFile') / 1024)} MiB, ${field('Threads')} threads`;
}

async function main() {
  if (!CAN_RUN_SYSTEM || !existsSync('/usr/bin/docker-registry')) {
    console.log('bench/containers: needs root, runc, conmon, catatonit, CNI plugins and docker-registry; skipped');
    return;
  }
  const reg = await startRegistry();
  const d = await startDaemon({ logLevel: 'warn' });
  const floorDir = path.join(d.dir, 'floor');
  const runcRoot = path.join(floorDir, 'runc');
  const floorIds: string[] = [];
  try {
    await pushImage(reg, 'bench/busybox', '1', buildBusyboxImage());
    const image = `${reg.host}/bench/busybox:1`;
    await enableNetwork(d, NETWORK);
    await d.img.PullImage({ image: { image } });
    const podConfig: any = {
      metadata: { name: 'bench', namespace: 'bench', uid: 'uid-bench', attempt: 0 },
      hostname: 'bench',
      log_directory: path.join(d.dir, 'logs'),
      linux: { cgroup_parent: CGROUP_PARENT, security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD', target_id: '' } } },
    };
    const pod = (await d.rt.RunPodSandbox({ config: podConfig })).pod_sandbox_id;
    let n = 0;
    const ctr = (cmd: string[]): any => ({
      metadata: { name: `c${n++}`, attempt: 0 },
      image: { image },
      command: cmd,
      log_path: `c${n}.log`,
      linux: { security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD', target_id: '' }, seccomp: { profile_type: 'RuntimeDefault' } } },
    });
    const createStart = async (cmd: string[]) => {
      const id = (await d.rt.CreateContainer({ pod_sandbox_id: pod, config: ctr(cmd), sandbox_config: podConfig })).container_id;
      await d.rt.StartContainer({ container_id: id });
      return id;
    };

    // Warm-up (first overlay mount, page cache), and the template for the floor.
    const first = await createStart(['sleep', '3600']);
    const spec = JSON.parse(await fs.readFile(path.join(d.runRoot, 'containers', first, 'config.json'), 'utf8'));
    const mountinfo = await fs.readFile('/proc/self/mountinfo', 'utf8');
    const line = mountinfo.split('\n').find((l) => l.split(' ')[4] === path.join(d.runRoot, 'containers', first, 'rootfs'))!;
    const lowerdir = /lowerdir=([^,]+)/.exec(line)![1];

    const floorOne = async (): Promise<number> => {
      const id = newId();
      floorIds.push(id);
      const t = performance.now();
      const b = path.join(floorDir, id);
      await fs.mkdir(path.join(b, 'upper'), { recursive: true });
      await fs.mkdir(path.join(b, 'work'), { recursive: true });
      await fs.mkdir(path.join(b, 'rootfs'), { recursive: true });
      await run('mount', ['-t', 'overlay', '-o', `lowerdir=${lowerdir},upperdir=${b}/upper,workdir=${b}/work`, 'overlay', `${b}/rootfs`]);
      const s = { ...spec, root: { ...spec.root, path: `${b}/rootfs` }, linux: { ...spec.linux, cgroupsPath: `${CGROUP_PARENT}/floor-${id}` } };
      await fs.writeFile(path.join(b, 'config.json'), JSON.stringify(s));
      await runQuiet('runc', [`--root=${runcRoot}`, 'create', '--bundle', b, id]);
      await runQuiet('runc', [`--root=${runcRoot}`, 'start', id]);
      return performance.now() - t;
    };

    const floor: number[] = [];
    const corral: number[] = [];
    for (let i = 0; i < 30; i++) {
      floor.push(await floorOne());
      const t = performance.now();
      await createStart(['sleep', '3600']);
      corral.push(performance.now() - t);
    }
    const overhead = pct(corral, 50) - pct(floor, 50);
    console.log(`create+start, 30 sequential: corral p50 ${r1(pct(corral, 50))} ms p95 ${r1(pct(corral, 95))} ms; floor p50 ${r1(pct(floor, 50))} ms p95 ${r1(pct(floor, 95))} ms; overhead p50 ${r1(overhead)} ms (target ≤ 25)`);

    while (n < 100) await createStart(['sleep', '3600']);
    const pid = d.pid()!;
    // The daemon runs under setpriv; setpriv execs node, so the pid is the daemon's.
    const rss = rssMb(pid);
    console.log(`daemon RSS with 100 running containers: ${r1(rss)} MiB (target ≤ 90 MB = 85.8 MiB; ${rssBreakdown(pid)})`);

    while (n < 500) await createStart(['true']);
    const ids = (await d.rt.ListContainers({})).containers.map((c) => c.id);
    const list: number[] = [];
    const stat: number[] = [];
    const version: number[] = [];
    // Each call measured in its own loop: a 500-item List leaves garbage in both processes whose GC would
    // otherwise land in the next (small) call's timing.
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await d.rt.Version({});
      version.push(performance.now() - t);
    }
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      const l = await d.rt.ListContainers({});
      list.push(performance.now() - t);
      if (l.containers.length !== 500) throw new Error(`expected 500 containers, got ${l.containers.length}`);
    }
    for (let i = 0; i < 200; i++) {
      const t = performance.now();
      await d.rt.ContainerStatus({ container_id: ids[i % ids.length], verbose: false });
      stat.push(performance.now() - t);
    }
    console.log(`with 500 containers: ListContainers p50 ${r1(pct(list, 50))} ms (target ≤ 20); ContainerStatus p50 ${r1(pct(stat, 50))} ms (target ≤ 1); the gRPC round trip alone (Version) p50 ${r1(pct(version, 50))} ms`);
    const rss500 = rssMb(pid);
    console.log(`daemon RSS with 500 containers (100 running): ${r1(rss500)} MiB (${rssBreakdown(pid)})`);
    console.log(
      'RESULT ' +
        JSON.stringify({
          createStartP50Ms: r1(pct(corral, 50)), createStartP95Ms: r1(pct(corral, 95)), floorP50Ms: r1(pct(floor, 50)), floorP95Ms: r1(pct(floor, 95)),
          overheadP50Ms: r1(overhead), rss100Mb: r1(rss), listP50Ms: r1(pct(list, 50)), statusP50Ms: r1(pct(stat, 50)), versionP50Ms: r1(pct(version, 50)), rss500Mb: r1(rss500),
        }),
    );
    const t = performance.now();
    await d.rt.StopPodSandbox({ pod_sandbox_id: pod });
    await d.rt.RemovePodSandbox({ pod_sandbox_id: pod });
    console.log(`stop+remove of the pod with 500 containers: ${r1((performance.now() - t) / 1000)} s`);
  } finally {
    for (const id of floorIds) await run('runc', [`--root=${runcRoot}`, 'delete', '--force', id], { allowFailure: true });
    await unmountAll(floorIds.map((id) => path.join(floorDir, id, 'rootfs')));
    await d.cleanup();
    await reg.stop();
    await removeNetwork(NETWORK);
    await removeCgroup(CGROUP_PARENT);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
