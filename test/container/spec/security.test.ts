import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { isCorralError } from '../../../src/core/errors';
import { CAPABILITIES } from '../../../src/sys/caps';
import {
  buildContainerSpec, computeCapabilities, DEFAULT_CAPABILITIES, DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS, normalizeCapability,
} from '../../../src/container/spec';
import { baseInput, fullHost, tempDir } from './fixture';

const D = [...DEFAULT_CAPABILITIES];

test('capability add/drop/ALL table', () => {
  const cases: [string, string[], string[], string[]][] = [
    ['defaults', [], [], D],
    ['add one (short name, any case)', ['sys_admin'], [], [...D, 'CAP_SYS_ADMIN']],
    ['drop one', [], ['CAP_CHOWN'], D.filter((c) => c !== 'CAP_CHOWN')],
    ['add ALL', ['ALL'], [], [...CAPABILITIES]],
    ['add ALL drop one', ['ALL'], ['NET_ADMIN'], CAPABILITIES.filter((c) => c !== 'CAP_NET_ADMIN')],
    ['drop ALL add one', ['KILL'], ['ALL'], ['CAP_KILL']],
    ['drop ALL', [], ['all'], []],
    ['add and drop the same: drop wins', ['SYS_TIME'], ['SYS_TIME'], D],
  ];
  for (const [name, add, drop, want] of cases) assert.deepEqual(computeCapabilities(D, add, drop), want, name);
  assert.equal(normalizeCapability('cap_net_raw'), 'CAP_NET_RAW');
  assert.throws(() => normalizeCapability('CAP_FLY'), (e) => isCorralError(e, 'InvalidArgument') && /CAP_FLY/.test(e.message));
});

test('default spec: caps, masking, mounts, devices, rlimits, no new privs off', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const { spec, warnings } = buildContainerSpec(baseInput(dir), fullHost());
  const caps = spec.process.capabilities!;
  assert.deepEqual(caps.bounding, D);
  assert.deepEqual(caps.effective, D);
  assert.deepEqual(caps.permitted, D);
  assert.deepEqual(caps.ambient, []);
  assert.deepEqual(spec.linux.maskedPaths, [...DEFAULT_MASKED_PATHS]);
  assert.deepEqual(spec.linux.readonlyPaths, [...DEFAULT_READONLY_PATHS]);
  assert.deepEqual(spec.mounts.map((m) => m.destination), ['/proc', '/dev', '/dev/pts', '/dev/mqueue', '/sys', '/sys/fs/cgroup']);
  assert.ok(spec.mounts.find((m) => m.destination === '/sys')!.options!.includes('ro'));
  assert.deepEqual(spec.linux.devices!.map((d) => d.path), ['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty']);
  assert.deepEqual(spec.linux.resources!.devices![0], { allow: false, access: 'rwm' });
  assert.ok(spec.linux.resources!.devices!.some((r) => r.allow && r.major === 136 && r.minor === undefined), 'ptys allowed');
  assert.deepEqual(spec.process.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 1048576, soft: 1048576 }]);
  assert.equal(spec.process.noNewPrivileges, false);
  assert.equal(spec.root.readonly, false);
  assert.equal(spec.linux.seccomp, undefined, 'no seccomp profile requested = unconfined');
  assert.deepEqual(warnings, []);
  assert.equal(spec.annotations!['io.kubernetes.cri.container-type'], 'container');
  assert.equal(spec.annotations!['io.kubernetes.cri.sandbox-id'], 'pod1');
});

test('masked/readonly paths: request lists replace defaults; explicit [] unmasks', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const custom = buildContainerSpec(baseInput(dir, { security: { maskedPaths: ['/proc/kcore'], readonlyPaths: ['/proc/sys'] } }), fullHost()).spec;
  assert.deepEqual(custom.linux.maskedPaths, ['/proc/kcore']);
  assert.deepEqual(custom.linux.readonlyPaths, ['/proc/sys']);
  const none = buildContainerSpec(baseInput(dir, { security: { maskedPaths: [], readonlyPaths: [] } }), fullHost()).spec;
  assert.deepEqual(none.linux.maskedPaths, []);
  assert.deepEqual(none.linux.readonlyPaths, []);
  const onlyMasked = buildContainerSpec(baseInput(dir, { security: { maskedPaths: [] } }), fullHost()).spec;
  assert.deepEqual(onlyMasked.linux.readonlyPaths, [...DEFAULT_READONLY_PATHS]);
  assert.throws(() => buildContainerSpec(baseInput(dir, { security: { maskedPaths: ['proc/x'] } }), fullHost()), (e) => isCorralError(e, 'InvalidArgument'));
});

test('readonly rootfs, no_new_privs, ambient capabilities', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const { spec } = buildContainerSpec(
    baseInput(dir, { security: { readonlyRootfs: true, noNewPrivs: true, capabilities: { drop: ['ALL'], addAmbient: ['NET_BIND_SERVICE'] } } }),
    fullHost(),
  );
  assert.equal(spec.root.readonly, true);
  assert.equal(spec.process.noNewPrivileges, true);
  assert.deepEqual(spec.process.capabilities, {
    bounding: ['CAP_NET_BIND_SERVICE'], effective: ['CAP_NET_BIND_SERVICE'], permitted: ['CAP_NET_BIND_SERVICE'],
    inheritable: ['CAP_NET_BIND_SERVICE'], ambient: ['CAP_NET_BIND_SERVICE'],
  });
});

test('privileged: all caps, host devices, all devices allowed, no masking, rw /sys, no seccomp', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const dev = path.join(dir, 'dev');
  execFileSync('mkdir', ['-p', path.join(dev, 'pts'), path.join(dev, 'snd')]);
  execFileSync('mknod', ['-m', '0660', path.join(dev, 'sda'), 'b', '8', '0']);
  execFileSync('mknod', [path.join(dev, 'snd', 'timer'), 'c', '116', '33']);
  execFileSync('mknod', [path.join(dev, 'pts', '0'), 'c', '136', '0']);
  execFileSync('mknod', [path.join(dev, 'console'), 'c', '5', '1']);
  execFileSync('ln', ['-s', '/proc/self/fd/0', path.join(dev, 'stdin')]);
  const { spec, warnings } = buildContainerSpec(
    baseInput(dir, { security: { privileged: true, seccomp: { kind: 'RuntimeDefault' } }, pod: { ...baseInput(dir).pod, privileged: true } }),
    fullHost({ hostDevDir: dev }),
  );
  assert.deepEqual(spec.process.capabilities!.bounding, [...CAPABILITIES]);
  const paths = spec.linux.devices!.map((d) => d.path);
  assert.ok(paths.includes('/dev/sda') && paths.includes('/dev/snd/timer'), paths.join(','));
  assert.ok(!paths.includes('/dev/pts/0') && !paths.includes('/dev/console') && !paths.includes('/dev/stdin'), paths.join(','));
  const sda = spec.linux.devices!.find((d) => d.path === '/dev/sda')!;
  assert.deepEqual([sda.type, sda.major, sda.minor, sda.fileMode], ['b', 8, 0, 0o660]);
  assert.deepEqual(spec.linux.resources!.devices, [{ allow: true, access: 'rwm' }]);
  assert.deepEqual(spec.linux.maskedPaths, []);
  assert.deepEqual(spec.linux.readonlyPaths, []);
  assert.ok(spec.mounts.find((m) => m.destination === '/sys')!.options!.includes('rw'));
  assert.ok(!spec.mounts.find((m) => m.destination === '/sys/fs/cgroup')!.options!.includes('ro'));
  assert.equal(spec.linux.seccomp, undefined);
  assert.deepEqual(warnings, []);
  assert.throws(
    () => buildContainerSpec(baseInput(dir, { security: { privileged: true } }), fullHost({ hostDevDir: dev })),
    (e) => isCorralError(e, 'InvalidArgument') && /non-privileged pod/.test(e.message),
  );
});

test('capabilities the daemon lacks are left out with a warning', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const held = new Set(CAPABILITIES.filter((c) => c !== 'CAP_SYS_RESOURCE' && c !== 'CAP_NET_RAW'));
  const { spec, warnings } = buildContainerSpec(
    baseInput(dir, { security: { capabilities: { add: ['SYS_RESOURCE', 'SYS_ADMIN'] } } }),
    fullHost({ daemonCaps: { effective: held, ownOomScoreAdj: 0 } }),
  );
  const b = spec.process.capabilities!.bounding;
  assert.ok(b.includes('CAP_SYS_ADMIN'));
  assert.ok(!b.includes('CAP_SYS_RESOURCE') && !b.includes('CAP_NET_RAW'));
  assert.ok(!spec.process.capabilities!.effective.includes('CAP_NET_RAW'));
  assert.deepEqual(warnings, ['capabilities the daemon lacks were left out: CAP_NET_RAW, CAP_SYS_RESOURCE']);
});
