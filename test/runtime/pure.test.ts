import { test } from 'node:test';
import assert from 'node:assert/strict';
import { conmonArgs, parseSyncMessage } from '../../src/runtime/conmon';
import { parseExitFile } from '../../src/runtime/exit-monitor';
import { buildInfraSpec } from '../../src/oci/infra';
import { clampOomScoreAdj, decodeCapMask, grantableCapabilities, mustRestrictOomScoreAdj, parseCapEff } from '../../src/sys/caps';
import { cgroupsPathFor, checkCgroupParent } from '../../src/sys/cgroups';
import { pinArgv } from '../../src/sys/netns';
import { parseMountPoints } from '../../src/sys/mount';

const launch = {
  conmon: '/usr/bin/conmon', runtimePath: '/usr/sbin/runc', runtimeRoot: '/run/corral/runtime/runc', id: 'abc', name: 'p-infra',
  bundle: '/b', logPath: '/b/infra.log', exitDir: '/run/corral/exits', persistDir: '/b', socketDir: '/run/corral/sockets',
  containerPidFile: '/b/pidfile', conmonPidFile: '/b/conmon.pid',
};

test('conmon argv follows cri-o: bundle, ids, exit dir, k8s-file log, pid files, runtime root', () => {
  const a = conmonArgs(launch);
  const val = (f: string) => a[a.indexOf(f) + 1];
  assert.equal(val('-b'), '/b');
  assert.equal(val('-c'), 'abc');
  assert.equal(val('-u'), 'abc');
  assert.equal(val('-n'), 'p-infra');
  assert.equal(val('--exit-dir'), '/run/corral/exits');
  assert.equal(val('-l'), 'k8s-file:/b/infra.log');
  assert.equal(val('-P'), '/b/conmon.pid');
  assert.equal(val('-p'), '/b/pidfile');
  assert.equal(val('--persist-dir'), '/b');
  assert.equal(val('-r'), '/usr/sbin/runc');
  assert.equal(val('--runtime-arg'), '--root=/run/corral/runtime/runc');
  assert.equal(val('--socket-dir-path'), '/run/corral/sockets');
  assert.ok(!a.includes('--syslog'));
  assert.ok(!a.includes('-s') && !a.includes('-t') && !a.includes('-i'));
  const t = conmonArgs({ ...launch, terminal: true, systemdCgroup: true, logSizeMax: 1024 });
  assert.ok(t.includes('-t') && t.includes('-s') && t[t.indexOf('--log-size-max') + 1] === '1024');
  const i = conmonArgs({ ...launch, stdin: true });
  assert.ok(i.includes('-i') && i.includes('--leave-stdin-open'));
  assert.ok(!conmonArgs({ ...launch, stdin: true, stdinOnce: true }).includes('--leave-stdin-open'));
});

test('conmon sync message and exit file parsing', () => {
  assert.deepEqual(parseSyncMessage('{"pid": 42}'), { pid: 42, message: undefined });
  assert.deepEqual(parseSyncMessage('{"pid": -1, "message": "boom"}'), { pid: -1, message: 'boom' });
  assert.throws(() => parseSyncMessage('{"x":1}'));
  assert.equal(parseExitFile('137'), 137);
  assert.equal(parseExitFile('0\n'), 0);
  assert.equal(parseExitFile(''), undefined);
});

test('infra spec: catatonit -P, read-only root, pinned namespaces, own PID ns, cgroup, sysctls, user, hostname', () => {
  const s = buildInfraSpec({
    rootfs: '/r', catatonit: '/usr/bin/catatonit', hostname: 'web', netns: '/n/net', ipcns: '/n/ipc', utsns: '/n/uts', pid: 'pod',
    cgroupsPath: '/kubepods/corral-x', sysctls: { 'net.core.somaxconn': '1024' }, uid: 65535, gid: 65535, readonlyRootfs: true,
    oomScoreAdj: -998, shmPath: '/sb/shm', annotations: { a: 'b' },
  });
  assert.deepEqual(s.process.args, ['/catatonit', '-P']);
  assert.equal(s.root.path, '/r');
  assert.equal(s.root.readonly, true);
  assert.deepEqual(s.process.user, { uid: 65535, gid: 65535 });
  assert.equal(s.process.oomScoreAdj, -998);
  assert.equal(s.hostname, 'web');
  assert.equal(s.linux.cgroupsPath, '/kubepods/corral-x');
  assert.deepEqual(s.linux.sysctl, { 'net.core.somaxconn': '1024' });
  const ns = Object.fromEntries(s.linux.namespaces.map((n) => [n.type, n.path ?? '']));
  assert.deepEqual(ns, { mount: '', network: '/n/net', ipc: '/n/ipc', uts: '/n/uts', pid: '' });
  const cat = s.mounts.find((m) => m.destination === '/catatonit');
  assert.equal(cat?.source, '/usr/bin/catatonit');
  assert.ok(cat?.options?.includes('ro'));
  assert.equal(s.mounts.find((m) => m.destination === '/dev/shm')?.source, '/sb/shm');
  assert.deepEqual(s.process.capabilities?.bounding, []);
  const host = buildInfraSpec({ rootfs: '/r', catatonit: '/c', hostname: 'node', pid: 'node', cgroupsPath: '/x', sysctls: {}, uid: 0, gid: 0, readonlyRootfs: true, annotations: {} });
  assert.deepEqual(host.linux.namespaces.map((n) => n.type), ['mount']);
  assert.equal(host.hostname, undefined);
  assert.equal(host.linux.sysctl, undefined);
});

test('capabilities: CapEff decoding, oom clamp, grantable split', () => {
  const caps = parseCapEff('Name:\tx\nCapEff:\t000001fffeffffff\n');
  assert.ok(caps.has('CAP_SYS_ADMIN'));
  assert.ok(!caps.has('CAP_SYS_RESOURCE'));
  assert.ok(decodeCapMask('1').has('CAP_CHOWN'));
  const d = { effective: caps, ownOomScoreAdj: 0 };
  assert.equal(mustRestrictOomScoreAdj('auto', d), true);
  assert.equal(mustRestrictOomScoreAdj('false', d), false);
  assert.equal(mustRestrictOomScoreAdj('auto', { effective: decodeCapMask('1ffffffffff'), ownOomScoreAdj: 0 }), false);
  assert.equal(clampOomScoreAdj(-998, d), 0);
  assert.equal(clampOomScoreAdj(500, d), 500);
  assert.equal(clampOomScoreAdj(2000, d), 1000);
  assert.equal(clampOomScoreAdj(-998, { ...d, ownOomScoreAdj: -1000 }), -998);
  assert.deepEqual(grantableCapabilities(['CAP_CHOWN', 'CAP_SYS_RESOURCE'], d), { granted: ['CAP_CHOWN'], dropped: ['CAP_SYS_RESOURCE'] });
});

test('cgroups path forms and parent checks', () => {
  assert.equal(cgroupsPathFor('cgroupfs', '/kubepods/besteffort/pod1', 'corral', 'id'), '/kubepods/besteffort/pod1/corral-id');
  assert.equal(cgroupsPathFor('cgroupfs', '', 'corral', 'id'), '/corral-id');
  assert.equal(cgroupsPathFor('systemd', 'kubepods-besteffort-pod1.slice', 'corral', 'id'), 'kubepods-besteffort-pod1.slice:corral:id');
  assert.equal(checkCgroupParent('systemd', '/kubepods/pod1'), checkCgroupParent('systemd', '/kubepods/pod1'));
  assert.match(checkCgroupParent('systemd', '/kubepods/pod1') ?? '', /slice/);
  assert.equal(checkCgroupParent('cgroupfs', '/kubepods/pod1'), undefined);
});

test('one unshare call pins namespaces and mounts shm; mountinfo parsing', () => {
  const a = pinArgv({ net: '/n', ipc: '/i', uts: '/u', shm: { path: '/s', sizeBytes: 1024 } });
  assert.equal(a.file, 'unshare');
  assert.deepEqual(a.args, ['--net=/n', '--ipc=/i', '--uts=/u', '--', 'mount', '-t', 'tmpfs', '-o', 'nosuid,nodev,noexec,mode=1777,size=1024', 'shm', '/s']);
  assert.deepEqual(pinArgv({ net: '/n' }).args, ['--net=/n', '--', 'true']);
  assert.equal(pinArgv({ shm: { path: '/s', sizeBytes: 1 } }).file, 'mount');
  assert.equal(pinArgv({}).file, 'true');
  const mi = '36 35 98:0 / /mnt/a\\040b rw,noatime master:1 - ext3 /dev/root rw\n37 35 0:4 / /run/x/netns/id rw - nsfs nsfs rw\n';
  assert.deepEqual(parseMountPoints(mi), ['/mnt/a b', '/run/x/netns/id']);
});
