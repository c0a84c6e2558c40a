/**
 * Pull + unpack throughput of corral's image service for a generated ~200 MB multi-layer image from a
 * local docker-registry, beside `skopeo copy docker://… dir:` (download only) of the same image in the
 * same run. Prints MB/s for both and the ratio.
 *
 *   node dist/bench/pull.js [total-MiB] [layers]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run } from '../src/sys/exec';
import { startRegistry } from '../e2e/harness/registry';
import { buildImage, pushImage, randomLayer } from '../e2e/harness/oci-image';

async function main(): Promise<void> {
  const totalMiB = Number(process.argv[2] ?? 200);
  const layers = Number(process.argv[3] ?? 4);
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
    const cfg = defaults();
    cfg.root = path.join(work, 'corral');
    const svc = await ImageService.open({ config: cfg });
    let t0 = process.hrtime.bigint();
    const res = await svc.pull(`${reg.host}/bench/img:1`);
    const corralS = Number(process.hrtime.bigint() - t0) / 1e9;
    await svc.close();
    if (res.downloadedBytes < bytes * 0.99) throw new Error(`corral downloaded only ${res.downloadedBytes} bytes`);

    t0 = process.hrtime.bigint();
    await run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', `docker://${reg.host}/bench/img:1`, `dir:${path.join(work, 'skopeo')}`], {
      timeoutMs: 600_000,
    });
    const skopeoS = Number(process.hrtime.bigint() - t0) / 1e9;

    const mbps = (s: number) => bytes / 1e6 / s;
    console.log(`corral pull+unpack : ${corralS.toFixed(2)} s  ${mbps(corralS).toFixed(1)} MB/s`);
    console.log(`skopeo copy dir:   : ${skopeoS.toFixed(2)} s  ${mbps(skopeoS).toFixed(1)} MB/s`);
    console.log(`ratio corral/skopeo: ${(mbps(corralS) / mbps(skopeoS)).toFixed(2)} (>= 1 means corral is no slower)`);
  } finally {
    await reg.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
