import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, lstatSync } from 'node:fs';
import * as path from 'node:path';
import { buildImage, buildIndex, hostArchitecture, type BuiltImage } from '../../e2e/harness/oci-image';
import { isCorralError } from '../../src/core/errors';
import { ImageService } from '../../src/image/service';
import { FakeRegistry } from './fake-registry';
import { withService } from './helpers';

const base = [{ name: 'etc/os-release', type: 'file' as const, data: Buffer.from('ID=test\n') }, { name: 'bin/tool', type: 'file' as const, data: Buffer.alloc(100_000, 3), mode: 0o755 }];
const imgA = buildImage({ layers: [base, [{ name: 'app/a', type: 'file', data: Buffer.from('A') }]], config: { User: '1000:1000' } });
const imgB = buildImage({ layers: [base, [{ name: 'app/b', type: 'file', data: Buffer.from('B') }]], config: { User: 'nobody' } });

async function withRegistry(fn: (reg: FakeRegistry) => Promise<void>, opts?: ConstructorParameters<typeof FakeRegistry>[0]) {
  const reg = await new FakeRegistry(opts).start();
  try {
    await fn(reg);
  } finally {
    await reg.stop();
  }
}

function blobHits(reg: FakeRegistry, repo: string, img: BuiltImage): number[] {
  return img.layers.map((l) => reg.count(`/v2/${repo}/blobs/${l.digest}`));
}

test('pull stores blobs, layers and a record; a second pull downloads nothing', async () => {
  await withRegistry(async (reg) => {
    reg.addImage('test/a', '1', imgA);
    await withService(async (svc, cfg) => {
      const ref = `${reg.host}/test/a:1`;
      const r1 = await svc.pull(ref);
      assert.equal(r1.image.id, imgA.config.digest);
      assert.deepEqual(r1.image.repoTags, [`${reg.host}/test/a:1`]);
      assert.deepEqual(r1.image.repoDigests, [`${reg.host}/test/a@${imgA.manifest.digest}`]);
      assert.equal(r1.image.user, '1000:1000');
      assert.equal(r1.image.manifestDigest, imgA.manifest.digest);
      assert.ok(r1.downloadedBytes > 100);
      const dirs = svc.layerDirs(r1.image.id);
      assert.equal(dirs.length, 2);
      assert.equal(readFileSync(path.join(dirs[0], 'app/a'), 'utf8'), 'A');
      assert.equal(lstatSync(path.join(dirs[1], 'bin/tool')).mode & 0o777, 0o755);
      // Manifest and config are stored as blobs; compressed layer blobs are not (only their snapshots).
      const blobs = readdirSync(path.join(cfg.root, 'content/blobs/sha256')).sort();
      assert.deepEqual(blobs, [imgA.config.digest.slice(7), imgA.manifest.digest.slice(7)].sort());
      assert.deepEqual(readdirSync(path.join(cfg.root, 'content/ingest')), []);

      const r2 = await svc.pull(ref);
      assert.equal(r2.downloadedBytes, 0);
      assert.deepEqual(blobHits(reg, 'test/a', imgA), [1, 1]);
      assert.equal(svc.status('sha256:' + imgA.config.digest.slice(7))?.id, imgA.config.digest);
      assert.equal(svc.status(imgA.config.digest.slice(7, 20))?.id, imgA.config.digest);
      assert.equal(svc.list().length, 1);

      // The store survives a restart.
      const again = await ImageService.open({ config: cfg });
      try {
        assert.equal(again.status(ref)?.id, imgA.config.digest);
      } finally {
        await again.close();
      }
    });
  });
});

test('concurrent pulls of one image, and of two images sharing a layer, fetch each blob once', async () => {
  await withRegistry(async (reg) => {
    reg.addImage('test/a', '1', imgA);
    reg.addImage('test/b', '1', imgB);
    await withService(async (svc) => {
      await Promise.all([svc.pull(`${reg.host}/test/a:1`), svc.pull(`${reg.host}/test/a:1`), svc.pull(`${reg.host}/test/b:1`)]);
      const shared = imgA.layers[0].digest;
      assert.equal(imgB.layers[0].digest, shared);
      const baseFetches = reg.count(`/v2/test/a/blobs/${shared}`) + reg.count(`/v2/test/b/blobs/${shared}`);
      assert.equal(baseFetches, 1);
      assert.equal(reg.count(`/v2/test/a/blobs/${imgA.layers[1].digest}`), 1);
      assert.equal(reg.count(`/v2/test/a/manifests/1`), 1);
      assert.equal(svc.list().length, 2);
      assert.equal(svc.layerDirs(imgA.config.digest)[1], svc.layerDirs(imgB.config.digest)[1]);
    });
  });
});

test('pull by digest and through an index picks the host platform', async () => {
  await withRegistry(async (reg) => {
    const other = buildImage({ layers: [[{ name: 'x', type: 'file', data: Buffer.from('other') }]], architecture: hostArchitecture() === 'amd64' ? 's390x' : 'amd64' });
    reg.addImage('test/multi', 'other', other);
    reg.addImage('test/multi', 'mine', imgA);
    reg.addManifest('test/multi', imgA.manifest.digest, imgA.manifest);
    reg.addManifest('test/multi', other.manifest.digest, other.manifest);
    const idx = buildIndex([
      { image: other, platform: { os: 'linux', architecture: other.configJson.architecture } },
      { image: imgA, platform: { os: 'linux', architecture: hostArchitecture() } },
    ]);
    reg.addManifest('test/multi', 'latest', idx);
    reg.addManifest('test/multi', idx.digest, idx);
    await withService(async (svc) => {
      const r = await svc.pull(`${reg.host}/test/multi`);
      assert.equal(r.image.id, imgA.config.digest);
      assert.equal(r.image.indexDigest, idx.digest);
      assert.ok(r.image.repoDigests.includes(`${reg.host}/test/multi@${idx.digest}`));
      const byDigest = await svc.pull(`${reg.host}/test/multi@${imgA.manifest.digest}`);
      assert.equal(byDigest.image.id, imgA.config.digest);
      assert.equal(svc.status(`${reg.host}/test/multi@${imgA.manifest.digest}`)?.id, imgA.config.digest);

      const onlyOther = buildIndex([{ image: other, platform: { os: 'linux', architecture: other.configJson.architecture } }]);
      reg.addManifest('test/multi', 'nomatch', onlyOther);
      await assert.rejects(svc.pull(`${reg.host}/test/multi:nomatch`), (e: unknown) => isCorralError(e, 'NotFound') && /no manifest for platform/.test((e as Error).message));
    });
  });
});

test('failures: unknown image, digest mismatch, truncated blob leave nothing half-pulled', async () => {
  await withRegistry(async (reg) => {
    reg.addImage('test/a', '1', imgA);
    await withService(async (svc, cfg) => {
      await assert.rejects(svc.pull(`${reg.host}/test/nope:1`), (e: unknown) => isCorralError(e, 'NotFound'));
      reg.faults.set(imgA.layers[1].digest, 'corrupt');
      await assert.rejects(svc.pull(`${reg.host}/test/a:1`), /RegistryUnavailable: .*digest mismatch/);
      assert.equal(svc.list().length, 0);
      assert.ok(!existsSync(path.join(cfg.root, 'content/blobs/sha256', imgA.layers[1].digest.slice(7))));
      assert.deepEqual(readdirSync(path.join(cfg.root, 'snapshots')).filter((n) => n.startsWith('.tmp')), []);
      assert.deepEqual(readdirSync(path.join(cfg.root, 'content/ingest')), []);
      reg.faults.set(imgA.layers[1].digest, 'truncate-always');
      await assert.rejects(svc.pull(`${reg.host}/test/a:1`), /RegistryUnavailable: .*truncated/);
      assert.equal(svc.list().length, 0);
      reg.faults.set(imgA.layers[1].digest, 'truncate-once');
      const ok = await svc.pull(`${reg.host}/test/a:1`);
      assert.equal(ok.image.id, imgA.config.digest);
    });
  });
});

test('a mirror rule serves registry.k8s.io images; unavailable mirror falls through to the next', async () => {
  await withRegistry(async (reg) => {
    reg.addImage('e2e/busybox', '1', imgA);
    await withService(
      async (svc) => {
        const r = await svc.pull('registry.k8s.io/e2e/busybox:1');
        assert.deepEqual(r.image.repoTags, ['registry.k8s.io/e2e/busybox:1']);
        assert.equal(svc.status('registry.k8s.io/e2e/busybox:1')?.id, imgA.config.digest);
      },
      (c) => {
        c.registries.mirrors = [{ prefix: 'registry.k8s.io', locations: ['127.0.0.1:1', reg.host], insecure: false, mirror_only: true }];
      },
    );
  });
});

test('remove: untag when other tags remain, then remove and collect blobs and layers; leases defer layer GC', async () => {
  await withRegistry(async (reg) => {
    reg.addImage('test/a', '1', imgA);
    reg.addImage('test/a', '2', imgA);
    reg.addImage('test/b', '1', imgB);
    await withService(async (svc, cfg) => {
      await svc.pull(`${reg.host}/test/a:1`);
      await svc.pull(`${reg.host}/test/a:2`);
      await svc.pull(`${reg.host}/test/b:1`);
      assert.deepEqual(svc.status(`${reg.host}/test/a:1`)?.repoTags.sort(), [`${reg.host}/test/a:1`, `${reg.host}/test/a:2`]);
      await svc.remove(`${reg.host}/test/a:1`);
      assert.deepEqual(svc.status(`${reg.host}/test/a:2`)?.repoTags, [`${reg.host}/test/a:2`]);
      assert.equal(svc.status(`${reg.host}/test/a:1`), undefined);

      const dirs = await svc.acquire(imgA.config.digest, 'container-1');
      await svc.remove(imgA.config.digest);
      assert.equal(svc.status(imgA.config.digest), undefined);
      assert.ok(existsSync(dirs[0]), 'leased layer survives image removal');
      assert.ok(!existsSync(path.join(cfg.root, 'content/blobs/sha256', imgA.config.digest.slice(7))), 'config blob collected');
      assert.ok(existsSync(path.join(cfg.root, 'content/blobs/sha256', imgB.config.digest.slice(7))));
      await svc.release('container-1');
      assert.ok(!existsSync(dirs[0]), 'layer collected after release');
      assert.ok(existsSync(dirs[1]), 'shared base layer kept');
      await svc.remove(`${reg.host}/test/b:1`);
      assert.deepEqual(readdirSync(path.join(cfg.root, 'snapshots')), []);
      assert.deepEqual(readdirSync(path.join(cfg.root, 'content/blobs/sha256')), []);
      await svc.remove('nothing/here:1');
      const fs1 = await svc.fsInfo();
      assert.ok(fs1.mountpoint.startsWith('/'));
    });
  });
});

test('basic-auth registry: credentials required, bad ones → Unauthenticated', async () => {
  await withRegistry(
    async (reg) => {
      reg.addImage('test/a', '1', imgA);
      await withService(async (svc) => {
        await assert.rejects(svc.pull(`${reg.host}/test/a:1`), (e: unknown) => isCorralError(e, 'Unauthenticated'));
        await assert.rejects(svc.pull(`${reg.host}/test/a:1`, { username: 'u', password: 'bad' }), (e: unknown) => isCorralError(e, 'Unauthenticated'));
        const r = await svc.pull(`${reg.host}/test/a:1`, { username: 'u', password: 'p' });
        assert.equal(r.image.id, imgA.config.digest);
      });
    },
    { auth: 'basic', username: 'u', password: 'p' },
  );
});

test('pinned images and fsInfo', async () => {
  await withRegistry(async (reg) => {
    reg.addImage('test/pause', '3.9', imgA);
    await withService(
      async (svc) => {
        await svc.pull(`${reg.host}/test/pause:3.9`);
        assert.equal(svc.list()[0].pinned, true);
        const u = await svc.fsInfo();
        assert.ok(u.usedBytes > 0n);
        assert.ok(u.inodesUsed >= 4n);
      },
      (c) => (c.image.pinned_images = ['127.0.0.1:*/test/pause*']),
    );
  });
});
