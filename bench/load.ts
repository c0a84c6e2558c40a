/**
 * Load (issue 8 point 7): N pods × 2 containers created concurrently, M ExecSync across them, then everything
 * removed; totals, p50/p99 per phase and leak counts (mounts, netns, processes, cgroups, IPAM, daemon fds and
 * RSS against a warmed-up baseline). Full size here (50 pods, 1000 ExecSync); e2e/load.test.ts runs the same
 * workload small in `make test`.
 *   npx tsc -p . --outDir dist-x && node dist-x/bench/load.js      (BENCH_QUICK=1: 10 pods, 200 ExecSync)
 */
import { existsSync, mkdirSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { ImageClient, RuntimeClient } from '../e2e/harness/cri-client';
import { startRegistry } from '../e2e/harness/registry';
import { buildBusyboxImage, pushImage } from '../e2e/harness/oci-image';
import { waitFor } from '../src/core/wait';
import { run } from '../src/sys/exec';
import { mountPoints } from '../src/sys/mount';
import { NETWORKS, type BenchNetwork } from './lib-net';
import { leftOversText, startCorral, type Peer } from './lib-peer';
import { rssMiB } from './lib-proc';
import { n, pct, pool, round } from './lib-stats';
import { table } from './lib-table';

export interface LoadTarget {
  rt: RuntimeClient;
  img: ImageClient;
  /** The daemon's pid (fd and RSS are read from /proc). */
  pid: number;
  /** The daemon's private dir (root, run root, socket): mounts and conmon command lines name it. */
  dir: string;
  runRoot: string;
  network: BenchNetwork;
  cgroupParent: string;
}

export interface LoadOptions {
  image: string;
  pods: number;
  containersPerPod: number;
  execs: number;
  /** ExecSync calls in flight at once. */
  execConcurrency: number;
  logDir: string;
  /** Pod name prefix (pods of a warm-up round get another). */
  prefix?: string;
  /** Called once every pod and container runs, before the ExecSync phase. */
  whileLoaded?: () => Promise<void>;
}

export interface PhaseSummary {
  n: number;
  totalMs: number;
  p50: number;
  p99: number;
  max: number;
}

export interface Leaks {
  mounts: string[];
  netns: string[];
  processes: string[];
  cgroups: string[];
  ipam: string[];
  veths: string[];
}

export interface Resources {
  fds: number;
  rssMiB: number;
}

export interface LoadResult {
  errors: string[];
  phases: { runPod: PhaseSummary; createStart: PhaseSummary; exec: PhaseSummary; remove: PhaseSummary };
}

function phase(samples: number[], totalMs: number): PhaseSummary {
  return { n: samples.length, totalMs: round(totalMs, 0), p50: round(pct(samples, 50)), p99: round(pct(samples, 99)), max: round(Math.max(...samples)) };
}

/** Runs fn, recording its duration into samples and its failure into errors. */
async function timedInto<T>(samples: number[], errors: string[], what: string, fn: () => Promise<T>): Promise<T | undefined> {
  const t = performance.now();
  try {
    const v = await fn();
    samples.push(performance.now() - t);
    return v;
  } catch (e) {
    errors.push(`${what}: ${(e as Error).message}`);
    return undefined;
  }
}

/** The workload: pods and containers concurrently, ExecSync across them, then everything removed. */
export async function runLoad(t: LoadTarget, o: LoadOptions): Promise<LoadResult> {
  const errors: string[] = [];
  const prefix = o.prefix ?? 'load';
  const ns = { network: 'POD' as const, pid: 'CONTAINER' as const, ipc: 'POD' as const, target_id: '' };
  const podCfg = (i: number) => ({
    metadata: { name: `${prefix}-${i}`, namespace: 'load', uid: `uid-${prefix}-${i}`, attempt: 0 },
    hostname: `${prefix}-${i}`,
    log_directory: path.join(o.logDir, `${prefix}-${i}`),
    linux: { cgroup_parent: t.cgroupParent, security_context: { namespace_options: ns } },
  });
  const runPod: number[] = [];
  const createStart: number[] = [];
  const exec: number[] = [];
  const remove: number[] = [];

  // 1. Every pod at once; in each, its containers at once.
  let t0 = performance.now();
  const pods = await Promise.all(
    Array.from({ length: o.pods }, async (_, i) => {
      const cfg = podCfg(i);
      const pod = await timedInto(runPod, errors, `RunPodSandbox ${cfg.metadata.name}`, async () => (await t.rt.RunPodSandbox({ config: cfg }, { timeoutMs: 120_000 })).pod_sandbox_id);
      if (!pod) return { pod, containers: [] as string[] };
      const containers = await Promise.all(
        Array.from({ length: o.containersPerPod }, (_, j) =>
          timedInto(createStart, errors, `CreateContainer+StartContainer ${cfg.metadata.name}/c${j}`, async () => {
            const ctr = { metadata: { name: `c${j}`, attempt: 0 }, image: { image: o.image }, command: ['sleep', '3600'], log_path: `c${j}.log`, linux: { security_context: { namespace_options: ns } } };
            const { container_id: id } = await t.rt.CreateContainer({ pod_sandbox_id: pod, config: ctr, sandbox_config: cfg }, { timeoutMs: 120_000 });
            await t.rt.StartContainer({ container_id: id }, { timeoutMs: 120_000 });
            return id;
          }),
        ),
      );
      return { pod, containers: containers.filter((c): c is string => !!c) };
    }),
  );
  const createMs = performance.now() - t0;
  await o.whileLoaded?.();

  // 2. ExecSync round-robin over every container, execConcurrency in flight.
  const all = pods.flatMap((p) => p.containers);
  t0 = performance.now();
  if (all.length > 0) {
    await pool(Array.from({ length: o.execs }, (_, i) => i), o.execConcurrency, async (i) => {
      const id = all[i % all.length];
      await timedInto(exec, errors, `ExecSync #${i}`, async () => {
        const r = await t.rt.ExecSync({ container_id: id, cmd: ['echo', `exec-${i}`], timeout: '30' }, { timeoutMs: 60_000 });
        if (r.exit_code !== 0 || r.stdout.toString().trim() !== `exec-${i}`) throw new Error(`answered exit ${r.exit_code} stdout ${JSON.stringify(r.stdout.toString())} stderr ${JSON.stringify(r.stderr.toString())}`);
      });
    });
  }
  const execMs = performance.now() - t0;

  // 3. Remove as kubelet does: containers first, then the pod; every pod at once.
  t0 = performance.now();
  await Promise.all(
    pods.map((p) =>
      timedInto(remove, errors, `remove pod ${p.pod}`, async () => {
        for (const id of p.containers) await t.rt.StopContainer({ container_id: id, timeout: '0' }, { timeoutMs: 60_000 });
        await Promise.all(p.containers.map((id) => t.rt.RemoveContainer({ container_id: id }, { timeoutMs: 60_000 })));
        if (!p.pod) return;
        await t.rt.StopPodSandbox({ pod_sandbox_id: p.pod }, { timeoutMs: 60_000 });
        await t.rt.RemovePodSandbox({ pod_sandbox_id: p.pod }, { timeoutMs: 60_000 });
      }),
    ),
  );
  const removeMs = performance.now() - t0;
  const left = await t.rt.ListPodSandbox({}).then((r) => r.items.length, () => -1);
  if (left !== 0) errors.push(`${left} pods still listed after removal`);
  const leftCtrs = await t.rt.ListContainers({}).then((r) => r.containers.length, () => -1);
  if (leftCtrs !== 0) errors.push(`${leftCtrs} containers still listed after removal`);

  return {
    errors,
    phases: { runPod: phase(runPod, createMs), createStart: phase(createStart, createMs), exec: phase(exec, execMs), remove: phase(remove, removeMs) },
  };
}

/** Open fds and RSS of the daemon. */
export async function resources(pid: number): Promise<Resources> {
  return { fds: (await fs.readdir(`/proc/${pid}/fd`)).length, rssMiB: round((await rssMiB(pid)) ?? NaN, 1) };
}

/** What the workload may leave on the machine; every list is empty when nothing leaked. */
export async function leaks(t: LoadTarget): Promise<Leaks> {
  const mounts = [...(await mountPoints())].filter((m) => m.startsWith(t.dir + '/') && !m.endsWith('/netns'));
  const netnsDir = path.join(t.runRoot, 'netns');
  const netns = existsSync(netnsDir) ? await fs.readdir(netnsDir) : [];
  const processes: string[] = [];
  for (const pid of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === t.pid) continue;
    try {
      const cg = await fs.readFile(`/proc/${pid}/cgroup`, 'utf8');
      const args = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
      if (cg.includes(t.cgroupParent + '/') || (args.includes(t.dir) && !args.includes('cli/main.js'))) processes.push(`${pid}: ${args.slice(0, 120)}`);
    } catch {
      /* gone */
    }
  }
  const cgroups: string[] = [];
  for (const h of await fs.readdir('/sys/fs/cgroup').catch(() => [] as string[])) {
    const dir = path.join('/sys/fs/cgroup', h, t.cgroupParent);
    for (const e of await fs.readdir(dir, { withFileTypes: true }).catch(() => [])) if (e.isDirectory()) cgroups.push(path.join(dir, e.name));
  }
  const ipamDir = `/var/lib/cni/networks/${t.network.name}`;
  const ipam = (await fs.readdir(ipamDir).catch(() => [] as string[])).filter((x) => /^\d+\.\d+\.\d+\.\d+$/.test(x));
  const v = (await run('ip', ['-o', 'link', 'show', 'master', t.network.bridge], { allowFailure: true, timeoutMs: 10_000 })).stdout.trim();
  return { mounts, netns, processes, cgroups, ipam, veths: v ? v.split('\n') : [] };
}

/** Waits (bounded) until nothing leaks: conmon and runc exit a moment after their containers. */
export async function settledLeaks(t: LoadTarget, timeoutMs = 10_000): Promise<Leaks> {
  let last = await leaks(t);
  await waitFor(async () => {
    last = await leaks(t);
    return Object.values(last).every((l) => l.length === 0);
  }, { timeoutMs, intervalMs: 200, what: 'no leaks' }).catch(() => undefined);
  return last;
}

/** Waits (bounded) for the daemon's fd count to come back within `slack` of the baseline. */
export async function settledResources(pid: number, baseline: Resources, slack: number, timeoutMs = 10_000): Promise<Resources> {
  let last = await resources(pid);
  await waitFor(async () => {
    last = await resources(pid);
    return last.fds <= baseline.fds + slack;
  }, { timeoutMs, intervalMs: 200, what: 'fd count back at the baseline' }).catch(() => undefined);
  return last;
}

export function leakCounts(l: Leaks): Record<keyof Leaks, number> {
  return Object.fromEntries(Object.entries(l).map(([k, v]) => [k, v.length])) as Record<keyof Leaks, number>;
}

export function formatLoad(r: LoadResult): string {
  const p = r.phases;
  return table(
    ['phase', 'n', 'total ms', 'p50 ms', 'p99 ms', 'max ms'],
    [
      ['RunPodSandbox (all pods at once)', String(p.runPod.n), p.runPod.totalMs, p.runPod.p50, p.runPod.p99, p.runPod.max],
      ['CreateContainer + StartContainer', String(p.createStart.n), p.createStart.totalMs, p.createStart.p50, p.createStart.p99, p.createStart.max],
      ['ExecSync `echo`', String(p.exec.n), p.exec.totalMs, p.exec.p50, p.exec.p99, p.exec.max],
      ['stop + remove containers and pod', String(p.remove.n), p.remove.totalMs, p.remove.p50, p.remove.p99, p.remove.max],
    ],
  );
}

const CGROUP = '/corral-bench-load';

/** The daemon's V8 heap in use (MiB) from its metrics endpoint: RSS keeps V8's high-water mark, this does not. */
async function heapUsedMiB(peer: Peer): Promise<number> {
  const addr = /serving metrics address=(\S+)/.exec(peer.logs())?.[1];
  if (!addr) return NaN;
  const text = await fetch(`http://${addr}/metrics`).then((r) => r.text(), () => '');
  const m = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)/m.exec(text);
  return m ? round(Number(m[1]) / 1048576, 1) : NaN;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) {
    console.log('bench/load: needs root; skipped');
    return;
  }
  const pods = n(50, 10);
  const execs = n(1000, 200);
  const reg = await startRegistry();
  let peer: Peer | undefined;
  try {
    await pushImage(reg, 'bench/busybox', '1', buildBusyboxImage());
    const image = `${reg.host}/bench/busybox:1`;
    peer = await startCorral({ network: NETWORKS.corral, cgroupParent: CGROUP });
    await peer.img.PullImage({ image: { image } });
    const logDir = path.join(peer.dir, 'logs');
    mkdirSync(logDir, { recursive: true });
    const target: LoadTarget = { rt: peer.rt, img: peer.img, pid: peer.pid, dir: peer.dir, runRoot: path.join(peer.dir, 'run'), network: NETWORKS.corral, cgroupParent: CGROUP };
    // Warm-up round: lazily loaded code and worker pools count in the baseline, not as growth.
    const warm = await runLoad(target, { image, pods: 2, containersPerPod: 2, execs: 20, execConcurrency: 4, logDir, prefix: 'warm' });
    if (warm.errors.length) throw new Error(`warm-up failed: ${warm.errors.join('; ')}`);
    await settledLeaks(target);
    const baseline = await resources(peer.pid);
    const heap0 = await heapUsedMiB(peer);
    const t0 = performance.now();
    const r = await runLoad(target, { image, pods, containersPerPod: 2, execs, execConcurrency: 16, logDir });
    const wallMs = performance.now() - t0;
    const peak = await resources(peer.pid);
    const left = await settledLeaks(target);
    const after = await settledResources(peer.pid, baseline, 5);
    const heap1 = await heapUsedMiB(peer);
    // The same load again: memory that is the heap's high-water mark stays flat; a leak grows by as much again.
    const again = await runLoad(target, { image, pods, containersPerPod: 2, execs, execConcurrency: 16, logDir, prefix: 'again' });
    const left2 = await settledLeaks(target);
    const after2 = await settledResources(peer.pid, baseline, 5);
    const heap2 = await heapUsedMiB(peer);
    r.errors.push(...again.errors);
    for (const [k, v] of Object.entries(left2)) left[k as keyof Leaks].push(...v);
    console.log(`${pods} pods × 2 containers created concurrently, ${execs} ExecSync (16 in flight), then all removed: ${(wallMs / 1000).toFixed(1)} s (first round; a second round checks memory)\n`);
    console.log(formatLoad(r));
    console.log(`\nerrors: ${r.errors.length}${r.errors.length ? `\n  ${r.errors.slice(0, 10).join('\n  ')}` : ''}`);
    console.log(`leaks: ${JSON.stringify(leakCounts(left))}`);
    console.log(`daemon fds: baseline ${baseline.fds}, after ${after.fds}, after a second round ${after2.fds}`);
    console.log(`daemon RSS MiB: baseline ${baseline.rssMiB}, right after the load ${peak.rssMiB}, after removal ${after.rssMiB}, after a second round ${after2.rssMiB}`);
    console.log(`daemon V8 heap in use MiB: baseline ${heap0}, after removal ${heap1}, after a second round ${heap2} (RSS keeps V8's high-water mark; a leak shows here)`);
    console.log('RESULT ' + JSON.stringify({
      bench: 'load', pods, containersPerPod: 2, execs, wallMs: round(wallMs, 0), errors: r.errors.length, phases: r.phases,
      leaks: leakCounts(left), fds: { baseline: baseline.fds, after: after.fds, afterSecondRound: after2.fds },
      rssMiB: { baseline: baseline.rssMiB, peak: peak.rssMiB, after: after.rssMiB, afterSecondRound: after2.rssMiB },
      heapUsedMiB: { baseline: heap0, after: heap1, afterSecondRound: heap2 },
    }));
    if (r.errors.length > 0 || Object.values(left).some((l) => l.length > 0)) process.exitCode = 1;
  } finally {
    if (peer) console.log(`cleanup: left behind ${leftOversText(await peer.stop())}`);
    await reg.stop();
  }
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exitCode = 1;
  });
}
