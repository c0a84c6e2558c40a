import { test } from 'node:test';
import assert from 'node:assert/strict';
import { linkSync, lstatSync, mkdirSync, readdirSync, symlinkSync, writeFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { DiskUsageCache, measureDiskUsage } from '../../src/stats/disk-usage';
import { isCorralError } from '../../src/core/errors';
import { fakeTree } from './fixtures';

/** What du would say: blocks × 512 of every distinct inode, and the inode count. */
function expected(dir: string): { bytes: bigint; inodes: bigint } {
  const seen = new Set<string>();
  let bytes = 0n;
  let inodes = 0n;
  const walk = (p: string) => {
    const st = lstatSync(p, { bigint: true });
    const key = `${st.dev}:${st.ino}`;
    if (seen.has(key)) return;
    seen.add(key);
    bytes += st.blocks * 512n;
    inodes += 1n;
    if (st.isDirectory()) for (const n of readdirSync(p)) walk(path.join(p, n));
  };
  walk(dir);
  return { bytes, inodes };
}

test('bytes and inodes under a tree; hardlinks once; symlinks not followed', async (t) => {
  const tree = fakeTree({ 'a/one': 'x'.repeat(10_000), 'a/b/two': 'y'.repeat(100_000), 'three': '' });
  t.after(() => tree.remove());
  linkSync(path.join(tree.dir, 'a/b/two'), path.join(tree.dir, 'hard'));
  symlinkSync('/usr', path.join(tree.dir, 'link-to-usr'));
  const u = await measureDiskUsage(tree.dir, { concurrency: 3 });
  assert.ok(u);
  const want = expected(tree.dir);
  // root, a, a/b, one, two(+hard), three, link
  assert.equal(u.inodesUsed, 7n);
  assert.equal(u.inodesUsed, want.inodes);
  assert.equal(u.usedBytes, want.bytes);
  assert.ok(u.usedBytes >= 110_000n, 'file contents are counted');
});

test('missing dir → undefined; deadline → DeadlineExceeded', async (t) => {
  assert.equal(await measureDiskUsage('/nonexistent/corral/dir'), undefined);
  const tree = fakeTree({});
  t.after(() => tree.remove());
  for (let i = 0; i < 200; i++) mkdirSync(path.join(tree.dir, `d${i}`));
  await assert.rejects(measureDiskUsage(tree.dir, { deadlineMs: -1 }), (e) => isCorralError(e, 'DeadlineExceeded'));
});

test('cache: served within the TTL, re-measured after, concurrent callers share one walk', async (t) => {
  const tree = fakeTree({ f: 'x'.repeat(5000) });
  t.after(() => tree.remove());
  let now = 1000;
  const cache = new DiskUsageCache({ ttlMs: 5000, now: () => now });
  const [a, b] = await Promise.all([cache.usage(tree.dir), cache.usage(tree.dir)]);
  assert.ok(a);
  assert.equal(a, b, 'one walk for concurrent callers');
  writeFileSync(path.join(tree.dir, 'g'), 'y'.repeat(50_000));
  now += 1000;
  assert.equal(await cache.usage(tree.dir), a, 'within TTL: cached');
  now += 5000;
  const c = await cache.usage(tree.dir);
  assert.ok(c && c.inodesUsed === a.inodesUsed + 1n && c.usedBytes > a.usedBytes, 'after TTL: measured again');
  rmSync(tree.dir, { recursive: true });
  now += 6000;
  assert.equal(await cache.usage(tree.dir), undefined, 'dir gone');
  assert.equal(cache.size, 0);
});

test('cache: a failed walk returns the last known value', async (t) => {
  const tree = fakeTree({ f: 'x' });
  t.after(() => tree.remove());
  let now = 0;
  const opts = { ttlMs: 10, now: () => now, deadlineMs: 10_000 };
  const cache = new DiskUsageCache(opts);
  const first = await cache.usage(tree.dir);
  assert.ok(first);
  opts.deadlineMs = -1;
  now += 100;
  assert.equal(await cache.usage(tree.dir), first);
  cache.retain([]);
  assert.equal(cache.size, 0);
});
