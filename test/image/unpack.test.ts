import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, promises as fs, existsSync, lstatSync, readFileSync, readlinkSync, readdirSync, statSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { writeTar, type TarEntry } from '../../e2e/harness/tar-writer';
import { LayerExtractor } from '../../src/image/unpack/extract';
import type { Compression } from '../../src/image/media-types';
import { isCorralError } from '../../src/core/errors';

async function withSandbox(fn: (sb: { root: string; layer: string }) => Promise<void>): Promise<void> {
  const root = mkdtempSync(path.join(os.tmpdir(), 'corral-unpack-'));
  const layer = path.join(root, 'layer');
  await fs.mkdir(layer);
  await fs.writeFile(path.join(root, 'sentinel'), 'original');
  try {
    await fn({ root, layer });
  } finally {
    await fs.rm(root, { recursive: true, force: true });
  }
}

function compress(tar: Buffer, c: Compression): Buffer {
  if (c === 'gzip') return zlib.gzipSync(tar);
  if (c === 'zstd') return execFileSync('zstd', ['-q', '-c'], { input: tar });
  return tar;
}

async function extract(dir: string, entries: TarEntry[], c: Compression = 'gzip') {
  const tar = writeTar(entries);
  const data = compress(tar, c);
  const ex = new LayerExtractor(dir, c, { what: 'test layer' });
  // Feed in odd-sized chunks to exercise streaming.
  for (let i = 0; i < data.length; i += 7777) await ex.write(data.subarray(i, i + 7777));
  const res = await ex.finish();
  assert.equal(res.diffId, 'sha256:' + createHash('sha256').update(tar).digest('hex'));
  return res;
}

/** Only the layer dir and the sentinel exist beside it, and the sentinel is untouched. */
function assertNothingOutside(root: string): void {
  assert.deepEqual(readdirSync(root).sort(), ['layer', 'sentinel']);
  assert.equal(readFileSync(path.join(root, 'sentinel'), 'utf8'), 'original');
}

async function assertRefused(layer: string, entries: TarEntry[], re: RegExp): Promise<void> {
  await assert.rejects(extract(layer, entries), (e: unknown) => {
    assert.ok(isCorralError(e, 'InvalidArgument'), `expected InvalidArgument, got ${String(e)}`);
    assert.match((e as Error).message, re);
    return true;
  });
}

test('regular entries keep ownership, modes (setuid too), mtimes, symlink targets verbatim, hardlinks', async () => {
  await withSandbox(async ({ root, layer }) => {
    const res = await extract(layer, [
      { name: 'bin/', type: 'dir', mode: 0o755 },
      { name: 'bin/su', type: 'file', data: Buffer.from('su'), mode: 0o4755, uid: 0, gid: 0, mtime: 1_600_000_000 },
      { name: 'home/app/', type: 'dir', mode: 0o700, uid: 1000, gid: 1000 },
      { name: 'home/app/notes', type: 'file', data: Buffer.from('hi'), mode: 0o664, uid: 1000, gid: 2000 },
      { name: 'tmp/', type: 'dir', mode: 0o1777, mtime: 1_500_000_000 },
      { name: 'lib64/ld.so', type: 'symlink', linkname: '/lib/x86_64/ld.so' },
      { name: 'lib64/rel', type: 'symlink', linkname: '../../../../etc/shadow' },
      { name: 'bin/su-link', type: 'hardlink', linkname: 'bin/su' },
      { name: 'etc/conf', type: 'file', data: Buffer.from('x'), xattrs: { 'user.note': 'hello' } },
    ]);
    assert.equal(res.entries, 9);
    const su = statSync(path.join(layer, 'bin/su'));
    assert.equal(su.mode & 0o7777, 0o4755);
    assert.equal(su.mtimeMs, 1_600_000_000_000);
    const notes = statSync(path.join(layer, 'home/app/notes'));
    assert.equal(notes.uid, 1000);
    assert.equal(notes.gid, 2000);
    assert.equal(notes.mode & 0o7777, 0o664);
    assert.equal(statSync(path.join(layer, 'home/app')).mode & 0o7777, 0o700);
    const tmp = statSync(path.join(layer, 'tmp'));
    assert.equal(tmp.mode & 0o7777, 0o1777);
    assert.equal(tmp.mtimeMs, 1_500_000_000_000);
    assert.equal(readlinkSync(path.join(layer, 'lib64/ld.so')), '/lib/x86_64/ld.so');
    assert.equal(readlinkSync(path.join(layer, 'lib64/rel')), '../../../../etc/shadow');
    assert.equal(statSync(path.join(layer, 'bin/su-link')).ino, su.ino);
    const xa = execFileSync('getfattr', ['--only-values', '-n', 'user.note', path.join(layer, 'etc/conf')]).toString();
    assert.equal(xa, 'hello');
    assertNothingOutside(root);
  });
});

test('gzip, zstd and uncompressed layers give the same tree and diff id', async () => {
  const entries: TarEntry[] = [{ name: 'a/b', type: 'file', data: Buffer.alloc(300_000, 7) }];
  for (const c of ['none', 'gzip', 'zstd'] as Compression[]) {
    await withSandbox(async ({ layer }) => {
      await extract(layer, entries, c);
      assert.equal(statSync(path.join(layer, 'a/b')).size, 300_000);
    });
  }
});

test('"../" entries are refused and nothing is written outside', async () => {
  await withSandbox(async ({ root, layer }) => {
    await assertRefused(layer, [{ name: '../sentinel', type: 'file', data: Buffer.from('pwned') }], /contains "\.\."/);
    await assertRefused(layer, [{ name: 'a/../../evil', type: 'file', data: Buffer.from('pwned') }], /contains "\.\."/);
    assertNothingOutside(root);
  });
});

test('absolute paths are made relative to the layer', async () => {
  await withSandbox(async ({ root, layer }) => {
    await extract(layer, [{ name: `${root}/sentinel`, type: 'file', data: Buffer.from('inside') }]);
    assert.equal(readFileSync(path.join(layer, root, 'sentinel'), 'utf8'), 'inside');
    assertNothingOutside(root);
  });
});

test('a symlink and then a file written through it is refused', async () => {
  await withSandbox(async ({ root, layer }) => {
    await assertRefused(
      layer,
      [
        { name: 'escape', type: 'symlink', linkname: root },
        { name: 'escape/sentinel', type: 'file', data: Buffer.from('pwned') },
      ],
      /parent "escape" is a symlink/,
    );
    assertNothingOutside(root);
  });
  await withSandbox(async ({ root, layer }) => {
    await assertRefused(
      layer,
      [
        { name: 'd', type: 'symlink', linkname: '..' },
        { name: 'd/sentinel', type: 'file', data: Buffer.from('pwned') },
      ],
      /parent "d" is a symlink/,
    );
    assertNothingOutside(root);
  });
});

test('a dir replaced by a symlink cannot be written through', async () => {
  await withSandbox(async ({ root, layer }) => {
    await assertRefused(
      layer,
      [
        { name: 'd/', type: 'dir' },
        { name: 'd', type: 'symlink', linkname: root },
        { name: 'd/sentinel', type: 'file', data: Buffer.from('pwned') },
      ],
      /is a symlink/,
    );
    assertNothingOutside(root);
  });
});

test('hardlinks to paths outside the layer are refused', async () => {
  await withSandbox(async ({ root, layer }) => {
    await assertRefused(layer, [{ name: 'h', type: 'hardlink', linkname: '../sentinel' }], /contains "\.\."/);
    await assertRefused(layer, [{ name: 'h', type: 'hardlink', linkname: `${root}/sentinel` }], /not an earlier entry/);
    await assertRefused(layer, [{ name: 'h', type: 'hardlink', linkname: '/etc/passwd' }], /not an earlier entry/);
    assert.equal(statSync(path.join(root, 'sentinel')).nlink, 1);
    assertNothingOutside(root);
  });
});

test('a hardlink through a symlinked parent is refused', async () => {
  await withSandbox(async ({ root, layer }) => {
    await assertRefused(
      layer,
      [
        { name: 's', type: 'symlink', linkname: root },
        { name: 'h', type: 'hardlink', linkname: 's/sentinel' },
      ],
      /not an earlier entry|parent "s" is a symlink/,
    );
    assertNothingOutside(root);
  });
});

test('device nodes and fifos from image content are skipped', async () => {
  await withSandbox(async ({ root, layer }) => {
    const res = await extract(layer, [
      { name: 'dev/sda', type: 'block', devmajor: 8, devminor: 0 },
      { name: 'dev/mem', type: 'char', devmajor: 1, devminor: 1 },
      { name: 'fifo', type: 'fifo' },
      { name: 'ok', type: 'file', data: Buffer.from('ok') },
    ]);
    assert.equal(res.skipped, 3);
    assert.equal(existsSync(path.join(layer, 'dev/sda')), false);
    assert.equal(existsSync(path.join(layer, 'dev/mem')), false);
    assert.equal(existsSync(path.join(layer, 'fifo')), false);
    assert.equal(readFileSync(path.join(layer, 'ok'), 'utf8'), 'ok');
    assertNothingOutside(root);
  });
});

test('whiteouts become 0/0 char devices and opaque markers trusted.overlay.opaque=y', async () => {
  await withSandbox(async ({ layer }) => {
    const res = await extract(layer, [
      { name: 'etc/.wh.motd', type: 'file' },
      { name: 'var/cache/', type: 'dir' },
      { name: 'var/cache/.wh..wh..opq', type: 'file' },
      { name: 'var/cache/new', type: 'file', data: Buffer.from('n') },
    ]);
    assert.equal(res.whiteouts, 1);
    assert.equal(res.opaques, 1);
    const wh = lstatSync(path.join(layer, 'etc/motd'));
    assert.ok(wh.isCharacterDevice());
    assert.equal(wh.rdev, 0);
    assert.equal(existsSync(path.join(layer, 'etc/.wh.motd')), false);
    assert.equal(existsSync(path.join(layer, 'var/cache/.wh..wh..opq')), false);
    const v = execFileSync('getfattr', ['--only-values', '-n', 'trusted.overlay.opaque', path.join(layer, 'var/cache')]).toString();
    assert.equal(v, 'y');
  });
});

test('overlayfs over unpacked layers honours whiteouts and opaque dirs', async () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'corral-ovl-'));
  const lower = path.join(root, 'lower');
  const upper = path.join(root, 'upper');
  const merged = path.join(root, 'merged');
  const work = path.join(root, 'work');
  const rw = path.join(root, 'rw');
  let mounted = false;
  try {
    for (const d of [lower, upper, merged, work, rw]) await fs.mkdir(d);
    await extract(lower, [
      { name: 'keep/a', type: 'file', data: Buffer.from('a') },
      { name: 'gone', type: 'file', data: Buffer.from('g') },
      { name: 'opq/old1', type: 'file', data: Buffer.from('1') },
      { name: 'opq/sub/old2', type: 'file', data: Buffer.from('2') },
    ]);
    await extract(upper, [
      { name: '.wh.gone', type: 'file' },
      { name: 'opq/', type: 'dir' },
      { name: 'opq/.wh..wh..opq', type: 'file' },
      { name: 'opq/new', type: 'file', data: Buffer.from('n') },
    ]);
    const r = spawnSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${upper}:${lower},upperdir=${rw},workdir=${work}`, merged]);
    assert.equal(r.status, 0, r.stderr?.toString());
    mounted = true;
    assert.deepEqual(readdirSync(merged).sort(), ['keep', 'opq']);
    assert.deepEqual(readdirSync(path.join(merged, 'opq')), ['new']);
    assert.equal(readFileSync(path.join(merged, 'keep/a'), 'utf8'), 'a');
  } finally {
    if (mounted) spawnSync('umount', [merged]);
    await fs.rm(root, { recursive: true, force: true });
  }
});

test('a corrupt gzip stream fails the layer', async () => {
  await withSandbox(async ({ layer }) => {
    const ex = new LayerExtractor(layer, 'gzip');
    await assert.rejects(async () => {
      await ex.write(Buffer.from('this is not gzip at all, not even close'));
      await ex.finish();
    });
  });
});
