/**
 * Pull behaviour under stalls, token auth variants, contention and restarts, with real timing
 * against the in-process fake registry. Layers of 1 MiB and more are extracted on worker threads,
 * so the large-layer tests here exercise that path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Registry } from 'prom-client';
import { buildImage } from '../../e2e/harness/oci-image';
import { isCorralError } from '../../src/core/errors';
import { waitFor } from '../../src/core/wait';
import { RegistryClient } from '../../src/image/registry/client';
import { resolveEndpoints } from '../../src/image/registry/hosts';
import { parseReference } from '../../src/image/reference';
import { ImageService } from '../../src/image/service';
import { FakeRegistry } from './fake-registry';
import { captureLogger, testConfig, withService } from './helpers';

const MiB = 1024 * 1024;
const bigData = randomBytes(3 * MiB);
const bigImg = buildImage({
  layers: [
    [{ name: 'etc/base', type: 'file', data: Buffer.from('base\n') }],
    [{ name: 'data/big.bin', type: 'file', data: bigData }],
  ],
});
const small = [{ name: 'etc/base', type: 'file' as const, data: Buffer.from('base\n') }];

async function withRegistry(fn: (reg: FakeRegistry) => Promise<void>, opts?: ConstructorParameters<typeof FakeRegistry>[0]) {
  const reg = await new FakeRegistry(opts).start();
  try {
    await fn(reg);
  } finally {
    await reg.stop();
  }
}

const tmpDirs = (root: string) => readdirSync(path.join(root, 'snapshots')).filter((n) => n.startsWith('.tmp'));

test('client: a blob that stalls mid-transfer is resumed with Range within the stall window', async () => {
  await withRegistry(async (reg) => {
    reg.addImage('test/img', '1', bigImg);
    const layer = bigImg.layers[1];
    reg.faults.set(layer.digest, 'stall-once');
    reg.stallAfter.set(layer.digest, 100_000);
    const client = new RegistryClient({ stallBytes: 1, stallWindowMs: 300, attempts: 3, backoffMs: 5 });
    try {
      const [ep] = resolveEndpoints(parseReference(`${reg.host}/test/img:1`), { insecure: [], blocked: [], mirrors: [] });
      const chunks: Buffer[] = [];
      const t0 = Date.now();
      await client.session(ep).fetchBlob(layer, (c) => void chunks.push(c), AbortSignal.timeout(10_000));
      const ms = Date.now() - t0;
      assert.ok(Buffer.concat(chunks).equals(layer.data));
      assert.deepEqual(reg.ranges, ['bytes=100000-']);
      // Detected after one or two silent windows (300 ms each), not by a long timeout.
      assert.ok(ms >= 250 && ms < 3_000, `took ${ms} ms`);
    } finally {
      await client.close();
    }
  });
});

test('service: a stalled layer resumes with Range through the same verifier and extractor; the pull completes', async () => {
  await withRegistry(async (reg) => {
    reg.addImage('test/big', '1', bigImg);
    const layer = bigImg.layers[1];
    reg.faults.set(layer.digest, 'stall-once');
    reg.stallAfter.set(layer.digest, 512 * 1024);
    const log = captureLogger();
    await withService(
      async (svc, cfg) => {
        await svc.warmUp();
        const t0 = Date.now();
        const r = await svc.pull(`${reg.host}/test/big:1`);
        const ms = Date.now() - t0;
        assert.equal(r.image.id, bigImg.config.digest);
        assert.deepEqual(reg.ranges, [`bytes=${512 * 1024}-`]);
        assert.equal(reg.count(`/v2/test/big/blobs/${layer.digest}`), 2);
        assert.ok(ms < 8_000, `took ${ms} ms with a 1 s stall window`);
        // Downloaded bytes count each byte once: nothing was fetched twice.
        assert.equal(r.downloadedBytes, bigImg.layers.reduce((a, l) => a + l.size, 0) + bigImg.config.size);
        const dirs = svc.layerDirs(r.image.id);
        assert.ok(readFileSync(path.join(dirs[0], 'data/big.bin')).equals(bigData));
        assert.deepEqual(tmpDirs(cfg.root), []);
      },
      (c) => (c.image.stall_window_seconds = 1),
      { log },
    );
  });
});

test('identity token: the refresh token is exchanged with an OAuth2 POST at the token realm', async () => {
  await withRegistry(
    async (reg) => {
      reg.addImage('test/a', '1', buildImage({ layers: [small] }));
      await withService(async (svc) => {
        await assert.rejects(svc.pull(`${reg.host}/test/a:1`, { identityToken: 'wrong' }), (e: unknown) => isCorralError(e, 'Unauthenticated') && (e as Error).message.includes(reg.host));
        const r = await svc.pull(`${reg.host}/test/a:1`, { identityToken: 'refresh-xyz' });
        assert.ok(r.image.id.startsWith('sha256:'));
        const form = reg.tokenPosts[reg.tokenPosts.length - 1];
        assert.equal(form.get('grant_type'), 'refresh_token');
        assert.equal(form.get('refresh_token'), 'refresh-xyz');
        assert.equal(form.get('service'), 'fake');
        assert.match(form.get('scope') ?? '', /^repository:.+:pull$/);
        assert.ok(form.get('client_id'));
      });
    },
    { auth: 'bearer', refreshToken: 'refresh-xyz' },
  );
});

test('registry token: sent as the bearer token as is, no token endpoint round trip', async () => {
  await withRegistry(
    async (reg) => {
      reg.addImage('test/a', '1', buildImage({ layers: [small] }));
      await withService(async (svc) => {
        await svc.pull(`${reg.host}/test/a:1`, { registryToken: 'good-token' });
        assert.equal(reg.tokenRequests, 0);
      });
    },
    { auth: 'bearer' },
  );
});

test('a pull stuck on its registry does not block another image from the same registry', async () => {
  await withRegistry(async (reg) => {
    const slow = buildImage({ layers: [[{ name: 'slow', type: 'file', data: Buffer.from('s') }]] });
    const fast = buildImage({ layers: [[{ name: 'fast', type: 'file', data: Buffer.from('f') }]] });
    reg.addImage('test/slow', '1', slow);
    reg.addImage('test/fast', '1', fast);
    reg.faults.set(slow.layers[0].digest, 'hold');
    await withService(
      async (svc) => {
        let slowDone = false;
        const slowPull = svc.pull(`${reg.host}/test/slow:1`).finally(() => (slowDone = true));
        await waitFor(() => reg.heldCount > 0, { what: 'slow blob request parked' });
        const r = await svc.pull(`${reg.host}/test/fast:1`);
        assert.equal(r.image.id, fast.config.digest);
        assert.equal(slowDone, false);
        assert.deepEqual(svc.list().map((i) => i.id), [fast.config.digest], 'nothing half-pulled is listed');
        reg.releaseHeld();
        assert.equal((await slowPull).image.id, slow.config.digest);
      },
      (c) => {
        c.image.max_concurrent_downloads = 1;
        c.image.stall_window_seconds = 60;
      },
    );
  });
});

test('dedupe by chain id: a layer already unpacked is not downloaded again, even under another compressed digest', async () => {
  await withRegistry(async (reg) => {
    const gz = buildImage({ layers: [small, [{ name: 'a', type: 'file', data: Buffer.from('a') }]] });
    const plain = buildImage({ layers: [small, [{ name: 'b', type: 'file', data: Buffer.from('b') }]], compression: 'none' });
    assert.notEqual(gz.layers[0].digest, plain.layers[0].digest);
    assert.equal(gz.diffIds[0], plain.diffIds[0]);
    reg.addImage('test/gz', '1', gz);
    reg.addImage('test/plain', '1', plain);
    await withService(async (svc) => {
      await svc.pull(`${reg.host}/test/gz:1`);
      const r = await svc.pull(`${reg.host}/test/plain:1`);
      assert.equal(reg.count(`/v2/test/plain/blobs/${plain.layers[0].digest}`), 0);
      assert.equal(reg.count(`/v2/test/plain/blobs/${plain.layers[1].digest}`), 1);
      assert.equal(r.skippedBytes, plain.layers[0].size);
      assert.equal(svc.layerDirs(gz.config.digest)[1], svc.layerDirs(plain.config.digest)[1]);
    });
  });
});

test('worker extraction: a corrupt large layer is discarded at the end; a hostile one fails with InvalidArgument', async () => {
  await withRegistry(async (reg) => {
    reg.addImage('test/big', '1', bigImg);
    reg.faults.set(bigImg.layers[1].digest, 'corrupt');
    const hostile = buildImage({
      layers: [[
        { name: 'pad.bin', type: 'file', data: randomBytes(2 * MiB) },
        { name: '../escape', type: 'file', data: Buffer.from('x') },
      ]],
    });
    reg.addImage('test/hostile', '1', hostile);
    await withService(async (svc, cfg) => {
      assert.equal((svc as unknown as { extractors: { workerAvailable: boolean } }).extractors.workerAvailable, true, 'compiled worker found');
      await assert.rejects(svc.pull(`${reg.host}/test/big:1`), /RegistryUnavailable: .*digest mismatch/);
      assert.deepEqual(tmpDirs(cfg.root), []);
      assert.equal(svc.list().length, 0);
      // Only the small base layer was committed.
      assert.equal((await svc.snapshots.list()).length, 1);
      await assert.rejects(svc.pull(`${reg.host}/test/hostile:1`), (e: unknown) => isCorralError(e, 'InvalidArgument') && /\.\./.test((e as Error).message));
      assert.deepEqual(tmpDirs(cfg.root), []);
      assert.ok(!existsSync(path.join(cfg.root, 'snapshots', 'escape')));
      // The pool recovers: the same layer pulls fine once the registry serves it intact.
      reg.faults.delete(bigImg.layers[1].digest);
      const ok = await svc.pull(`${reg.host}/test/big:1`);
      assert.ok(readFileSync(path.join(svc.layerDirs(ok.image.id)[0], 'data/big.bin')).equals(bigData));
    });
  });
});

test('worker extraction of zstd and uncompressed large layers', async () => {
  await withRegistry(async (reg) => {
    const data = randomBytes(2 * MiB);
    const zst = buildImage({ layers: [[{ name: 'z/big', type: 'file', data }, { name: 'z/link', type: 'symlink', linkname: 'big' }]], compression: 'zstd' });
    const raw = buildImage({ layers: [[{ name: 'r/big', type: 'file', data }]], compression: 'none' });
    reg.addImage('test/zst', '1', zst);
    reg.addImage('test/raw', '1', raw);
    await withService(async (svc) => {
      const a = await svc.pull(`${reg.host}/test/zst:1`);
      assert.ok(readFileSync(path.join(svc.layerDirs(a.image.id)[0], 'z/big')).equals(data));
      assert.equal(readlinkSync(path.join(svc.layerDirs(a.image.id)[0], 'z/link')), 'big');
      const b = await svc.pull(`${reg.host}/test/raw:1`);
      assert.ok(readFileSync(path.join(svc.layerDirs(b.image.id)[0], 'r/big')).equals(data));
    });
  });
});

test('startup removes half-unpacked snapshot dirs and interrupted ingests, and logs them', async () => {
  const cfg = testConfig();
  const ingest = path.join(cfg.root, 'content/ingest');
  const snaps = path.join(cfg.root, 'snapshots');
  mkdirSync(ingest, { recursive: true });
  mkdirSync(path.join(snaps, '.tmp-deadbeef/fs/etc'), { recursive: true });
  writeFileSync(path.join(snaps, '.tmp-deadbeef/fs/etc/half'), 'x');
  writeFileSync(path.join(ingest, `${'a'.repeat(64)}.0123ab`), 'partial');
  const log = captureLogger();
  const svc = await ImageService.open({ config: cfg, log });
  try {
    assert.deepEqual(readdirSync(ingest), []);
    assert.deepEqual(readdirSync(snaps), []);
    const ing = log.lines.find((l) => l.msg === 'removed interrupted downloads');
    const sn = log.lines.find((l) => l.msg === 'removed half-unpacked layer snapshots');
    assert.deepEqual(ing?.fields?.paths, [path.join(ingest, `${'a'.repeat(64)}.0123ab`)]);
    assert.deepEqual(sn?.fields?.paths, [path.join(snaps, '.tmp-deadbeef')]);
  } finally {
    await svc.close();
    rmSync(cfg.root, { recursive: true, force: true });
  }
});

test('metrics: pulls by outcome and reason, bytes pulled and skipped, duration', async () => {
  await withRegistry(async (reg) => {
    const img = buildImage({ layers: [small] });
    reg.addImage('test/a', '1', img);
    const metrics = new Registry();
    await withService(
      async (svc) => {
        await svc.pull(`${reg.host}/test/a:1`);
        await svc.pull(`${reg.host}/test/a:1`);
        await assert.rejects(svc.pull(`${reg.host}/test/missing:1`));
        const text = await metrics.metrics();
        assert.match(text, /corral_image_pulls_total\{outcome="success",reason=""\} 2/);
        assert.match(text, /corral_image_pulls_total\{outcome="failure",reason="NotFound"\} 1/);
        const pulled = Number(/corral_image_pull_bytes_total (\d+)/.exec(text)?.[1]);
        assert.equal(pulled, img.layers[0].size + img.config.size);
        const skipped = Number(/corral_image_pull_skipped_bytes_total (\d+)/.exec(text)?.[1]);
        assert.equal(skipped, img.layers[0].size + img.config.size);
        assert.match(text, /corral_image_pull_duration_seconds_count\{outcome="success"\} 2/);
      },
      undefined,
      { metrics },
    );
  });
});

test('a leased image removed by RemoveImage keeps its layers across a restart; a re-pull downloads nothing; release collects', async () => {
  await withRegistry(async (reg) => {
    const img = buildImage({ layers: [small, [{ name: 'app', type: 'file', data: Buffer.from('app') }]] });
    reg.addImage('test/a', '1', img);
    const cfg = testConfig();
    try {
      let svc = await ImageService.open({ config: cfg });
      await svc.pull(`${reg.host}/test/a:1`);
      const dirs = await svc.acquire(img.config.digest, 'ctr-1');
      await svc.remove(`${reg.host}/test/a:1`);
      assert.equal(svc.list().length, 0);
      await svc.close();
      svc = await ImageService.open({ config: cfg });
      try {
        assert.deepEqual(svc.leaseHolders(), ['ctr-1']);
        for (const d of dirs) assert.equal(readFileSync(path.join(d, d === dirs[0] ? 'app' : 'etc/base'), 'utf8'), d === dirs[0] ? 'app' : 'base\n');
        const again = await svc.pull(`${reg.host}/test/a:1`);
        assert.equal(again.downloadedBytes, img.config.size, 'only the config (collected with the image) is fetched again');
        await svc.remove(img.config.digest);
        await svc.release('ctr-1');
        assert.deepEqual(await svc.snapshots.list(), []);
        assert.deepEqual(svc.leaseHolders(), []);
      } finally {
        await svc.close();
      }
    } finally {
      rmSync(cfg.root, { recursive: true, force: true });
    }
  });
});
