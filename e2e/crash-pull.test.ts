/**
 * Crash consistency of PullImage: the daemon is killed (SIGKILL, via CORRAL_FAULT_POINT) between the side
 * effects of a pull (config stored, mid-layer unpack, snapshot committed, manifest stored, before the image
 * record), restarted without the fault, and must converge: no image record, no blob, layer snapshot, temp
 * snapshot dir or ingest file left, and the restart log says what it repaired. The retry pulls a usable image,
 * and `corral check --storage` finds the store healthy.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { CORRAL_MAIN, startDaemon, type TestDaemon } from './harness/daemon';
import { startRegistry, type TestRegistry } from './harness/registry';
import { buildBusyboxImage, pushImage, randomLayer, type BuiltImage } from './harness/oci-image';

let reg: TestRegistry;
let d: TestDaemon;
let built: BuiltImage;
let image: string;

const POINTS = [
  'image.pull.after-config-stored',
  'image.pull.mid-layer',
  'image.pull.after-snapshot-commit',
  'image.pull.after-manifest-stored',
  'image.pull.before-record',
];

async function names(dir: string): Promise<string[]> {
  return fs.readdir(dir).catch(() => [] as string[]);
}

/** What the image store holds on disk. */
async function store() {
  return {
    blobs: await names(path.join(d.root, 'content', 'blobs', 'sha256')),
    ingest: await names(path.join(d.root, 'content', 'ingest')),
    snapshots: await names(path.join(d.root, 'snapshots')),
  };
}

async function images(): Promise<string[]> {
  return (await d.img.ListImages({})).images.map((i) => i.id);
}

before(async () => {
  reg = await startRegistry();
  // busybox plus two 3 MiB layers: several chunks per layer, layers unpacking side by side.
  built = buildBusyboxImage({ extraLayers: [randomLayer(3 << 20), randomLayer(3 << 20)] });
  await pushImage(reg, 'e2e/crashpull', '1', built);
  image = `${reg.host}/e2e/crashpull:1`;
  d = await startDaemon();
});

after(async () => {
  await d?.cleanup();
  await reg?.stop();
});

test('kill -9 at every step of PullImage: nothing left after restart, the retry gives a usable image', { timeout: 300_000 }, async (t) => {
  for (const point of POINTS) {
    await t.test(point, async () => {
      await d.stop();
      await d.start({ env: { CORRAL_FAULT_POINT: point } });
      const err = await d.img.PullImage({ image: { image } }, { timeoutMs: 60_000 }).then(() => undefined, (e: Error) => e);
      const exit = await d.exited();
      assert.equal(exit.signal, 'SIGKILL', `the daemon died at ${point} (rpc error: ${err?.message})`);
      assert.ok(err, 'the RPC failed');
      assert.ok(d.logs().includes(`fault point ${point}: exiting`), 'the fault point was hit');
      const crashed = await store();
      assert.ok(crashed.blobs.length + crashed.snapshots.length > 0, `the crash left content behind: ${JSON.stringify(crashed)}`);
      if (point === 'image.pull.mid-layer') assert.ok(crashed.snapshots.some((n) => n.startsWith('.tmp-')), 'a temp snapshot dir was being written');

      const mark = d.logs().length;
      await d.start({ env: {} });
      const log = d.logs().slice(mark);
      assert.deepEqual(await images(), [], 'no image record');
      assert.deepEqual(await store(), { blobs: [], ingest: [], snapshots: [] }, `${point}: the interrupted pull left nothing`);
      assert.match(log, /repaired|removed/, `the restart log says what it repaired:\n${log}`);
      for (const n of [...crashed.snapshots, ...crashed.blobs]) assert.ok(log.includes(n.replace(/^\.tmp-/, '')), `the restart log names ${n}:\n${log}`);

      // The retry: a complete, usable image.
      const r = await d.img.PullImage({ image: { image } });
      assert.equal(r.image_ref, built.config.digest);
      const st = await d.img.ImageStatus({ image: { image }, verbose: false });
      assert.equal(st.image?.id, built.config.digest);
      const after = await store();
      assert.deepEqual(after.blobs.sort(), [built.config.digest, built.manifest.digest].map((x) => x.slice(7)).sort());
      assert.equal(after.snapshots.length, built.layers.length);
      assert.equal(after.ingest.length, 0);
      assert.ok(existsSync(path.join(d.root, 'snapshots', after.snapshots.find((s) => existsSync(path.join(d.root, 'snapshots', s, 'fs', 'bin', 'busybox')))!, 'fs', 'bin', 'busybox')), 'the busybox layer is unpacked');
      await d.img.RemoveImage({ image: { image } });
      assert.deepEqual(await store(), { blobs: [], ingest: [], snapshots: [] }, 'RemoveImage removed everything');
    });
  }
});

test('corral check --storage: a healthy store after a pull is reported healthy and left alone', { timeout: 60_000 }, async () => {
  await d.img.PullImage({ image: { image } });
  const before = await store();
  const busy = spawnSync(process.execPath, [CORRAL_MAIN, 'check', '--storage', '--config', d.configFile], { encoding: 'utf8' });
  assert.equal(busy.status, 1, 'refuses while the daemon runs');
  assert.match(busy.stderr, /daemon .*running|running daemon/i);
  await d.stop();
  const r = spawnSync(process.execPath, [CORRAL_MAIN, 'check', '--storage', '--config', d.configFile], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /healthy/);
  assert.deepEqual(await store(), before, 'nothing touched');
  await d.start({ env: {} });
  assert.deepEqual(await images(), [built.config.digest]);
});
