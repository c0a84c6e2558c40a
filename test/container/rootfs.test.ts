import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { MOUNT_DATA_LIMIT, isMounted, mountRootfs, planOverlay, unmountRootfs } from '../../src/container/rootfs';

test('planOverlay: absolute paths when they fit, top layer first', () => {
  const p = planOverlay(['/l/top', '/l/base'], '/c/upper', '/c/work', '/c');
  assert.equal(p.options, 'lowerdir=/l/top:/l/base,upperdir=/c/upper,workdir=/c/work');
  assert.equal(p.cwd, undefined);
  assert.deepEqual(p.links, []);
});

test('planOverlay: a single layer still gets upper and work', () => {
  assert.equal(planOverlay(['/l/only'], '/u', '/w', '/c').options, 'lowerdir=/l/only,upperdir=/u,workdir=/w');
});

test('planOverlay: too long for a page → short relative links under the container dir', () => {
  const lower = Array.from({ length: 60 }, (_, i) => `/var/lib/corral/snapshots/${String(i).padStart(64, 'a')}/fs`);
  const p = planOverlay(lower, '/var/lib/corral/containers/x/upper', '/var/lib/corral/containers/x/work', '/var/lib/corral/containers/x');
  assert.ok(p.options.length <= MOUNT_DATA_LIMIT);
  assert.equal(p.cwd, '/var/lib/corral/containers/x');
  assert.equal(p.links.length, 60);
  assert.deepEqual(p.links[0], { name: 'l/0', target: lower[0] });
  assert.match(p.options, /^lowerdir=l\/0:l\/1:.*,upperdir=upper,workdir=work$/);
});

test('planOverlay: refuses paths with separators, no layers, and hopelessly many layers', () => {
  assert.throws(() => planOverlay([], '/u', '/w', '/c'), /no layers/);
  assert.throws(() => planOverlay(['/a:b'], '/u', '/w', '/c'), /contains/);
  assert.throws(() => planOverlay(Array.from({ length: 2000 }, (_, i) => `/x/${i}`), '/u', '/w', '/c', 200), /too many layers/);
});

const ROOT = process.getuid?.() === 0;

test('mountRootfs: 60 layers with long paths mount through the short links; upper gets the writes', { skip: !ROOT && 'needs root' }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'corral-rootfs-'));
  const target = path.join(dir, 'run', 'rootfs');
  try {
    const lower: string[] = [];
    for (let i = 0; i < 60; i++) {
      const l = path.join(dir, 'snapshots', String(i).padStart(64, 'b'), 'fs');
      mkdirSync(l, { recursive: true });
      writeFileSync(path.join(l, `layer-${i}`), String(i));
      writeFileSync(path.join(l, 'which'), String(i));
      lower.unshift(l); // top first: the last written layer is the top
    }
    const c = { dir: path.join(dir, 'ctr'), upper: path.join(dir, 'ctr', 'upper'), work: path.join(dir, 'ctr', 'work'), target };
    await mountRootfs(lower, c);
    assert.ok(await isMounted(target));
    assert.equal(readFileSync(path.join(target, 'layer-0'), 'utf8'), '0');
    assert.equal(readFileSync(path.join(target, 'which'), 'utf8'), '59', 'the top layer wins');
    writeFileSync(path.join(target, 'new'), 'x');
    assert.ok(existsSync(path.join(c.upper, 'new')));
    await unmountRootfs(target);
    await unmountRootfs(target);
    assert.equal(await isMounted(target), false);
  } finally {
    await unmountRootfs(target).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
});
