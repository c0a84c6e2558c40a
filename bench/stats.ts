import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { CgroupReader, detectCgroupLayout, type CgroupLayout } from '../src/stats/cgroup';
import { StatsService, type ContainerStatsTarget, type PodStatsTarget } from '../src/stats/service';

/**
 * Stats collection cost with 100 containers (10 pods × 10): the ListContainerStats, ListPodSandboxStats and
 * ListPodSandboxMetrics domain calls over real cgroups (v1 or v2, as root) or, without root, a fixture tree of
 * cgroup v2 files. Each container has a small writable layer dir. Prints latency per call and per container.
 */
const PODS = 10;
const PER_POD = 10;
const ROUNDS = 30;

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
const fmt = (xs: number[]) => `p50 ${pct(xs, 50).toFixed(2)} ms  p99 ${pct(xs, 99).toFixed(2)} ms`;

async function realCgroupDirs(layout: CgroupLayout, rel: string): Promise<string[]> {
  if (layout.version === 2) return [path.join(layout.root, rel)];
  return [layout.cpuacct, layout.memory, layout.pids].filter((d): d is string => !!d).map((d) => path.join(d, rel));
}

async function main(): Promise<void> {
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'corral-bench-stats-'));
  const base = `corral-bench-${randomBytes(4).toString('hex')}`;
  const created: string[] = [];
  let reader: CgroupReader;
  let mode: string;
  try {
    const layout = await detectCgroupLayout();
    const real = process.getuid?.() === 0 && (layout.version === 2 || !!layout.memory);
    if (real) {
      reader = new CgroupReader({ layout });
      mode = `real cgroup v${layout.version}`;
    } else {
      const root = path.join(tmp, 'cgroup');
      await fs.mkdir(root);
      await fs.writeFile(path.join(root, 'cgroup.controllers'), 'cpu memory pids\n');
      reader = new CgroupReader({ layout: { version: 2, root } });
      mode = 'fixture cgroup v2 files (not root)';
    }
    const mk = async (rel: string) => {
      if (real) {
        for (const d of await realCgroupDirs(layout, rel)) {
          await fs.mkdir(d);
          created.push(d);
        }
      } else {
        const d = path.join(tmp, 'cgroup', rel);
        await fs.mkdir(d, { recursive: true });
        await fs.writeFile(path.join(d, 'cpu.stat'), 'usage_usec 1000\n');
        await fs.writeFile(path.join(d, 'memory.current'), '1048576\n');
        await fs.writeFile(path.join(d, 'memory.stat'), 'anon 1\nfile 2\ninactive_file 3\npgfault 4\npgmajfault 5\n');
        await fs.writeFile(path.join(d, 'pids.current'), '1\n');
      }
    };
    await mk(base);
    const pods: PodStatsTarget[] = [];
    for (let p = 0; p < PODS; p++) {
      await mk(`${base}/pod${p}`);
      const containers: ContainerStatsTarget[] = [];
      for (let c = 0; c < PER_POD; c++) {
        const id = `p${p}c${c}`;
        await mk(`${base}/pod${p}/corral-${id}`);
        const upper = path.join(tmp, 'upper', id);
        await fs.mkdir(path.join(upper, 'etc'), { recursive: true });
        for (let f = 0; f < 20; f++) await fs.writeFile(path.join(upper, 'etc', `f${f}`), 'x'.repeat(100 * f));
        containers.push({ id, podSandboxId: `pod${p}`, cgroupsPath: `/${base}/pod${p}/corral-${id}`, upperDir: upper, name: id, image: 'img', podName: `pod${p}`, podNamespace: 'bench' });
      }
      pods.push({ id: `pod${p}`, podCgroupPath: `/${base}/pod${p}`, infraPid: process.pid, podName: `pod${p}`, podNamespace: 'bench', containers });
    }
    const all = pods.flatMap((p) => p.containers);

    const measure = async (fn: () => Promise<unknown>) => {
      const out: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        const t0 = process.hrtime.bigint();
        await fn();
        out.push(Number(process.hrtime.bigint() - t0) / 1e6);
      }
      return out;
    };
    // Cold: the disk usage cache is empty every round (a fresh service), so each upper dir is walked.
    const cold = await measure(() => new StatsService({ reader }).listContainerStats(all));
    const svc = new StatsService({ reader });
    const warm = await measure(() => svc.listContainerStats(all));
    const podStats = await measure(() => svc.listPodStats(pods));
    const podMetrics = await measure(() => svc.listPodMetrics(pods));
    const single = await measure(() => svc.containerStats(all[0]));

    const n = all.length;
    console.log(`bench/stats: ${n} containers in ${PODS} pods, ${mode}, ${ROUNDS} rounds`);
    console.log(`  ListContainerStats (disk walk, cold)   ${fmt(cold)}   per container p50 ${(pct(cold, 50) / n).toFixed(3)} ms`);
    console.log(`  ListContainerStats (disk usage cached) ${fmt(warm)}   per container p50 ${(pct(warm, 50) / n).toFixed(3)} ms`);
    console.log(`  ListPodSandboxStats                    ${fmt(podStats)}   per container p50 ${(pct(podStats, 50) / n).toFixed(3)} ms`);
    console.log(`  ListPodSandboxMetrics                  ${fmt(podMetrics)}   per container p50 ${(pct(podMetrics, 50) / n).toFixed(3)} ms`);
    console.log(`  ContainerStats (one)                   ${fmt(single)}`);
    console.log(
      'RESULT ' +
        JSON.stringify({
          bench: 'stats',
          mode,
          containers: n,
          listContainerStatsColdP50Ms: pct(cold, 50),
          listContainerStatsP50Ms: pct(warm, 50),
          listContainerStatsP99Ms: pct(warm, 99),
          listPodSandboxStatsP50Ms: pct(podStats, 50),
          listPodSandboxMetricsP50Ms: pct(podMetrics, 50),
          containerStatsP50Ms: pct(single, 50),
        }),
    );
  } finally {
    for (const d of created.reverse()) await fs.rmdir(d).catch(() => undefined);
    await fs.rm(tmp, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
