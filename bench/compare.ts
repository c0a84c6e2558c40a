/**
 * corral side by side with containerd 1.6 (Debian's, CRI plugin) on this machine, in one run (issue 9).
 * Both daemons run at once on their own temp roots, the same CNI network shape (one bridge/subnet each),
 * the same images from one local registry, driven by the same CRI client; every workload alternates
 * A/B/B/A between them so machine drift cancels out. Reports p50/p95 and the ratio corral/containerd,
 * and says for each target of issue 9 whether it is met.
 *
 *   npx tsc -p . --outDir dist-bench && node dist-bench/bench/compare.js
 *   BENCH_QUICK=1      smaller counts (smoke run, ~3 min)
 *   BENCH_PROFILE=dir  writes a V8 CPU profile of the corral daemon there (open in Chrome devtools)
 */
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { startRegistry, type TestRegistry } from '../e2e/harness/registry';
import { buildBusyboxImage, buildImage, buildPauseImage, pushImage, randomLayer } from '../e2e/harness/oci-image';
import { run } from '../src/sys/exec';
import { startContainerd } from './lib-containerd';
import { NETWORKS } from './lib-net';
import { leftOversText, removeAllPods, startCorral, type Peer } from './lib-peer';
import { rssMiB, sumPss } from './lib-proc';
import { alternate, n, pool, QUICK, ratio, round, summarize, timed, type Summary } from './lib-stats';
import { table, type Cell } from './lib-table';

const CGROUP = { corral: '/corral-bench-a', containerd: '/corral-bench-b' };
const GRPC_UNIMPLEMENTED = 12;
const BIG_MIB = Number(process.env.BENCH_PULL_MIB ?? (QUICK ? 64 : 200));
const BIG_LAYERS = 4;

const COUNTS = {
  seq: n(30, 6),
  concurrent: 10,
  concurrentBatches: n(2, 1),
  exec: n(40, 10),
  listRounds: n(100, 20),
  few: 20,
  many: n(200, 40),
  pullRounds: n(3, 1),
  pullPresent: n(10, 4),
};

interface Ctx {
  busybox: string;
  containers: boolean;
  seq: number;
}

const podConfig = (p: Peer, ctx: Ctx, tag: string) => {
  const name = `${tag}-${ctx.seq++}`;
  return {
    metadata: { name, namespace: 'bench', uid: `uid-${name}`, attempt: 0 },
    hostname: name,
    log_directory: path.join(p.dir, 'logs', name),
    linux: {
      cgroup_parent: p.name === 'corral' ? CGROUP.corral : CGROUP.containerd,
      security_context: { namespace_options: { network: 'POD' as const, pid: 'CONTAINER' as const, ipc: 'POD' as const, target_id: '' } },
    },
    labels: { bench: tag },
  };
};

const sleepConfig = (ctx: Ctx) => ({
  metadata: { name: 'sleep', attempt: 0 },
  image: { image: ctx.busybox },
  command: ['sleep', '3600'],
  log_path: 'sleep.log',
  linux: {
    security_context: {
      namespace_options: { network: 'POD' as const, pid: 'CONTAINER' as const, ipc: 'POD' as const, target_id: '' },
      seccomp: { profile_type: 'RuntimeDefault' as const, localhost_ref: '' },
    },
  },
});

interface Pod {
  id: string;
  container?: string;
}

/** The "pod start" unit: RunPodSandbox, then (when corral has containers) CreateContainer + StartContainer of busybox sleep. */
async function startPod(p: Peer, ctx: Ctx, tag: string): Promise<{ pod: Pod; ms: number }> {
  const cfg = podConfig(p, ctx, tag);
  mkdirSync(cfg.log_directory, { recursive: true });
  const t = performance.now();
  const { pod_sandbox_id: id } = await p.rt.RunPodSandbox({ config: cfg }, { timeoutMs: 120_000 });
  let container: string | undefined;
  if (ctx.containers) {
    container = (await p.rt.CreateContainer({ pod_sandbox_id: id, config: sleepConfig(ctx), sandbox_config: cfg }, { timeoutMs: 120_000 })).container_id;
    await p.rt.StartContainer({ container_id: container }, { timeoutMs: 120_000 });
  }
  return { pod: { id, container }, ms: performance.now() - t };
}

async function teardown(p: Peer, pod: Pod): Promise<number> {
  return timed(async () => {
    await p.rt.StopPodSandbox({ pod_sandbox_id: pod.id }, { timeoutMs: 120_000 });
    await p.rt.RemovePodSandbox({ pod_sandbox_id: pod.id }, { timeoutMs: 120_000 });
  });
}

/** Child mode: builds the ~200 MB image and pushes it (keeps the data out of this process). */
async function pushBig(host: string, repo: string, mib: number, layers: number): Promise<void> {
  const per = Math.floor((mib * 1024 * 1024) / layers);
  const img = buildImage({ layers: Array.from({ length: layers }, () => randomLayer(per, Math.ceil(per / (4 * 1024 * 1024)))) });
  await pushImage({ host, url: `http://${host}` } as TestRegistry, repo, '1', img);
  process.stdout.write(JSON.stringify({ bytes: img.layers.reduce((a, l) => a + l.size, img.config.size + img.manifest.size) }));
}

interface Row {
  workload: string;
  corral?: Summary;
  containerd?: Summary;
  floor?: Summary;
  unit: string;
  target?: number;
  note?: string;
}

async function memory(p: Peer): Promise<{ rss: number; helpers: number; helperPss: number }> {
  const rss = (await rssMiB(p.pid)) ?? NaN;
  const h = await sumPss(await p.helperPids());
  return { rss: round(rss, 1), helpers: h.count, helperPss: round(h.pssMiB, 1) };
}

async function main(): Promise<void> {
  if (process.argv[2] === '--push-big') return pushBig(process.argv[3], process.argv[4], Number(process.argv[5]), Number(process.argv[6]));
  if (process.getuid?.() !== 0) {
    console.log('bench/compare: needs root (runc, CNI, mounts); skipped');
    return;
  }
  const t0 = Date.now();
  const log = (m: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${m}`);
  const rows: Row[] = [];
  const mem: Record<string, Record<string, { rss: number; helpers: number; helperPss: number }>> = { corral: {}, containerd: {} };
  const notes: string[] = [];
  let peers: Peer[] = [];
  const reg = await startRegistry();
  try {
    log('building and pushing images (busybox, pause, big)');
    await pushImage(reg, 'bench/busybox', '1', buildBusyboxImage());
    await pushImage(reg, 'bench/pause', '3.10', buildPauseImage());
    const pushed = await run(process.execPath, [__filename, '--push-big', reg.host, 'bench/big', String(BIG_MIB), String(BIG_LAYERS)], { timeoutMs: 600_000 });
    const bigBytes = (JSON.parse(pushed.stdout) as { bytes: number }).bytes;

    log('starting corral and containerd');
    const corral = await startCorral({ network: NETWORKS.corral, cgroupParent: CGROUP.corral, cpuProfileDir: process.env.BENCH_PROFILE });
    peers.push(corral);
    const ctrd = await startContainerd({ registryHost: reg.host, sandboxImage: `${reg.host}/bench/pause:3.10`, network: NETWORKS.containerd, cgroupParent: CGROUP.containerd });
    peers.push(ctrd);
    log(`corral ${corral.version} (pid ${corral.pid}), containerd ${ctrd.version} (pid ${ctrd.pid})`);
    const both = { corral, containerd: ctrd };
    const ctx: Ctx = { busybox: `${reg.host}/bench/busybox:1`, containers: true, seq: 0 };

    for (const p of peers) await p.img.PullImage({ image: { image: ctx.busybox } }, { timeoutMs: 120_000 });
    // corral answers UNIMPLEMENTED until its containers area lands; then pod start is RunPodSandbox alone for both.
    ctx.containers = await corral.rt
      .CreateContainer({ pod_sandbox_id: '0'.repeat(64), config: sleepConfig(ctx), sandbox_config: podConfig(corral, ctx, 'probe') })
      .then(() => true, (e: { code?: number }) => e.code !== GRPC_UNIMPLEMENTED);
    if (!ctx.containers) notes.push('corral answers CreateContainer with UNIMPLEMENTED: "pod start" is RunPodSandbox alone for both runtimes; container workloads skipped.');
    const unit = ctx.containers ? 'RunPodSandbox + CreateContainer + StartContainer' : 'RunPodSandbox';

    // Warm-up: one pod each (containerd pulls its sandbox image here), then the idle memory.
    for (const p of peers) await teardown(p, (await startPod(p, ctx, 'warm')).pod);
    for (const [k, p] of Object.entries(both)) mem[k].idle = await memory(p);

    // ---- pod start, sequential, then teardown of those pods ----
    log(`pod start: ${COUNTS.seq} sequential (${unit})`);
    const seqPods: Record<string, Pod[]> = { corral: [], containerd: [] };
    const seq = await alternate(COUNTS.seq, Object.fromEntries(Object.entries(both).map(([k, p]) => [k, async () => {
      const r = await startPod(p, ctx, 'seq');
      seqPods[k].push(r.pod);
      return r.ms;
    }])));
    rows.push({ workload: `pod start, ${COUNTS.seq} sequential`, corral: summarize(seq.corral), containerd: summarize(seq.containerd), unit: 'ms', target: 1 });
    log('teardown: StopPodSandbox + RemovePodSandbox of those pods');
    const down = await alternate(COUNTS.seq, Object.fromEntries(Object.entries(both).map(([k, p]) => [k, async (i: number) => teardown(p, seqPods[k][i])])));
    rows.push({ workload: 'teardown (stop + remove pod)', corral: summarize(down.corral), containerd: summarize(down.containerd), unit: 'ms', target: 1 });

    // ---- pod start, 10 concurrent ----
    log(`pod start: ${COUNTS.concurrentBatches} x ${COUNTS.concurrent} concurrent`);
    const conc = await alternate(COUNTS.concurrentBatches * 2, Object.fromEntries(Object.entries(both).map(([k, p]) => [k, async () => {
      const rs = await Promise.all(Array.from({ length: COUNTS.concurrent }, () => startPod(p, ctx, 'conc')));
      await pool(rs, 4, (r) => teardown(p, r.pod));
      return rs.map((r) => r.ms);
    }])));
    rows.push({ workload: `pod start, ${COUNTS.concurrent} concurrent`, corral: summarize(conc.corral), containerd: summarize(conc.containerd), unit: 'ms', note: 'latency of each pod in the batch' });

    // ---- ExecSync `true`, with `runc exec` as the floor ----
    if (ctx.containers) {
      log(`ExecSync true: ${COUNTS.exec} rounds`);
      const execPods = { corral: (await startPod(corral, ctx, 'exec')).pod, containerd: (await startPod(ctrd, ctx, 'exec')).pod };
      const ctrdRunc = await ctrd.runcRoot(execPods.containerd.container!);
      const ex = await alternate(COUNTS.exec, {
        corral: () => timed(() => corral.rt.ExecSync({ container_id: execPods.corral.container!, cmd: ['true'], timeout: '10' })),
        containerd: () => timed(() => ctrd.rt.ExecSync({ container_id: execPods.containerd.container!, cmd: ['true'], timeout: '10' })),
        floor: () => timed(() => run('/usr/sbin/runc', [`--root=${ctrdRunc}`, 'exec', execPods.containerd.container!, 'true'], { timeoutMs: 30_000 })),
      });
      rows.push({ workload: 'ExecSync `true`', corral: summarize(ex.corral), containerd: summarize(ex.containerd), floor: summarize(ex.floor), unit: 'ms', target: 1, note: 'floor: runc exec' });
      for (const [k, p] of Object.entries(both)) await teardown(p, execPods[k as keyof typeof execPods]);
    }

    // ---- Status / List with 20 and 200 pods alive; memory at each level ----
    const alive: Record<string, Pod[]> = { corral: [], containerd: [] };
    for (const level of [COUNTS.few, COUNTS.many]) {
      log(`filling to ${level} pods each`);
      for (const [k, p] of Object.entries(both)) {
        const more = await pool(Array.from({ length: level - alive[k].length }), 4, () => startPod(p, ctx, 'alive'));
        alive[k].push(...more.map((r) => r.pod));
      }
      log(`Status/List with ${level} pods alive: ${COUNTS.listRounds} rounds`);
      const pick = (k: string, i: number) => alive[k][(i * 7919) % alive[k].length];
      const calls: [string, (p: Peer, k: string, i: number) => Promise<unknown>][] = [
        ['ListPodSandbox', (p) => p.rt.ListPodSandbox({})],
        ['PodSandboxStatus', (p, k, i) => p.rt.PodSandboxStatus({ pod_sandbox_id: pick(k, i).id, verbose: false })],
      ];
      if (ctx.containers) {
        calls.push(['ListContainers', (p) => p.rt.ListContainers({})]);
        calls.push(['ContainerStatus', (p, k, i) => p.rt.ContainerStatus({ container_id: pick(k, i).container!, verbose: false })]);
      }
      for (const [name, call] of calls) {
        const r = await alternate(COUNTS.listRounds, Object.fromEntries(Object.entries(both).map(([k, p]) => [k, (i: number) => timed(() => call(p, k, i))])));
        rows.push({ workload: `${name}, ${level} pods`, corral: summarize(r.corral), containerd: summarize(r.containerd), unit: 'ms', target: level === COUNTS.many ? 1 : undefined });
      }
      for (const [k, p] of Object.entries(both)) mem[k][String(level)] = await memory(p);
    }
    log('removing the pods');
    await Promise.all(peers.map((p) => removeAllPods(p.rt)));

    // ---- PullImage of a fresh ~200 MB image, and of an image already present ----
    log(`PullImage of a fresh ${(bigBytes / 1e6).toFixed(0)} MB image (${BIG_LAYERS} layers): ${COUNTS.pullRounds} rounds`);
    const big = `${reg.host}/bench/big:1`;
    const pulls = await alternate(COUNTS.pullRounds, Object.fromEntries(Object.entries(both).map(([k, p]) => [k, async () => {
      await run('sync', [], { timeoutMs: 120_000 });
      const ms = await timed(() => p.img.PullImage({ image: { image: big } }, { timeoutMs: 600_000 }));
      await p.img.RemoveImage({ image: { image: big } }, { timeoutMs: 120_000 });
      return ms;
    }])));
    rows.push({ workload: `PullImage, new ${(bigBytes / 1e6).toFixed(0)} MB image`, corral: summarize(pulls.corral), containerd: summarize(pulls.containerd), unit: 'ms', target: 1 });
    const present = await alternate(COUNTS.pullPresent, Object.fromEntries(Object.entries(both).map(([k, p]) => [k, () => timed(() => p.img.PullImage({ image: { image: ctx.busybox } }))])));
    rows.push({ workload: 'PullImage, image present', corral: summarize(present.corral), containerd: summarize(present.containerd), unit: 'ms' });

    // ---- report ----
    report(rows, mem, notes, ctx, { corral: corral.version, containerd: ctrd.version }, bigBytes);
  } finally {
    for (const p of peers.reverse()) {
      const left = await p.stop().catch((e: Error) => ({ error: e.message }));
      console.log(`cleanup ${p.name}: left behind ${'error' in left ? `? (${left.error})` : leftOversText(left)}`);
    }
    peers = [];
    await reg.stop();
    console.log(`total time ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }
}

function report(
  rows: Row[],
  mem: Record<string, Record<string, { rss: number; helpers: number; helperPss: number }>>,
  notes: string[],
  ctx: Ctx,
  versions: Record<string, string>,
  bigBytes: number,
): void {
  const fmt = (s?: Summary) => (s ? `${s.p50.toFixed(s.p50 < 10 ? 2 : 1)} / ${s.p95.toFixed(s.p95 < 10 ? 2 : 1)}` : undefined);
  const verdict = (r: number, target?: number): string => (target === undefined || !Number.isFinite(r) ? '' : r <= target ? 'met' : 'MISSED');
  const lines: Cell[][] = rows.map((r) => {
    const q = ratio(r.corral?.p50, r.containerd?.p50);
    return [r.workload, fmt(r.corral), fmt(r.containerd), fmt(r.floor), Number.isFinite(q) ? `${q.toFixed(2)}` : undefined, r.target !== undefined ? `≤ ${r.target.toFixed(1)} ${verdict(q, r.target)}` : ''];
  });
  console.log(`\ncorral ${versions.corral} vs containerd ${versions.containerd} — latency in ms, p50 / p95 (${QUICK ? 'BENCH_QUICK counts' : 'full counts'})\n`);
  console.log(table(['workload', 'corral', 'containerd', 'floor', 'ratio p50', 'target'], lines));

  const levels = ['idle', String(COUNTS.few), String(COUNTS.many)].filter((l) => mem.corral[l] || mem.containerd[l]);
  const total = (m?: { rss: number; helperPss: number }) => (m ? m.rss + m.helperPss : NaN);
  const memRows: Cell[][] = levels.map((l) => {
    const a = mem.corral[l];
    const b = mem.containerd[l];
    const q = ratio(total(a), total(b));
    const label = l === 'idle' ? 'idle' : `${l} pods alive`;
    return [label, a?.rss, b?.rss, `${a?.helperPss.toFixed(1)} (${a?.helpers})`, `${b?.helperPss.toFixed(1)} (${b?.helpers})`, q.toFixed(2), l === String(COUNTS.many) ? `≤ 1.0 ${verdict(q, 1)}` : ''];
  });
  console.log('\nmemory in MiB: daemon RSS; helper PSS summed (conmon for corral, containerd-shim-runc-v2 for containerd), count in ()\n');
  console.log(table(['state', 'corral RSS', 'containerd RSS', 'corral helpers PSS', 'containerd helpers PSS', 'ratio total', 'target'], memRows));

  const targets: { target: string; ratio: number; met: boolean }[] = [];
  const add = (target: string, q: number) => targets.push({ target, ratio: round(q, 3), met: Number.isFinite(q) && q <= 1 });
  const p50 = (w: string, k: 'corral' | 'containerd') => rows.find((r) => r.workload.startsWith(w))?.[k]?.p50;
  const q50 = (w: string) => ratio(p50(w, 'corral'), p50(w, 'containerd'));
  add(`pod start p50 (${ctx.containers ? 'pod + container' : 'RunPodSandbox only'})`, q50('pod start, ' + COUNTS.seq));
  add('teardown p50', q50('teardown'));
  for (const w of ['ListPodSandbox', 'PodSandboxStatus', 'ListContainers', 'ContainerStatus']) {
    if (rows.some((r) => r.workload === `${w}, ${COUNTS.many} pods`)) add(`${w} p50 at ${COUNTS.many} pods`, q50(`${w}, ${COUNTS.many} pods`));
  }
  if (ctx.containers) add('ExecSync p50', q50('ExecSync'));
  add('PullImage of a new image', q50('PullImage, new'));
  add(`daemon RSS + helper PSS at ${COUNTS.many} pods`, ratio(total(mem.corral[String(COUNTS.many)]), total(mem.containerd[String(COUNTS.many)])));
  console.log('\ntargets (issue 9, ratio corral/containerd, same run):');
  for (const t of targets) console.log(`  ${t.met ? 'MET    ' : 'MISSED '} ${t.target}: ${Number.isFinite(t.ratio) ? t.ratio.toFixed(2) : 'not measured'}`);
  for (const n of notes) console.log(`note: ${n}`);
  console.log(
    'RESULT ' +
      JSON.stringify({
        bench: 'compare',
        quick: QUICK,
        versions,
        containers: ctx.containers,
        bigImageBytes: bigBytes,
        rows: rows.map((r) => ({ ...r, ratioP50: round(ratio(r.corral?.p50, r.containerd?.p50), 3) })),
        memoryMiB: mem,
        targets,
        notes,
      }),
  );
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
