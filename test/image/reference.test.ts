import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isCorralError } from '../../src/core/errors';
import { candidates, formatReference, parseReference } from '../../src/image/reference';
import { resolveEndpoints, isLoopback } from '../../src/image/registry/hosts';
import { isPinned } from '../../src/image/pinned';
import { platformScore } from '../../src/image/platform';

const D = 'sha256:' + 'a'.repeat(64);

test('reference normalisation table', () => {
  const table: [string, string][] = [
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['library/busybox', 'docker.io/library/busybox:latest'],
    ['user/app:v1', 'docker.io/user/app:v1'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/library/busybox', 'docker.io/library/busybox:latest'],
    ['registry.k8s.io/pause:3.9', 'registry.k8s.io/pause:3.9'],
    ['localhost:5000/a/b/c:t', 'localhost:5000/a/b/c:t'],
    ['localhost/app', 'localhost/app:latest'],
    ['127.0.0.1:5000/x', '127.0.0.1:5000/x:latest'],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`],
    [`quay.io/a/b:tag@${D}`, `quay.io/a/b:tag@${D}`],
    ['[::1]:5000/img:1', '[::1]:5000/img:1'],
    ['a-b/c_d/e__f.g:x', 'docker.io/a-b/c_d/e__f.g:x'],
  ];
  for (const [input, want] of table) assert.equal(formatReference(parseReference(input)), want, input);
});

test('invalid references are InvalidArgument', () => {
  for (const bad of ['', 'busybox/UPPER', 'busybox:', 'busybox@sha256:123', 'a//b', 'busybox:bad tag', '-lead', 'repo/-x', 'host:port:/x', 'a:' + 'x'.repeat(129)]) {
    assert.throws(() => parseReference(bad), (e: unknown) => isCorralError(e, 'InvalidArgument'), bad);
  }
});

test('short names go through the unqualified-search registries in order', () => {
  assert.deepEqual(candidates('busybox', ['quay.io', 'docker.io']).map(formatReference), ['quay.io/busybox:latest', 'docker.io/library/busybox:latest']);
  assert.deepEqual(candidates('ghcr.io/x/y', ['quay.io']).map(formatReference), ['ghcr.io/x/y:latest']);
});

test('endpoints: mirrors in order then upstream; insecure, loopback and blocked', () => {
  const cfg = {
    insecure: ['myreg:5000'],
    blocked: ['evil.io', 'docker.io/bad'],
    mirrors: [
      { prefix: 'registry.k8s.io', locations: ['127.0.0.1:5000', 'mirror.example/k8s'], insecure: false, mirror_only: false },
      { prefix: 'quay.io/team', locations: ['127.0.0.1:6000'], insecure: false, mirror_only: true },
    ],
  };
  const eps = resolveEndpoints(parseReference('registry.k8s.io/e2e/busybox:1'), cfg);
  assert.deepEqual(
    eps.map((e) => [e.base, e.path, e.mirror]),
    [
      ['http://127.0.0.1:5000', 'e2e/busybox', true],
      ['https://mirror.example', 'k8s/e2e/busybox', true],
      ['https://registry.k8s.io', 'e2e/busybox', false],
    ],
  );
  assert.deepEqual(resolveEndpoints(parseReference('quay.io/team/app'), cfg).map((e) => e.base), ['http://127.0.0.1:6000']);
  assert.deepEqual(resolveEndpoints(parseReference('quay.io/teamx/app'), cfg).map((e) => e.base), ['https://quay.io']);
  assert.equal(resolveEndpoints(parseReference('myreg:5000/a'), cfg)[0].base, 'http://myreg:5000');
  assert.equal(resolveEndpoints(parseReference('busybox'), cfg)[0].base, 'https://registry-1.docker.io');
  assert.throws(() => resolveEndpoints(parseReference('evil.io/x'), cfg), (e: unknown) => isCorralError(e, 'PermissionDenied'));
  assert.throws(() => resolveEndpoints(parseReference('docker.io/bad/x'), cfg), (e: unknown) => isCorralError(e, 'PermissionDenied'));
  assert.doesNotThrow(() => resolveEndpoints(parseReference('docker.io/badger/x'), cfg));
  for (const h of ['localhost:5000', '127.0.0.1', '127.1.2.3:80', '[::1]:5000']) assert.ok(isLoopback(h), h);
  assert.ok(!isLoopback('128.0.0.1:5000'));
});

test('pinned patterns: globs and plain references', () => {
  const tags = ['registry.k8s.io/pause:3.9'];
  assert.ok(isPinned(['registry.k8s.io/pause*'], tags, []));
  assert.ok(isPinned(['registry.k8s.io/pause'], tags, []));
  assert.ok(isPinned(['registry.k8s.io/pause:3.9'], tags, []));
  assert.ok(!isPinned(['registry.k8s.io/pause:3.8'], tags, []));
  assert.ok(isPinned(['busybox'], ['docker.io/library/busybox:1'], []));
  assert.ok(!isPinned(['nginx*'], tags, []));
});

test('platform matching', () => {
  assert.equal(platformScore({ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm64' }), -1);
  assert.ok(platformScore({ os: 'linux', architecture: 'arm64', variant: 'v8' }, { os: 'linux', architecture: 'arm64' }) > 0);
  assert.ok(platformScore({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm', variant: 'v6' }) > 0);
  assert.equal(platformScore({ os: 'linux', architecture: 'arm', variant: 'v6' }, { os: 'linux', architecture: 'arm', variant: 'v7' }), -1);
  assert.equal(platformScore({ os: 'linux', architecture: 'amd64' }, { os: 'windows', architecture: 'amd64' }), -1);
});
