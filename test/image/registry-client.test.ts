import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { buildImage, buildIndex, MT } from '../../e2e/harness/oci-image';
import { isCorralError } from '../../src/core/errors';
import { parseChallenges, credentialsFromAuthConfig } from '../../src/image/registry/auth';
import { RegistryClient } from '../../src/image/registry/client';
import { resolveEndpoints } from '../../src/image/registry/hosts';
import { parseReference } from '../../src/image/reference';
import { FakeRegistry } from './fake-registry';

const img = buildImage({ layers: [[{ name: 'hello', type: 'file', data: Buffer.alloc(200_000, 1) }]] });

async function withRegistry(opts: ConstructorParameters<typeof FakeRegistry>[0], fn: (reg: FakeRegistry, client: RegistryClient) => Promise<void>) {
  const reg = await new FakeRegistry(opts).start();
  const client = new RegistryClient({ stallBytes: 1, stallWindowMs: 60_000, attempts: 3, backoffMs: 5 });
  try {
    await fn(reg, client);
  } finally {
    await client.close();
    await reg.stop();
  }
}

function session(reg: FakeRegistry, client: RegistryClient, creds?: Parameters<RegistryClient['session']>[1]) {
  const ref = parseReference(`${reg.host}/test/img:1`);
  const [ep] = resolveEndpoints(ref, { insecure: [], blocked: [], mirrors: [] });
  assert.equal(ep.base, `http://${reg.host}`);
  return client.session(ep, creds);
}

const signal = () => AbortSignal.timeout(20_000);

function collect() {
  const chunks: Buffer[] = [];
  return { sink: (c: Buffer) => void chunks.push(c), data: () => Buffer.concat(chunks) };
}

test('WWW-Authenticate parsing', () => {
  const [c] = parseChallenges('Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"');
  assert.equal(c.scheme, 'bearer');
  assert.deepEqual(c.params, { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' });
  assert.equal(parseChallenges('Basic realm="x"')[0].scheme, 'basic');
  assert.deepEqual(credentialsFromAuthConfig({ auth: Buffer.from('u:p:w').toString('base64') }), { username: 'u', password: 'p:w' });
  assert.equal(credentialsFromAuthConfig({}), undefined);
});

test('anonymous manifest + blob fetch, digest verified', async () => {
  await withRegistry({}, async (reg, client) => {
    reg.addImage('test/img', '1', img);
    const s = session(reg, client);
    const m = await s.getManifest('1', signal());
    assert.equal(m.digest, img.manifest.digest);
    assert.equal(m.mediaType, MT.ociManifest);
    const c = collect();
    await s.fetchBlob(img.layers[0], c.sink, signal());
    assert.ok(c.data().equals(img.layers[0].data));
  });
});

test('bearer token flow with credentials, token cached across sessions', async () => {
  await withRegistry({ auth: 'bearer', username: 'u', password: 'p' }, async (reg, client) => {
    reg.addImage('test/img', '1', img);
    const s = session(reg, client, { username: 'u', password: 'p' });
    await s.getManifest('1', signal());
    assert.equal(reg.tokenRequests, 1);
    const s2 = session(reg, client, { username: 'u', password: 'p' });
    await s2.getManifest('1', signal());
    await s2.fetchBlob(img.config, collect().sink, signal());
    assert.equal(reg.tokenRequests, 1, 'second session reuses the cached token');
    const bad = session(reg, client, { username: 'u', password: 'wrong' });
    await assert.rejects(bad.getManifest('1', signal()), (e: unknown) => isCorralError(e, 'Unauthenticated') && /registry 127\.0\.0\.1:\d+/.test((e as Error).message));
  });
});

test('basic auth: works with credentials, Unauthenticated naming the registry without', async () => {
  await withRegistry({ auth: 'basic', username: 'u', password: 'p' }, async (reg, client) => {
    reg.addImage('test/img', '1', img);
    const m = await session(reg, client, { username: 'u', password: 'p' }).getManifest('1', signal());
    assert.equal(m.digest, img.manifest.digest);
    await assert.rejects(session(reg, client).getManifest('1', signal()), (e: unknown) => isCorralError(e, 'Unauthenticated') && (e as Error).message.includes(reg.host));
    await assert.rejects(session(reg, client, { username: 'u', password: 'x' }).getManifest('1', signal()), (e: unknown) => isCorralError(e, 'Unauthenticated'));
  });
});

test('redirects are followed and the Authorization header is not sent to another origin', async () => {
  await withRegistry({ auth: 'basic', username: 'u', password: 'p' }, async (reg, client) => {
    reg.addImage('test/img', '1', img);
    reg.faults.set(img.layers[0].digest, 'redirect');
    // Same origin here, so make the storage URL look foreign: use "localhost" for the registry.
    const ref = parseReference(`localhost:${reg.port}/test/img:1`);
    const [ep] = resolveEndpoints(ref, { insecure: [], blocked: [], mirrors: [] });
    const s = client.session(ep, { username: 'u', password: 'p' });
    const c = collect();
    await s.fetchBlob(img.layers[0], c.sink, signal());
    assert.ok(c.data().equals(img.layers[0].data));
  });
});

test('digest mismatch is an error', async () => {
  await withRegistry({}, async (reg, client) => {
    reg.addImage('test/img', '1', img);
    reg.faults.set(img.layers[0].digest, 'corrupt');
    await assert.rejects(session(reg, client).fetchBlob(img.layers[0], collect().sink, signal()), /RegistryUnavailable: .*digest mismatch/);
  });
});

test('an interrupted blob resumes with a Range request', async () => {
  await withRegistry({}, async (reg, client) => {
    reg.addImage('test/img', '1', img);
    reg.faults.set(img.layers[0].digest, 'truncate-once');
    const c = collect();
    await session(reg, client).fetchBlob(img.layers[0], c.sink, signal());
    assert.ok(c.data().equals(img.layers[0].data));
    assert.equal(reg.ranges.length, 1);
    assert.match(reg.ranges[0], /^bytes=\d+-$/);
  });
});

test('a registry ignoring Range still yields the right bytes', async () => {
  await withRegistry({}, async (reg, client) => {
    reg.addImage('test/img', '1', img);
    reg.faults.set(img.layers[0].digest, 'truncate-once');
    reg.ignoreRange.add(img.layers[0].digest);
    const c = collect();
    await session(reg, client).fetchBlob(img.layers[0], c.sink, signal());
    assert.ok(c.data().equals(img.layers[0].data));
  });
});

test('a blob that is always truncated fails with RegistryUnavailable after retries', async () => {
  await withRegistry({}, async (reg, client) => {
    reg.addImage('test/img', '1', img);
    reg.faults.set(img.layers[0].digest, 'truncate-always');
    await assert.rejects(session(reg, client).fetchBlob(img.layers[0], collect().sink, signal()), (e: unknown) => isCorralError(e, 'Unavailable') && /^RegistryUnavailable: .*truncated/.test((e as Error).message));
  });
});

test('404 → NotFound with the registry message; 500 is retried', async () => {
  await withRegistry({}, async (reg, client) => {
    await assert.rejects(session(reg, client).getManifest('nope', signal()), (e: unknown) => isCorralError(e, 'NotFound') && /manifest unknown/.test((e as Error).message));
    reg.addImage('test/img', '1', img);
    reg.failFirst.set('/v2/test/img/manifests/1', { status: 503, times: 2 });
    const m = await session(reg, client).getManifest('1', signal());
    assert.equal(m.digest, img.manifest.digest);
    reg.failFirst.set('/v2/test/img/manifests/1', { status: 400, times: 1 });
    await assert.rejects(session(reg, client).getManifest('1', signal()), /RegistryUnavailable/);
  });
});

test('unsupported media type, schema 1 and manifests over 4 MiB are refused', async () => {
  await withRegistry({}, async (reg, client) => {
    reg.addManifest('test/img', 'weird', { mediaType: 'application/vnd.example.thing+json', data: Buffer.from('{"schemaVersion":2,"mediaType":"application/vnd.example.thing+json"}') });
    await assert.rejects(session(reg, client).getManifest('weird', signal()), (e: unknown) => isCorralError(e, 'InvalidArgument') && /unsupported manifest media type/.test((e as Error).message));
    reg.addManifest('test/img', 'v1', { mediaType: 'application/vnd.docker.distribution.manifest.v1+prettyjws', data: Buffer.from('{"schemaVersion":1}') });
    await assert.rejects(session(reg, client).getManifest('v1', signal()), /schema 1/);
    const big = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociManifest, pad: 'x'.repeat(4 * 1024 * 1024 + 10) }));
    reg.addManifest('test/img', 'big', { mediaType: MT.ociManifest, data: big });
    await assert.rejects(session(reg, client).getManifest('big', signal()), (e: unknown) => isCorralError(e, 'InvalidArgument') && /limit/.test((e as Error).message));
  });
});

test('manifest by digest is verified against the digest', async () => {
  await withRegistry({}, async (reg, client) => {
    const fake = 'sha256:' + createHash('sha256').update('other').digest('hex');
    reg.addManifest('test/img', fake, img.manifest);
    await assert.rejects(session(reg, client).getManifest(fake, signal()), /does not match/);
    const idx = buildIndex([{ image: img, platform: { os: 'linux', architecture: 'amd64' } }]);
    reg.addManifest('test/img', idx.digest, idx);
    const m = await session(reg, client).getManifest(idx.digest, signal());
    assert.equal(m.mediaType, MT.ociIndex);
  });
});
