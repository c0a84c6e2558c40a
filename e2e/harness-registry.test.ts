/** Self-test of the e2e harness: tar writer, image builder, registry process and pushing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { run } from '../src/sys/exec';
import { waitFor } from '../src/core/wait';
import { writeTar, type TarEntry } from './harness/tar-writer';
import { startRegistry, type TestRegistry } from './harness/registry';
import {
  MT,
  buildBusyboxImage,
  buildImage,
  buildIndex,
  busyboxRootfs,
  pushImage,
  pushManifest,
  randomLayer,
  sha256,
} from './harness/oci-image';

function tempDir(t: { after: (fn: () => void) => void }, prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function gone(pid: number): boolean {
  return !fs.existsSync(`/proc/${pid}`);
}

async function listTar(tar: Buffer, extra: string[] = []): Promise<string[]> {
  const res = await run('tar', ['-tv', ...extra, '-f', '-'], { input: tar, timeoutMs: 30_000 });
  return res.stdout.trimEnd().split('\n');
}

function lineFor(lines: string[], name: string): string {
  const line = lines.find((l) => l.endsWith(` ${name}`) || l.includes(` ${name} -> `) || l.includes(` ${name} link to `));
  assert.ok(line, `no listing line for ${name} in:\n${lines.join('\n')}`);
  return line;
}

// ---- tar writer ----

test('writeTar: GNU tar lists every entry type with its metadata', async () => {
  const longName = 'deep/' + 'd'.repeat(120) + '/' + 'f'.repeat(150);
  const longTarget = '/' + 't'.repeat(200);
  const entries: TarEntry[] = [
    { name: 'dir/', type: 'dir', mode: 0o750, uid: 1000, gid: 1001 },
    { name: 'dir/file', type: 'file', data: Buffer.from('hello\n'), mode: 0o640 },
    { name: 'dir/exe', type: 'file', data: Buffer.alloc(1000, 7), mode: 0o4755 },
    { name: 'dir/link', type: 'symlink', linkname: '../etc/passwd' },
    { name: 'dir/hard', type: 'hardlink', linkname: 'dir/file' },
    { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
    { name: 'dev/sda', type: 'block', devmajor: 8, devminor: 0 },
    { name: 'dir/pipe', type: 'fifo' },
    { name: '../evil', type: 'file', data: Buffer.from('x') },
    { name: '/abs', type: 'file', data: Buffer.from('y') },
    { name: longName, type: 'file', data: Buffer.from('long') },
    { name: 'dir/longlink', type: 'symlink', linkname: longTarget },
    { name: 'dir/bigid', type: 'file', uid: 3_000_000, gid: 4_000_000 },
  ];
  const tar = writeTar(entries);
  assert.equal(tar.length % 512, 0);
  const lines = await listTar(tar, ['--numeric-owner']);
  assert.match(lineFor(lines, 'dir/'), /^drwxr-x--- 1000\/1001 +0 /);
  assert.match(lineFor(lines, 'dir/file'), /^-rw-r----- 0\/0 +6 /);
  assert.match(lineFor(lines, 'dir/exe'), /^-rwsr-xr-x 0\/0 +1000 /);
  assert.match(lineFor(lines, 'dir/link'), /^lrwxrwxrwx .* dir\/link -> \.\.\/etc\/passwd$/);
  assert.match(lineFor(lines, 'dir/hard'), /^hrw-r--r-- .* dir\/hard link to dir\/file$/);
  assert.match(lineFor(lines, 'dev/null'), /^crw-rw-rw- 0\/0 +1,3 /);
  assert.match(lineFor(lines, 'dev/sda'), /^brw-rw---- 0\/0 +8,0 /);
  assert.match(lineFor(lines, 'dir/pipe'), /^prw-r--r-- /);
  assert.ok(lines.some((l) => / \.\.\/evil$/.test(l)), 'hostile ../evil kept verbatim');
  assert.ok(lines.some((l) => / \/?abs$/.test(l)), 'absolute name listed');
  assert.match(lineFor(lines, longName), /^-rw-r--r-- 0\/0 +4 /);
  assert.match(lineFor(lines, 'dir/longlink'), new RegExp(` -> ${longTarget}$`));
  assert.match(lineFor(lines, 'dir/bigid'), /^-rw-r--r-- 3000000\/4000000 /);
  assert.equal(lines.length, entries.length, 'no stray PAX pseudo-entries in the listing');
});

test('writeTar: data and xattrs survive extraction by GNU tar', async (t) => {
  const dir = tempDir(t, 'corral-tar-');
  const big = Buffer.alloc(70_001);
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) & 0xff;
  const tar = writeTar([
    { name: 'a/', type: 'dir' },
    { name: 'a/big', type: 'file', data: big, mode: 0o600 },
    { name: 'a/attrs', type: 'file', data: Buffer.from('z'), xattrs: { 'user.corral': 'value-1', 'user.other': 'ü' } },
    { name: 'a/empty', type: 'file' },
  ]);
  const verbose = await run('tar', ['--xattrs', '--xattrs-include=*', '-tvvf', '-'], { input: tar, timeoutMs: 30_000 });
  assert.match(verbose.stdout, /x: 7 user\.corral\n +x: 2 user\.other/, 'xattrs listed with their byte lengths');
  await run('tar', ['--xattrs', '--xattrs-include=*', '-xf', '-', '-C', dir], { input: tar, timeoutMs: 30_000 });
  assert.deepEqual(fs.readFileSync(path.join(dir, 'a/big')), big);
  assert.equal(fs.statSync(path.join(dir, 'a/big')).mode & 0o7777, 0o600);
  assert.equal(fs.statSync(path.join(dir, 'a/empty')).size, 0);
  // getfattr comes from Debian's attr package; where it is missing the listing above is the check.
  if (fs.existsSync('/usr/bin/getfattr')) {
    const attr = await run('getfattr', ['--only-values', '-n', 'user.corral', path.join(dir, 'a/attrs')], { timeoutMs: 10_000 });
    assert.equal(attr.stdout, 'value-1');
  }
});

test('writeTar: refuses links without a target', () => {
  assert.throws(() => writeTar([{ name: 'l', type: 'symlink' }]), /needs a linkname/);
});

// ---- image building ----

test('buildImage: manifest, config and diff ids are consistent (gzip, none, zstd)', async () => {
  const layer: TarEntry[] = [{ name: 'hello.txt', type: 'file', data: Buffer.from('hello') }];
  for (const compression of ['gzip', 'none', 'zstd'] as const) {
    const img = buildImage({ layers: [layer], compression, config: { Cmd: ['/hello'], User: '1000' } });
    const manifest = JSON.parse(img.manifest.data.toString());
    assert.equal(manifest.mediaType, MT.ociManifest);
    assert.equal(manifest.config.digest, img.config.digest);
    assert.equal(manifest.layers[0].digest, sha256(img.layers[0].data));
    assert.equal(img.manifest.digest, sha256(img.manifest.data));
    assert.deepEqual(img.configJson.rootfs.diff_ids, img.diffIds);
    assert.deepEqual(img.configJson.config.Cmd, ['/hello']);
    let tar: Buffer;
    if (compression === 'gzip') tar = zlib.gunzipSync(img.layers[0].data);
    else if (compression === 'none') tar = img.layers[0].data;
    else {
      assert.equal(img.layers[0].mediaType, MT.ociLayerZstd);
      // run() decodes stdout as text, so read the binary output directly.
      tar = await new Promise<Buffer>((resolve, reject) => {
        const c = spawn('zstd', ['-d', '-c', '-q']);
        const chunks: Buffer[] = [];
        c.stdout.on('data', (b: Buffer) => chunks.push(b));
        c.on('error', reject);
        c.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`zstd -d exit ${code}`))));
        c.stdin.end(img.layers[0].data);
      });
    }
    assert.equal(sha256(tar), img.diffIds[0], `diff id of ${compression} layer`);
  }
  // Same spec, same bytes: tests can rely on stable digests.
  assert.equal(buildImage({ layers: [layer] }).manifest.digest, buildImage({ layers: [layer] }).manifest.digest);
});

test('busyboxRootfs: binary, applet symlinks, dirs and users', () => {
  const entries = busyboxRootfs();
  const byName = new Map(entries.map((e) => [e.name, e]));
  assert.equal(byName.get('bin/busybox')?.type, 'file');
  assert.deepEqual(byName.get('bin/sh'), { name: 'bin/sh', type: 'symlink', linkname: 'busybox' });
  assert.equal(byName.get('usr/bin/env')?.linkname, '../../bin/busybox');
  assert.equal(byName.get('tmp/')?.mode, 0o1777);
  assert.equal(byName.has('etc/hosts'), false);
  const passwd = byName.get('etc/passwd')!.data!.toString();
  assert.match(passwd, /^app:x:1000:1000:/m);
  assert.match(passwd, /^nobody:x:65534:65534:/m);
  assert.match(byName.get('etc/group')!.data!.toString(), /^extra:x:2000:app$/m);
  // Callers get copies: mutating one must not poison the cache.
  byName.get('bin/sh')!.linkname = 'oops';
  assert.equal(busyboxRootfs().find((e) => e.name === 'bin/sh')?.linkname, 'busybox');
});

test('busybox layer unpacked by GNU tar runs: bin/busybox echo hi', async (t) => {
  const dir = tempDir(t, 'corral-rootfs-');
  const img = buildBusyboxImage({ extraLayers: [[{ name: 'etc/motd', type: 'file', data: Buffer.from('hi there\n') }]] });
  assert.equal(img.layers.length, 2);
  assert.deepEqual(img.configJson.config.Cmd, ['sh']);
  assert.deepEqual(img.configJson.config.Env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
  for (const layer of img.layers) {
    await run('tar', ['-x', '--numeric-owner', '-f', '-', '-C', dir], { input: zlib.gunzipSync(layer.data), timeoutMs: 60_000 });
  }
  const res = await run(path.join(dir, 'bin/busybox'), ['echo', 'hi'], { timeoutMs: 10_000 });
  assert.equal(res.stdout, 'hi\n');
  // An applet through its relative symlink, as a container would start it.
  const sh = await run(path.join(dir, 'bin/sh'), ['-c', 'echo via-sh'], { timeoutMs: 10_000 });
  assert.equal(sh.stdout, 'via-sh\n');
  assert.equal(fs.readlinkSync(path.join(dir, 'usr/bin/env')), '../../bin/busybox');
  assert.equal(fs.statSync(path.join(dir, 'tmp')).mode & 0o7777, 0o1777);
  assert.equal(fs.statSync(path.join(dir, 'home/app')).uid, 1000);
  assert.equal(fs.readFileSync(path.join(dir, 'etc/motd'), 'utf8'), 'hi there\n');
});

test('randomLayer: sizes add up and content does not compress', () => {
  const entries = randomLayer(3 * 1024 * 1024 + 5, 3);
  const files = entries.filter((e) => e.type === 'file');
  assert.equal(files.length, 3);
  assert.equal(
    files.reduce((n, e) => n + e.data!.length, 0),
    3 * 1024 * 1024 + 5,
  );
  const img = buildImage({ layers: [entries] });
  assert.ok(img.layers[0].size > 3 * 1024 * 1024, 'gzip did not shrink random data');
});

// ---- registry ----

async function getManifest(reg: TestRegistry, repo: string, ref: string, accept: string): Promise<Response> {
  const headers: Record<string, string> = { Accept: accept };
  if (reg.auth) headers.Authorization = 'Basic ' + Buffer.from(`${reg.auth.username}:${reg.auth.password}`).toString('base64');
  return fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, { headers, signal: AbortSignal.timeout(30_000) });
}

async function getBlob(reg: TestRegistry, repo: string, digest: string): Promise<Buffer> {
  const headers: Record<string, string> = {};
  if (reg.auth) headers.Authorization = 'Basic ' + Buffer.from(`${reg.auth.username}:${reg.auth.password}`).toString('base64');
  const res = await fetch(`${reg.url}/v2/${repo}/blobs/${digest}`, { headers, signal: AbortSignal.timeout(30_000) });
  assert.equal(res.status, 200, `GET blob ${digest}`);
  return Buffer.from(await res.arrayBuffer());
}

test('plain registry: push busybox by tag, read manifest and blobs back, stop', async () => {
  const reg = await startRegistry();
  try {
    assert.match(reg.host, /^127\.0\.0\.1:\d+$/);
    assert.equal(reg.url, `http://${reg.host}`);
    assert.equal(reg.auth, undefined);
    const img = buildBusyboxImage();
    const { manifestDigest } = await pushImage(reg, 'test/busybox', 'latest', img);
    assert.equal(manifestDigest, img.manifest.digest);

    const res = await getManifest(reg, 'test/busybox', 'latest', MT.ociManifest);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), MT.ociManifest);
    assert.equal(res.headers.get('docker-content-digest'), img.manifest.digest);
    const body = Buffer.from(await res.arrayBuffer());
    assert.equal(sha256(body), img.manifest.digest);
    const manifest = JSON.parse(body.toString());
    const layer = await getBlob(reg, 'test/busybox', manifest.layers[0].digest);
    assert.equal(sha256(layer), img.layers[0].digest);
    assert.equal(sha256(zlib.gunzipSync(layer)), img.diffIds[0]);
    const config = JSON.parse((await getBlob(reg, 'test/busybox', img.config.digest)).toString());
    assert.deepEqual(config.rootfs.diff_ids, img.diffIds);

    // Pushing again is idempotent (blobs skipped via HEAD).
    assert.equal((await pushImage(reg, 'test/busybox', 'again', img)).manifestDigest, img.manifest.digest);

    // Docker schema2 flavour of the same image.
    const docker = await pushImage(reg, 'test/busybox', 'docker', img, { mediaTypes: 'docker' });
    assert.notEqual(docker.manifestDigest, img.manifest.digest);
    const dres = await getManifest(reg, 'test/busybox', 'docker', MT.dockerManifest);
    assert.equal(dres.status, 200);
    const dman = JSON.parse(await dres.text());
    assert.equal(dman.mediaType, MT.dockerManifest);
    assert.equal(dman.config.mediaType, MT.dockerConfig);
    assert.equal(dman.layers[0].mediaType, MT.dockerLayerGzip);
    assert.equal(dres.headers.get('docker-content-digest'), docker.manifestDigest);

    // An index over two platforms, children pushed by digest.
    const other = buildBusyboxImage({ architecture: 'arm64', config: { Cmd: ['true'] } });
    await pushImage(reg, 'test/multi', img.manifest.digest, img);
    await pushImage(reg, 'test/multi', other.manifest.digest, other);
    const index = buildIndex([
      { image: img, platform: { os: 'linux', architecture: img.configJson.architecture } },
      { image: other, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ]);
    assert.equal(await pushManifest(reg, 'test/multi', 'latest', index), index.digest);
    const ires = await getManifest(reg, 'test/multi', 'latest', MT.ociIndex);
    assert.equal(ires.status, 200);
    const ijson = JSON.parse(await ires.text());
    assert.equal(ijson.manifests.length, 2);
    assert.equal(ijson.manifests[1].platform.variant, 'v8');
  } finally {
    await reg.stop();
  }
  assert.ok(gone(reg.pid), `registry pid ${reg.pid} still running after stop()`);
  assert.equal(fs.existsSync(reg.dir), false, 'temp dir removed');
  await reg.stop(); // idempotent
});

test('htpasswd registry: 401 without credentials, push with them', async () => {
  const reg = await startRegistry({ htpasswd: { username: 'alice', password: 's3cret pass' } });
  try {
    const anon = await fetch(`${reg.url}/v2/`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(anon.status, 401);
    assert.match(anon.headers.get('www-authenticate') ?? '', /^Basic realm="corral-test"/);
    await anon.arrayBuffer();

    const wrong = await fetch(`${reg.url}/v2/`, {
      headers: { Authorization: 'Basic ' + Buffer.from('alice:nope').toString('base64') },
      signal: AbortSignal.timeout(10_000),
    });
    assert.equal(wrong.status, 401);
    await wrong.arrayBuffer();

    const img = buildBusyboxImage();
    await assert.rejects(pushImage({ ...reg, auth: undefined }, 'private/busybox', 'v1', img), /HTTP 401/);
    const { manifestDigest } = await pushImage(reg, 'private/busybox', 'v1', img);
    const res = await getManifest(reg, 'private/busybox', 'v1', MT.ociManifest);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), manifestDigest);
    const layer = await getBlob(reg, 'private/busybox', img.layers[0].digest);
    assert.equal(sha256(layer), img.layers[0].digest);

    const anonManifest = await fetch(`${reg.url}/v2/private/busybox/manifests/v1`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(anonManifest.status, 401);
    await anonManifest.arrayBuffer();
  } finally {
    await reg.stop();
  }
  assert.ok(gone(reg.pid), `registry pid ${reg.pid} still running after stop()`);
  assert.equal(fs.existsSync(reg.dir), false);
});

/** Runs a node process that starts a registry and prints its pid and dir, then behaves as `then` says. */
async function registryInChild(then: 'exit' | 'hang'): Promise<{ child: ReturnType<typeof spawn>; pid: number; dir: string }> {
  const mod = path.join(__dirname, 'harness', 'registry.js');
  const script = `
    require(${JSON.stringify(mod)}).startRegistry().then((r) => {
      process.stdout.write(JSON.stringify({ pid: r.pid, dir: r.dir }) + '\\n');
      if (${JSON.stringify(then)} === 'hang') setInterval(() => {}, 1000);
    }, (e) => { console.error(e); process.exit(2); });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  const line = await waitFor(() => (out.includes('\n') ? out.split('\n')[0] : undefined), {
    timeoutMs: 30_000,
    what: 'child to start a registry',
  });
  const info = JSON.parse(line) as { pid: number; dir: string };
  return { child, ...info };
}

test('registry dies with its parent: on normal exit without stop(), and on SIGKILL', async () => {
  const normal = await registryInChild('exit');
  await waitFor(() => gone(normal.pid), { timeoutMs: 15_000, what: 'registry to die after its parent exited' });
  fs.rmSync(normal.dir, { recursive: true, force: true });

  const killed = await registryInChild('hang');
  assert.ok(!gone(killed.pid), 'registry runs while its parent lives');
  killed.child.kill('SIGKILL');
  await waitFor(() => gone(killed.pid), { timeoutMs: 15_000, what: 'registry to die after its parent was SIGKILLed' });
  fs.rmSync(killed.dir, { recursive: true, force: true });
});
