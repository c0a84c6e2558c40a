/**
 * Image service end to end, through the real daemon and Debian's docker-registry: pull by tag and
 * digest, via a mirror rule, with Basic auth; list/status/remove; a multi-layer image with whiteouts
 * and an opaque dir mounted with overlayfs.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, promises as fs, readdirSync, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { startDaemon, type TestDaemon } from './harness/daemon';
import { startRegistry, type TestRegistry } from './harness/registry';
import { buildBusyboxImage, buildImage, pushImage, type BuiltImage } from './harness/oci-image';

let reg: TestRegistry;
let authReg: TestRegistry;
let d: TestDaemon;
let busybox: BuiltImage;
let busyboxDigest: string;

const spec = (image: string) => ({ image });

before(async () => {
  reg = await startRegistry();
  authReg = await startRegistry({ htpasswd: { username: 'alice', password: 's3cret' } });
  busybox = buildBusyboxImage();
  busyboxDigest = (await pushImage(reg, 'e2e/busybox', '1', busybox)).manifestDigest;
  await pushImage(authReg, 'private/busybox', '1', busybox);
  d = await startDaemon({
    config: [
      '[[registries.mirrors]]',
      'prefix = "registry.k8s.io"',
      `locations = ["${reg.host}"]`,
      'mirror_only = true',
      '',
      '[image]',
      'pinned_images = ["registry.k8s.io/e2e/*"]',
    ].join('\n'),
  });
});

after(async () => {
  await d?.stop();
  await d?.cleanup();
  await reg?.stop();
  await authReg?.stop();
});

async function expectCode(p: Promise<unknown>, code: number, re?: RegExp): Promise<void> {
  await assert.rejects(p, (e: { code?: number; details?: string }) => {
    assert.equal(e.code, code, `grpc code ${e.code}: ${e.details}`);
    if (re) assert.match(e.details ?? '', re);
    return true;
  });
}

test('pull by tag, then by digest: same image id; list and status', async () => {
  const byTag = await d.img.PullImage({ image: spec(`${reg.host}/e2e/busybox:1`) });
  assert.equal(byTag.image_ref, busybox.config.digest);
  const byDigest = await d.img.PullImage({ image: spec(`${reg.host}/e2e/busybox@${busyboxDigest}`) });
  assert.equal(byDigest.image_ref, busybox.config.digest);
  const st = await d.img.ImageStatus({ image: spec(`${reg.host}/e2e/busybox:1`), verbose: true });
  assert.equal(st.image?.id, busybox.config.digest);
  assert.deepEqual(st.image?.repo_tags, [`${reg.host}/e2e/busybox:1`]);
  assert.ok(st.image?.repo_digests.includes(`${reg.host}/e2e/busybox@${busyboxDigest}`));
  assert.equal(JSON.parse(st.info.info).manifestDigest, busyboxDigest);
  const list = await d.img.ListImages({});
  assert.ok(list.images.some((i: { id: string }) => i.id === busybox.config.digest));
  // The layers are on disk under the daemon's root.
  const snaps = readdirSync(path.join(d.root, 'snapshots')).filter((n) => /^[a-f0-9]{64}$/.test(n));
  assert.ok(snaps.length >= 1);
});

test('pull registry.k8s.io/e2e/busybox:1 through a mirror rule; pinned by glob', async () => {
  const r = await d.img.PullImage({ image: spec('registry.k8s.io/e2e/busybox:1') });
  assert.equal(r.image_ref, busybox.config.digest);
  const st = await d.img.ImageStatus({ image: spec('registry.k8s.io/e2e/busybox:1'), verbose: false });
  assert.ok(st.image?.repo_tags.includes('registry.k8s.io/e2e/busybox:1'));
  assert.equal(st.image?.pinned, true);
});

test('Basic auth: no credentials → UNAUTHENTICATED naming the registry; right ones pull', async () => {
  const ref = `${authReg.host}/private/busybox:1`;
  await expectCode(d.img.PullImage({ image: spec(ref) }), 16, new RegExp(authReg.host.replace(/\./g, '\\.')));
  await expectCode(d.img.PullImage({ image: spec(ref), auth: { username: 'alice', password: 'wrong' } }), 16);
  const ok = await d.img.PullImage({ image: spec(ref), auth: { username: 'alice', password: 's3cret' } });
  assert.equal(ok.image_ref, busybox.config.digest);
});

test('unknown image → NOT_FOUND; bad reference → INVALID_ARGUMENT', async () => {
  await expectCode(d.img.PullImage({ image: spec(`${reg.host}/e2e/nope:1`) }), 5);
  await expectCode(d.img.PullImage({ image: spec('Not A Ref') }), 3);
});

test('remove: untag while other tags remain, then by id; ImageFsInfo', async () => {
  const fsi = await d.img.ImageFsInfo({});
  assert.ok(BigInt(fsi.image_filesystems[0].used_bytes!.value) > 0n);
  assert.ok(BigInt(fsi.image_filesystems[0].inodes_used!.value) > 0n);
  await d.img.RemoveImage({ image: spec(`${reg.host}/e2e/busybox:1`) });
  const st = await d.img.ImageStatus({ image: spec(busybox.config.digest), verbose: false });
  assert.ok(st.image, 'other tags keep the image');
  assert.ok(!st.image.repo_tags.includes(`${reg.host}/e2e/busybox:1`));
  await d.img.RemoveImage({ image: spec(busybox.config.digest) });
  const gone = await d.img.ImageStatus({ image: spec(busybox.config.digest), verbose: false });
  assert.equal(gone.image, null);
  await d.img.RemoveImage({ image: spec(busybox.config.digest) });
  const blobs = readdirSync(path.join(d.root, 'content/blobs/sha256'));
  assert.ok(!blobs.includes(busybox.config.digest.slice(7)));
});

test('multi-layer image with whiteouts and an opaque dir gives the right tree under overlayfs', async () => {
  const big = randomBytes(3 * 1024 * 1024);
  const img = buildImage({
    layers: [
      [
        { name: 'keep/a', type: 'file', data: Buffer.from('a') },
        { name: 'gone', type: 'file', data: Buffer.from('g') },
        { name: 'opq/old', type: 'file', data: Buffer.from('old') },
        { name: 'opq/sub/older', type: 'file', data: Buffer.from('older') },
      ],
      [
        { name: '.wh.gone', type: 'file' },
        { name: 'opq/', type: 'dir' },
        { name: 'opq/.wh..wh..opq', type: 'file' },
        { name: 'opq/new', type: 'file', data: Buffer.from('new') },
      ],
      // Over 1 MiB: unpacked on the daemon's extraction worker thread.
      [{ name: 'keep/b', type: 'file', data: Buffer.from('b') }, { name: 'keep/big', type: 'file', data: big }],
    ],
    compression: 'zstd',
  });
  await pushImage(reg, 'e2e/layers', 'v1', img);
  const r = await d.img.PullImage({ image: spec(`${reg.host}/e2e/layers:v1`) });
  const st = await d.img.ImageStatus({ image: spec(r.image_ref), verbose: true });
  const layers = JSON.parse(st.info.info).layers as { chainId: string }[];
  assert.equal(layers.length, 3);
  const lower = layers.map((l) => path.join(d.root, 'snapshots', l.chainId.slice(7), 'fs')).reverse();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'corral-e2e-ovl-'));
  const [upper, work, merged] = ['upper', 'work', 'merged'].map((n) => path.join(tmp, n));
  let mounted = false;
  try {
    for (const p of [upper, work, merged]) await fs.mkdir(p);
    const m = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower.join(':')},upperdir=${upper},workdir=${work}`, merged]);
    assert.equal(m.status, 0, m.stderr?.toString());
    mounted = true;
    assert.deepEqual(readdirSync(merged).sort(), ['keep', 'opq']);
    assert.deepEqual(readdirSync(path.join(merged, 'keep')).sort(), ['a', 'b', 'big']);
    assert.ok(readFileSync(path.join(merged, 'keep/big')).equals(big));
    assert.deepEqual(readdirSync(path.join(merged, 'opq')), ['new']);
    assert.equal(readFileSync(path.join(merged, 'opq/new'), 'utf8'), 'new');
  } finally {
    if (mounted) spawnSync('umount', [merged]);
    await fs.rm(tmp, { recursive: true, force: true });
  }
});
