/**
 * Cost of spawning a short-lived helper from a daemon-sized Node process: run('true') through
 * child_process.spawn (fork of the whole process) against run() through corral-spawn, with the RSS
 * inflated to ~150 MB like the daemon's. Reports wall time per spawn, event-loop busy time per spawn
 * (eventLoopUtilization), the longest single synchronous run() call, and the worst event-loop delay.
 *   npx tsc -p . --outDir dist-x && node dist-x/bench/spawn.js     (BENCH_QUICK=1: N=100; SPAWN_RSS_MB=…)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { run } from '../src/sys/exec';
import { closeSpawner, defaultSpawnerPath, sharedSpawner } from '../src/sys/spawner';

const N = process.env.BENCH_QUICK ? 100 : 500;
const CONCURRENCY = 16;
const RSS_MB = Number(process.env.SPAWN_RSS_MB ?? 150);

interface Row {
  mode: string;
  rssMb: number;
  msPerSpawn: number;
  busyMsPerSpawn: number;
  maxSyncMs: number;
  maxLoopDelayMs: number;
  concurrentMsPerSpawn: number;
}

const ballast: Buffer[] = [];
function inflate(mb: number): void {
  while (process.memoryUsage().rss < mb * 1024 * 1024) ballast.push(Buffer.alloc(8 * 1024 * 1024, 1));
}

/** N sequential run('true'), then N with CONCURRENCY in flight. */
async function measure(mode: string): Promise<Row> {
  for (let i = 0; i < 20; i++) await run('true', []); // warm up (and start the spawner)
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const elu0 = performance.eventLoopUtilization();
  let maxSync = 0;
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const s = performance.now();
    const p = run('true', []);
    maxSync = Math.max(maxSync, performance.now() - s);
    await p;
  }
  const wall = performance.now() - t0;
  const elu = performance.eventLoopUtilization(elu0);
  delay.disable();
  const t1 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < N) await run('true', []);
    }),
  );
  const concurrent = performance.now() - t1;
  const r3 = (x: number) => Math.round(x * 1000) / 1000;
  return {
    mode,
    rssMb: Math.round(process.memoryUsage().rss / 1048576),
    msPerSpawn: r3(wall / N),
    busyMsPerSpawn: r3(elu.active / N),
    maxSyncMs: r3(maxSync),
    maxLoopDelayMs: r3(delay.max / 1e6),
    concurrentMsPerSpawn: r3(concurrent / N),
  };
}

async function main(): Promise<void> {
  let tmp: string | undefined;
  if (!existsSync(defaultSpawnerPath())) {
    // Not built by `make build`: compile it for this run.
    tmp = mkdtempSync(path.join(tmpdir(), 'corral-bench-spawn-'));
    const bin = path.join(tmp, 'corral-spawn');
    execFileSync('cc', ['-O2', '-o', bin, path.resolve(__dirname, '../../src/native/corral-spawn.c')]);
    process.env.CORRAL_SPAWNER_BIN = bin;
  }
  inflate(RSS_MB);
  const rows: Row[] = [];
  try {
    process.env.CORRAL_SPAWNER = '0';
    await closeSpawner();
    rows.push(await measure('child_process.spawn'));
    delete process.env.CORRAL_SPAWNER;
    await closeSpawner();
    if (!sharedSpawner()) throw new Error('corral-spawn did not start');
    rows.push(await measure('corral-spawn'));
  } finally {
    await closeSpawner();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`run('true') x ${N}, RSS ~${RSS_MB} MB (ballast ${ballast.length * 8} MB); concurrent: ${CONCURRENCY} in flight`);
  const head = ['mode', 'RSS MB', 'ms/spawn', 'loop busy ms/spawn', 'max sync ms', 'max loop delay ms', 'ms/spawn (concurrent)'];
  const body = rows.map((r) => [r.mode, r.rssMb, r.msPerSpawn, r.busyMsPerSpawn, r.maxSyncMs, r.maxLoopDelayMs, r.concurrentMsPerSpawn].map(String));
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  for (const line of [head, ...body]) console.log(line.map((c, i) => c.padEnd(w[i])).join('  '));
  console.log('RESULT ' + JSON.stringify({ bench: 'spawn', n: N, rssTargetMb: RSS_MB, rows }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
