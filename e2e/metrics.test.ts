/**
 * The metrics endpoint as a real Prometheus sees it: Debian's prometheus, started on loopback with a temp
 * storage dir, scrapes the daemon every second; after image pulls, the HTTP API returns corral's pull counter
 * and the CRI latency histogram with the expected labels.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { waitFor } from '../src/core/wait';
import { startDaemon, type TestDaemon } from './harness/daemon';
import { removeCgroup } from '../src/sys/cgroups';
import { freePort, startRegistry, type TestRegistry } from './harness/registry';
import { buildBusyboxImage, pushImage } from './harness/oci-image';

const PROMETHEUS = '/usr/bin/prometheus';
const SETPRIV = '/usr/bin/setpriv';

interface TestPrometheus {
  url: string;
  dir: string;
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

/** Starts prometheus scraping `target` ("host:port") every second; stop() ends it (SIGTERM, then SIGKILL) and removes its dir. */
async function startPrometheus(target: string): Promise<TestPrometheus> {
  accessSync(PROMETHEUS, constants.X_OK);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'corral-prom-'));
  const configFile = path.join(dir, 'prometheus.yml');
  writeFileSync(
    configFile,
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'scrape_configs:',
      '  - job_name: corral',
      '    static_configs:',
      `      - targets: [${JSON.stringify(target)}]`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const args = [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${path.join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--log.level=warn',
  ];
  // --pdeathsig KILL: if this test process dies, even by SIGKILL, the kernel kills prometheus too.
  const child = spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', PROMETHEUS, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const keep = (b: Buffer) => (out = (out + b.toString()).slice(-16_384));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const res = await Promise.race([exited.then(() => 'exited'), new Promise((r) => (timer = setTimeout(() => r('timeout'), 10_000)))]);
      clearTimeout(timer);
      if (res === 'timeout') {
        child.kill('SIGKILL');
        await exited;
      }
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(
      async () => {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`prometheus exited early:\n${out}`);
        const r = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1000) });
        await r.arrayBuffer();
        return r.status === 200;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'prometheus to be ready' },
    );
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}\n--- prometheus output ---\n${out}`);
  }
  return { url, dir, child, output: () => out, stop };
}

interface Series {
  metric: Record<string, string>;
  value: [number, string];
}

async function query(p: TestPrometheus, promql: string): Promise<Series[]> {
  const r = await fetch(`${p.url}/api/v1/query?query=${encodeURIComponent(promql)}`, { signal: AbortSignal.timeout(5000) });
  const body = (await r.json()) as { status: string; data?: { resultType: string; result: Series[] }; error?: string };
  if (body.status !== 'success') throw new Error(`query ${promql}: ${body.error}`);
  return body.data!.result;
}

let reg: TestRegistry;
let d: TestDaemon;
let prom: TestPrometheus | undefined;

before(async () => {
  reg = await startRegistry();
  await pushImage(reg, 'e2e/busybox', '1', buildBusyboxImage());
  d = await startDaemon();
});

after(async () => {
  await prom?.stop();
  await d?.cleanup();
  await reg?.stop();
  await removeCgroup('/corral-e2e-metrics');
});

test('a real Prometheus scrapes corral: image pull counter and CRI latency histogram with labels', async () => {
  const addr = d.metricsAddress();
  assert.ok(addr, 'daemon logged its metrics address');
  assert.match(addr, /^127\.0\.0\.1:\d+$/);

  await d.img.PullImage({ image: { image: `${reg.host}/e2e/busybox:1` } });
  await assert.rejects(d.img.PullImage({ image: { image: `${reg.host}/e2e/absent:1` } }));
  // A pod run too (host network: no CNI needed here), so pod and RPC series exist for it.
  const podCfg = {
    metadata: { name: 'prom', namespace: 'e2e-metrics', uid: 'uid-prom', attempt: 0 },
    log_directory: `${d.dir}/logs`,
    linux: { cgroup_parent: '/corral-e2e-metrics', security_context: { namespace_options: { network: 'NODE' as const } } },
  };
  const { pod_sandbox_id: podId } = await d.rt.RunPodSandbox({ config: podCfg });

  prom = await startPrometheus(addr);
  const p = prom;

  const up = await waitFor(async () => (await query(p, 'up{job="corral"}')).find((s) => s.value[1] === '1'), {
    timeoutMs: 30_000,
    intervalMs: 250,
    what: 'prometheus to scrape corral successfully',
  });
  assert.equal(up.metric.instance, addr);

  const pulls = await waitFor(
    async () => {
      const r = await query(p, 'corral_image_pulls_total');
      return r.some((s) => s.metric.outcome === 'success') && r.some((s) => s.metric.outcome === 'failure') ? r : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 250, what: 'corral_image_pulls_total series' },
  );
  const ok = pulls.find((s) => s.metric.outcome === 'success')!;
  assert.equal(ok.metric.__name__, 'corral_image_pulls_total');
  assert.equal(ok.metric.job, 'corral');
  assert.equal(ok.metric.instance, addr);
  assert.equal(ok.metric.reason, undefined, 'an empty reason is no label in Prometheus');
  assert.equal(Number(ok.value[1]), 1);
  const failed = pulls.find((s) => s.metric.outcome === 'failure')!;
  assert.equal(failed.metric.reason, 'NotFound');

  const buckets = await waitFor(
    async () => {
      const r = await query(p, 'corral_cri_operation_duration_seconds_bucket{operation="PullImage"}');
      return r.length > 0 ? r : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 250, what: 'PullImage latency buckets' },
  );
  assert.ok(buckets.every((s) => s.metric.operation === 'PullImage' && s.metric.le !== undefined && s.metric.code !== undefined));
  assert.ok(buckets.some((s) => s.metric.code === 'OK'), `codes: ${[...new Set(buckets.map((s) => s.metric.code))].join(',')}`);
  assert.ok(buckets.some((s) => s.metric.code === 'NOT_FOUND'));
  const inf = buckets.find((s) => s.metric.le === '+Inf' && s.metric.code === 'OK')!;
  assert.equal(Number(inf.value[1]), 1, 'one successful PullImage observed');

  const pods = await waitFor(async () => (await query(p, 'corral_pods{state="ready"}')).find((s) => s.value[1] === '1'), {
    timeoutMs: 30_000,
    intervalMs: 250,
    what: 'corral_pods{state="ready"} = 1',
  });
  assert.equal(pods.metric.job, 'corral');
  const run = await query(p, 'corral_cri_operations_total{operation="RunPodSandbox",code="OK"}');
  assert.equal(run.length, 1);
  await d.rt.StopPodSandbox({ pod_sandbox_id: podId });
  await d.rt.RemovePodSandbox({ pod_sandbox_id: podId });

  // Node process metrics from prom-client's defaults ride along.
  const rss = await query(p, 'process_resident_memory_bytes{job="corral"}');
  assert.ok(rss.length === 1 && Number(rss[0].value[1]) > 0);

  const pid = p.child.pid!;
  await p.stop();
  prom = undefined;
  assert.ok(p.child.exitCode !== null || p.child.signalCode !== null, 'prometheus exited');
  assert.throws(() => process.kill(pid, 0), 'no process left behind');
  assert.throws(() => accessSync(p.dir), 'temp dir removed');
});
