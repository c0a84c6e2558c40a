import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { isCorralError } from '../../../src/core/errors';
import { buildContainerSpec, checkContainerPath } from '../../../src/container/spec';
import type { ContainerSpecInput } from '../../../src/container/spec';
import { baseInput, fullHost, tempDir } from './fixture';

test('container path validation', () => {
  assert.equal(checkContainerPath('/data/'), '/data');
  assert.equal(checkContainerPath('/a/../b'), '/b');
  assert.equal(checkContainerPath('/proc/cpuinfo'), '/proc/cpuinfo', 'lxcfs-style files are allowed');
  for (const bad of ['data', '', '/', '/proc', '/proc/', '/sys', '/x/../proc', '/proc/sys', '/proc/1/root']) {
    assert.throws(() => checkContainerPath(bad), (e) => isCorralError(e, 'InvalidArgument'), bad);
  }
});

test('request mounts, pod files, image volumes: options, overrides, order', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const host = (n: string) => {
    const p = path.join(dir, n);
    mkdirSync(p, { recursive: true });
    return p;
  };
  writeFileSync(path.join(dir, 'hosts'), '127.0.0.1 localhost\n');
  const input: ContainerSpecInput = baseInput(dir, {
    image: { Cmd: ['sh'], Volumes: { '/var/lib/data': {}, '/cache': {} } },
    volumesDir: path.join(dir, 'volumes'),
    security: { readonlyRootfs: true },
    mounts: [
      { containerPath: '/a/b/c', hostPath: host('abc') },
      { containerPath: '/a', hostPath: host('a'), readonly: true, propagation: 'rslave' },
      { containerPath: '/cache', hostPath: host('cache'), propagation: 'rshared' },
      { containerPath: '/etc/hosts', hostPath: path.join(dir, 'hosts') },
      { containerPath: '/dev/mqueue', hostPath: host('mq') },
    ],
  });
  input.pod = { ...input.pod, hostnamePath: '/pod/hostname', hostsPath: '/pod/hosts', resolvConfPath: '/pod/resolv.conf', shmPath: '/pod/shm' };
  const r = buildContainerSpec(input, fullHost());
  const m = r.spec.mounts;
  // Defaults first (minus the overridden /dev/mqueue), then supplied mounts parents first (stable within a depth).
  assert.deepEqual(m.map((x) => x.destination), [
    '/proc', '/dev', '/dev/pts', '/sys', '/sys/fs/cgroup',
    '/a', '/cache', '/etc/hosts', '/dev/mqueue', '/etc/hostname', '/etc/resolv.conf', '/dev/shm', '/a/b/c', '/var/lib/data',
  ]);
  const by = (d: string) => m.find((x) => x.destination === d)!;
  assert.deepEqual(by('/a'), { destination: '/a', type: 'bind', source: path.join(dir, 'a'), options: ['rbind', 'rslave', 'ro'] });
  assert.deepEqual(by('/a/b/c').options, ['rbind', 'rprivate', 'rw']);
  assert.deepEqual(by('/cache').options, ['rbind', 'rshared', 'rw']);
  assert.equal(by('/etc/hosts').source, path.join(dir, 'hosts'), 'request mount wins over the pod file');
  assert.deepEqual(by('/etc/resolv.conf'), { destination: '/etc/resolv.conf', type: 'bind', source: '/pod/resolv.conf', options: ['rbind', 'rprivate', 'ro'] });
  assert.deepEqual(by('/etc/hostname').options, ['rbind', 'rprivate', 'ro'], 'readonly rootfs makes pod files read-only');
  assert.equal(by('/dev/shm').source, '/pod/shm');
  assert.ok(by('/dev/shm').options!.includes('rw'));
  assert.equal(r.spec.linux.rootfsPropagation, 'rshared');
  assert.equal(r.imageVolumes.length, 1, '/cache is covered by a request mount');
  assert.equal(r.imageVolumes[0].containerPath, '/var/lib/data');
  assert.ok(r.imageVolumes[0].hostPath.startsWith(path.join(dir, 'volumes') + '/'));
  assert.equal(by('/var/lib/data').source, r.imageVolumes[0].hostPath);
});

test('a supplied /dev drops the default /dev/* mounts; rslave alone sets rslave root propagation', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const r = buildContainerSpec(baseInput(dir, { mounts: [{ containerPath: '/dev', hostPath: '/dev', propagation: 'rslave' }] }), fullHost());
  assert.deepEqual(r.spec.mounts.map((x) => x.destination), ['/proc', '/sys', '/sys/fs/cgroup', '/dev']);
  assert.equal(r.spec.linux.rootfsPropagation, 'rslave');
});

test('mount validation errors', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const bad: [string, ContainerSpecInput['mounts'], RegExp][] = [
    ['missing host path', [{ containerPath: '/d', hostPath: path.join(dir, 'nope') }], /does not exist/],
    ['relative host path', [{ containerPath: '/d', hostPath: 'rel' }], /absolute/],
    ['relative container path', [{ containerPath: 'd', hostPath: dir }], /absolute/],
    ['shadows /proc', [{ containerPath: '/proc', hostPath: dir }], /shadow/],
    ['shadows /sys', [{ containerPath: '/sys/', hostPath: dir }], /shadow/],
    ['duplicate', [{ containerPath: '/d', hostPath: dir }, { containerPath: '/d/', hostPath: dir }], /duplicate/],
    ['rro unsupported', [{ containerPath: '/d', hostPath: dir, readonly: true, recursiveReadOnly: true }], /not supported/],
    ['rro without ro', [{ containerPath: '/d', hostPath: dir, recursiveReadOnly: true }], /read-only/],
  ];
  for (const [name, mounts, re] of bad) {
    assert.throws(() => buildContainerSpec(baseInput(dir, { mounts }), fullHost()), (e) => isCorralError(e, 'InvalidArgument') && re.test(e.message), name);
  }
  const rro = buildContainerSpec(baseInput(dir, { mounts: [{ containerPath: '/d', hostPath: dir, readonly: true, recursiveReadOnly: true }] }), fullHost({ recursiveReadOnlyMounts: true }));
  assert.deepEqual(rro.spec.mounts.at(-1)!.options, ['rbind', 'rprivate', 'ro', 'rro']);
  const relabel = buildContainerSpec(baseInput(dir, { mounts: [{ containerPath: '/d', hostPath: dir, selinuxRelabel: true }] }), fullHost());
  assert.match(relabel.warnings.join(), /selinux_relabel ignored/);
});

test('devices: a node, a directory of nodes, bad ones', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  mkdirSync(path.join(dir, 'dri'));
  execFileSync('mknod', ['-m', '0620', path.join(dir, 'fuse'), 'c', '10', '229']);
  execFileSync('mknod', [path.join(dir, 'dri', 'card0'), 'c', '226', '0']);
  execFileSync('mknod', [path.join(dir, 'big'), 'b', '259', '300000']);
  writeFileSync(path.join(dir, 'plain'), '');
  const r = buildContainerSpec(
    baseInput(dir, {
      devices: [
        { hostPath: path.join(dir, 'fuse'), containerPath: '/dev/fuse', permissions: 'rw' },
        { hostPath: path.join(dir, 'dri'), containerPath: '/dev/dri', permissions: '' },
        { hostPath: path.join(dir, 'big'), containerPath: '/dev/big' },
        { hostPath: '/dev/null', containerPath: '/dev/null', permissions: 'r' },
      ],
    }),
    fullHost(),
  );
  const devs = r.spec.linux.devices!;
  assert.deepEqual(devs.find((d) => d.path === '/dev/fuse'), { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o620, uid: 0, gid: 0 });
  assert.deepEqual(devs.find((d) => d.path === '/dev/dri/card0')!.major, 226);
  assert.deepEqual(devs.find((d) => d.path === '/dev/big')!.minor, 300000, 'large minor numbers decode');
  assert.equal(devs.filter((d) => d.path === '/dev/null').length, 1, 'request replaces the default entry');
  const rules = r.spec.linux.resources!.devices!;
  assert.deepEqual(rules.find((x) => x.major === 10 && x.minor === 229), { allow: true, type: 'c', major: 10, minor: 229, access: 'rw' });
  assert.deepEqual(rules.find((x) => x.major === 226), { allow: true, type: 'c', major: 226, minor: 0, access: 'rwm' });
  assert.deepEqual(rules.find((x) => x.major === 259), { allow: true, type: 'b', major: 259, minor: 300000, access: 'rwm' });
  for (const [d, re] of [
    [{ hostPath: path.join(dir, 'nope'), containerPath: '/dev/x' }, /does not exist/],
    [{ hostPath: path.join(dir, 'plain'), containerPath: '/dev/x' }, /not a device/],
    [{ hostPath: path.join(dir, 'fuse'), containerPath: '/dev/x', permissions: 'rx' }, /permissions/],
    [{ hostPath: path.join(dir, 'fuse'), containerPath: 'dev/x' }, /absolute/],
  ] as const) {
    assert.throws(() => buildContainerSpec(baseInput(dir, { devices: [d] }), fullHost()), (e) => isCorralError(e, 'InvalidArgument') && re.test(e.message), d.hostPath);
  }
});
