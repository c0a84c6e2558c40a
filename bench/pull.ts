/**
 * Pull + unpack throughput of corral's image service for a generated ~200 MB multi-layer image from a
 * local docker-registry, beside `skopeo copy docker://… dir:` (download + verify + fsync, no unpack) of
 * the same image in the same run. Each round runs both into fresh directories, alternating which goes
 * first; prints MB/s per round, the medians, their ratio, and whether the target (corral no slower
 * than skopeo) is met. corral runs with its default settings (max_concurrent_downloads = 3).
 *
 *   node dist/bench/pull.js [total-MiB=200] [layers=4] [rounds=5]
 *
 * CORRAL_BENCH_PROFILE=dir writes a .cpuprofile of corral's pulls there (open in Chrome devtools).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run } from '../src/sys/exec';
import { startRegistry, type TestRegistry } from '../e2e/harness/registry';
import { buildImage, pushImage, randomLayer } from '../e2e/harness/oci-image';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Child mode: builds the image and pushes it, printing its byte count (keeps the data out of the measured process). */
async function pushOnly(host: string, totalMiB: number, layers: number): Promise<void> {
  const per = Math.floor((totalMiB * 1024 * 1024) / layers);
  const img = buildImage({ layers: Array.from({ length: layers }, () => randomLayer(per, Math.ceil(per / (4 * 1024 * 1024)))) });
  await pushImage({ host, url: `http://${host}` } as TestRegistry, 'bench/img', '1', img);
  process.stdout.write(JSON.stringify({ bytes: img.layers.reduce((a, l) => a + l.size, img.config.size + img.manifest.size) }));
}

async function main(): Promise<void> {
  if (process.argv[2] === '--push-only') return pushOnly(process.argv[3], Number(process.argv[4]), Number(process.argv[5]));
  const totalMiB = Number(process.argv[2] ?? 200);
  const layers = Number(process.argv[3] ?? 4);
  const rounds = Number(process.argv[4] ?? 5);
  const reg = await startRegistry();
  const work = mkdtempSync(path.join(os.tmpdir(), 'corral-bench-'));
  try {
    process.stdout.write(`building and pushing ${layers} layers x ${(totalMiB / layers).toFixed(0)} MiB of random files... `);
    // Built in a child process, so this process's memory (and fork cost) is like the daemon's, not 3x the image.
    const pushed = await run(process.execPath, [__filename, '--push-only', reg.host, String(totalMiB), String(layers)], { timeoutMs: 600_000 });
    const { bytes } = JSON.parse(pushed.stdout) as { bytes: number };
    console.log(`pushed ${(bytes / 1e6).toFixed(1)} MB`);

    // Loaded only now: the npm undici it imports replaces the global fetch dispatcher the harness pushes with.
    const { defaults } = require('../src/config/load') as typeof import('../src/config/load');
    const { ImageService } = require('../src/image/service') as typeof import('../src/image/service');
    const profileDir = process.env.CORRAL_BENCH_PROFILE;
    const inspector = profileDir ? (require('node:inspector') as typeof import('node:inspector')) : undefined;
    const session = inspector ? new inspector.Session() : undefined;
    const post = (method: string, params?: object) =>
      new Promise<unknown>((resolve, reject) => session!.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res))));
    if (session) {
      session.connect();
      await post('Profiler.enable');
    }

    // One service for all rounds, as in the daemon (extraction workers started at open, as the daemon does); the image is
    // removed and collected after each round, so every round downloads and unpacks everything again.
    const cfg = defaults();
    cfg.root = path.join(work, 'corral');
    const svc = await ImageService.open({ config: cfg });
    await svc.warmUp();
    const corral = async (i: number): Promise<number> => {
      if (session) await post('Profiler.start');
      const t0 = process.hrtime.bigint();
      const res = await svc.pull(`${reg.host}/bench/img:1`);
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (session) {
        const { profile } = (await post('Profiler.stop')) as { profile: unknown };
        writeFileSync(path.join(profileDir!, `pull-${i}.cpuprofile`), JSON.stringify(profile));
      }
      if (res.downloadedBytes < bytes * 0.99) throw new Error(`corral downloaded only ${res.downloadedBytes} bytes`);
      await svc.remove(res.image.id);
      if ((await svc.snapshots.list()).length > 0) throw new Error('layers not collected between rounds');
      return s;
    };
    const skopeo = async (i: number): Promise<number> => {
      const dest = path.join(work, `skopeo-${i}`);
      const t0 = process.hrtime.bigint();
      await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${reg.host}/bench/img:1`, `dir:${dest}`], { timeoutMs: 600_000 });
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      rmSync(dest, { recursive: true, force: true });
      return s;
    };

    const mbps = (s: number) => bytes / 1e6 / s;
    const cs: number[] = [];
    const ss: number[] = [];
    for (let i = 0; i < rounds; i++) {
      await run('sync', [], { timeoutMs: 120_000 });
      if (i % 2 === 0) {
        cs.push(await corral(i));
        ss.push(await skopeo(i));
      } else {
        ss.push(await skopeo(i));
        cs.push(await corral(i));
      }
      const ratio = mbps(cs[i]) / mbps(ss[i]);
      console.log(`round ${i + 1}${i === 0 ? ' (cold JIT)' : ''}: corral ${mbps(cs[i]).toFixed(1)} MB/s  skopeo ${mbps(ss[i]).toFixed(1)} MB/s  ratio ${ratio.toFixed(2)}`);
    }
    session?.disconnect();
    await svc.close();
    const cm = median(cs);
    const sm = median(ss);
    const ratio = mbps(cm) / mbps(sm);
    console.log(`corral pull+unpack : median ${cm.toFixed(2)} s  ${mbps(cm).toFixed(1)} MB/s`);
    console.log(`skopeo copy dir:   : median ${sm.toFixed(2)} s  ${mbps(sm).toFixed(1)} MB/s`);
    console.log(`ratio corral/skopeo: ${ratio.toFixed(2)}`);
    const result = {
      bench: 'pull',
      imageBytes: bytes,
      layers,
      rounds,
      corralMBps: Number(mbps(cm).toFixed(1)),
      skopeoMBps: Number(mbps(sm).toFixed(1)),
      ratio: Number(ratio.toFixed(3)),
      perRound: cs.map((c, i) => ({ corralMBps: Number(mbps(c).toFixed(1)), skopeoMBps: Number(mbps(ss[i]).toFixed(1)) })),
      targetMet: ratio >= 1,
    };
    console.log(`RESULT ${JSON.stringify(result)}`);
    console.log(ratio >= 1 ? 'TARGET MET: corral pull+unpack is no slower than skopeo copy' : `TARGET NOT MET: corral is ${((1 - ratio) * 100).toFixed(0)}% slower than skopeo copy`);
  } finally {
    await reg.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
