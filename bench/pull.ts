/**
 * Pull + unpack throughput of corral's image service for a generated ~200 MB multi-layer image from a
 * local docker-registry, beside `skopeo copy docker://… dir:` (download + verify + fsync, no unpack) of
 * the same image in the same run. Each round runs both into fresh directories, alternating which goes
 * first; prints MB/s per round, the medians, their ratio, and whether the target (corral no slower
 * than skopeo) is met.
 *
 *   node dist/bench/pull.js [total-MiB=200] [layers=4] [rounds=5]
 *
 * CORRAL_BENCH_PROFILE=dir writes a .cpuprofile of corral's pulls there (open in Chrome devtools).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run } from '../src/sys/exec';
import { startRegistry } from '../e2e/harness/registry';
import { buildImage, pushImage, randomLayer } from '../e2e/harness/oci-image';

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  const totalMiB = Number(process.argv[2] ?? 200);
  const layers = Number(process.argv[3] ?? 4);
  const rounds = Number(process.argv[4] ?? 5);
  const per = Math.floor((totalMiB * 1024 * 1024) / layers);
  const reg = await startRegistry();
  const work = mkdtempSync(path.join(os.tmpdir(), 'corral-bench-'));
  try {
    process.stdout.write(`building ${layers} layers x ${(per / 1048576).toFixed(0)} MiB of random files... `);
    const img = buildImage({ layers: Array.from({ length: layers }, () => randomLayer(per, Math.ceil(per / (4 * 1024 * 1024)))) });
    const bytes = img.layers.reduce((a, l) => a + l.size, img.config.size + img.manifest.size);
    await pushImage(reg, 'bench/img', '1', img);
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

    const corral = async (i: number): Promise<number> => {
      const cfg = defaults();
      cfg.root = path.join(work, `corral-${i}`);
      const svc = await ImageService.open({ config: cfg });
      if (session) await post('Profiler.start');
      const t0 = process.hrtime.bigint();
      const res = await svc.pull(`${reg.host}/bench/img:1`);
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (session) {
        const { profile } = (await post('Profiler.stop')) as { profile: unknown };
        writeFileSync(path.join(profileDir!, `pull-${i}.cpuprofile`), JSON.stringify(profile));
      }
      await svc.close();
      if (res.downloadedBytes < bytes * 0.99) throw new Error(`corral downloaded only ${res.downloadedBytes} bytes`);
      rmSync(cfg.root, { recursive: true, force: true });
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
      console.log(`round ${i + 1}: corral ${mbps(cs[i]).toFixed(1)} MB/s  skopeo ${mbps(ss[i]).toFixed(1)} MB/s  ratio ${ratio.toFixed(2)}`);
    }
    session?.disconnect();
    const cm = median(cs);
    const sm = median(ss);
    const ratio = mbps(cm) / mbps(sm);
    console.log(`corral pull+unpack : median ${cm.toFixed(2)} s  ${mbps(cm).toFixed(1)} MB/s`);
    console.log(`skopeo copy dir:   : median ${sm.toFixed(2)} s  ${mbps(sm).toFixed(1)} MB/s`);
    console.log(`ratio corral/skopeo: ${ratio.toFixed(2)}`);
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
