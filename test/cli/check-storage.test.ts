import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, promises as fs, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkStorage } from '../../src/cli/check-storage';
import { processStartTime } from '../../src/daemon/lock';
import { ContentStore } from '../../src/image/content/store';
import type { ImageRecord } from '../../src/image/image-index';
import { chainIds, SnapshotStore } from '../../src/image/snapshots';

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A temp root holding images made by hand in the daemon's layout. */
async function fixture() {
  const root = mkdtempSync(path.join(os.tmpdir(), 'corral-check-'));
  const content = new ContentStore(path.join(root, 'content'));
  await content.init();
  const snaps = new SnapshotStore(path.join(root, 'snapshots'));
  await snaps.init();
  const records: ImageRecord[] = [];
  /** An image whose layers are given by a name each; a layer name used twice is the same layer. */
  const image = async (tag: string, layerNames: string[]): Promise<ImageRecord> => {
    const diffIds = layerNames.map((n) => sha(`layer ${n}`));
    const chains = chainIds(diffIds);
    for (let i = 0; i < chains.length; i++) {
      if (await snaps.has(chains[i])) continue;
      const p = await snaps.prepare();
      await fs.mkdir(path.join(p.fs, 'etc'));
      writeFileSync(path.join(p.fs, 'etc', layerNames[i]), `file of ${layerNames[i]}\n`);
      await snaps.commit(p, chains[i]);
    }
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds }, tag }));
    await content.put(sha(config), config);
    const layers = diffIds.map((d, i) => ({ digest: sha(`blob ${layerNames[i]}`), mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: 10, diffId: d, chainId: chains[i] }));
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
    }));
    await content.put(sha(manifest), manifest);
    const r: ImageRecord = {
      id: sha(config), repoTags: [`example.com/${tag}:1`], repoDigests: [`example.com/${tag}@${sha(manifest)}`], size: 100,
      manifestDigest: sha(manifest), manifestMediaType: 'application/vnd.oci.image.manifest.v1+json', layers, user: '', platform: 'linux/amd64', pulledAt: new Date(0).toISOString(),
    };
    records.push(r);
    return r;
  };
  const writeIndex = async (leases: Record<string, unknown> = {}) => {
    await fs.mkdir(path.join(root, 'images'), { recursive: true });
    writeFileSync(path.join(root, 'images', 'index.json'), JSON.stringify({ version: 1, images: records, leases }));
  };
  const indexIds = () => (JSON.parse(readFileSync(path.join(root, 'images', 'index.json'), 'utf8')).images as ImageRecord[]).map((r) => r.id);
  return { root, content, snaps, image, writeIndex, indexIds, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

async function check(root: string) {
  const lines: string[] = [];
  const res = await checkStorage(root, (l) => lines.push(l));
  return { ...res, text: lines.join('\n') };
}

test('a healthy store is reported healthy and left untouched', async () => {
  const f = await fixture();
  try {
    await f.image('a', ['base', 'app']);
    await f.image('b', ['base']);
    await f.writeIndex();
    const before = readFileSync(path.join(f.root, 'images', 'index.json'), 'utf8');
    const r = await check(f.root);
    assert.equal(r.code, 0, r.text);
    assert.deepEqual(r.checked, { images: 2, blobs: 4, layers: 2 });
    assert.deepEqual(r.repaired, []);
    assert.match(r.text, /storage healthy/);
    assert.equal(readFileSync(path.join(f.root, 'images', 'index.json'), 'utf8'), before);
  } finally {
    f.cleanup();
  }
});

test('a corrupt blob and a deleted or half-written snapshot: only they and the images using them are removed', async () => {
  const f = await fixture();
  try {
    const a = await f.image('a', ['base', 'app']); // loses its app layer
    const b = await f.image('b', ['base', 'tool']); // its manifest gets corrupted
    const c = await f.image('c', ['base']); // healthy, shares base
    const d = await f.image('d', ['half']); // its layer was renamed into place without usage.json
    await f.writeIndex({ 'container:abc': { imageId: a.id, chainIds: a.layers.map((l) => l.chainId) } });
    await fs.rm(f.snaps.dir(a.layers[1].chainId), { recursive: true });
    const mpath = f.content.path(b.manifestDigest);
    await fs.chmod(mpath, 0o644);
    writeFileSync(mpath, readFileSync(mpath, 'utf8').replace('"schemaVersion":2', '"schemaVersion":3'));
    await fs.rm(path.join(f.snaps.dir(d.layers[0].chainId), 'usage.json'));
    await fs.mkdir(path.join(f.snaps.root, '.tmp-0123456789abcdef', 'fs'), { recursive: true });

    const r = await check(f.root);
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, new RegExp(`removed blob ${b.manifestDigest}`));
    assert.match(r.text, new RegExp(`removed layer ${d.layers[0].chainId}: its usage.json is missing`));
    assert.match(r.text, /\.tmp-0123456789abcdef \(an interrupted unpack\)/);
    assert.match(r.text, new RegExp(`${a.id} \\(example.com/a:1\\): its layer ${a.layers[1].chainId} is missing`));
    assert.match(r.text, /storage repaired/);
    // Bad data gone, the records that depended on it gone; everything healthy kept.
    assert.deepEqual(f.indexIds(), [c.id]);
    assert.equal(existsSync(mpath), false);
    assert.equal(existsSync(f.snaps.dir(d.layers[0].chainId)), false);
    assert.equal(existsSync(path.join(f.snaps.root, '.tmp-0123456789abcdef')), false);
    for (const keep of [a.id, a.manifestDigest, b.id, c.id, c.manifestDigest]) assert.ok(await f.content.has(keep), `${keep} kept`);
    for (const l of [a.layers[0], b.layers[1]]) assert.ok(await f.snaps.has(l.chainId), `healthy layer ${l.chainId} kept`);
    const idx = JSON.parse(readFileSync(path.join(f.root, 'images', 'index.json'), 'utf8'));
    assert.deepEqual(Object.keys(idx.leases), ['container:abc'], 'leases are kept');

    const again = await check(f.root);
    assert.equal(again.code, 0);
    assert.deepEqual(again.repaired, [], again.text);
    assert.match(again.text, /storage healthy/);
  } finally {
    f.cleanup();
  }
});

test('a layer that lost files since it was unpacked is corrupt', async () => {
  const f = await fixture();
  try {
    const a = await f.image('a', ['base']);
    await f.writeIndex();
    await fs.rm(path.join(f.snaps.fsDir(a.layers[0].chainId), 'etc', 'base'));
    const r = await check(f.root);
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, /holds 2 files where 3 were unpacked/);
    assert.deepEqual(f.indexIds(), []);
  } finally {
    f.cleanup();
  }
});

test('unreadable image records are moved aside', async () => {
  const f = await fixture();
  try {
    await f.image('a', ['base']);
    await fs.mkdir(path.join(f.root, 'images'), { recursive: true });
    writeFileSync(path.join(f.root, 'images', 'index.json'), '{"version":1,"images":[{"id":');
    const r = await check(f.root);
    assert.equal(r.code, 0, r.text);
    assert.match(r.text, /unreadable .*moved to .*index\.json\.corrupt-/);
    assert.equal(existsSync(path.join(f.root, 'images', 'index.json')), false);
    assert.ok((await fs.readdir(path.join(f.root, 'images'))).some((n) => n.startsWith('index.json.corrupt-')));
  } finally {
    f.cleanup();
  }
});

test('refuses while a daemon holds the root, touching nothing; exit 1 when a repair fails', async () => {
  const f = await fixture();
  try {
    const a = await f.image('a', ['base']);
    await f.writeIndex();
    await fs.rm(f.snaps.dir(a.layers[0].chainId), { recursive: true });
    writeFileSync(path.join(f.root, 'corral.lock'), `${process.pid} ${processStartTime(process.pid)}\n`);
    const r = await check(f.root);
    assert.equal(r.code, 1);
    assert.match(r.failed.join('\n'), new RegExp(`daemon \\(pid ${process.pid}\\) is running`));
    assert.deepEqual(f.indexIds(), [a.id], 'nothing repaired while the daemon runs');
    rmSync(path.join(f.root, 'corral.lock'));

    // A blob path that is a directory can neither be verified nor removed as a blob: the check fails.
    const stray = f.content.path(sha('stray'));
    await fs.mkdir(path.join(stray, 'x'), { recursive: true });
    const bad = await check(f.root);
    assert.equal(bad.code, 1, bad.text);
    assert.match(bad.text, new RegExp(`could not repair: removed blob ${sha('stray')}`));
    assert.ok(existsSync(stray));
  } finally {
    f.cleanup();
  }
});
