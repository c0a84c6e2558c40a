import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isCorralError } from '../../../src/core/errors';
import { buildContainerSpec, containerNamespaces } from '../../../src/container/spec';
import { baseInput, fullHost, tempDir } from './fixture';

test('namespaces for each PID mode', () => {
  const pod = { network: '/n', ipc: '/i', uts: '/u' };
  assert.deepEqual(containerNamespaces({ ...pod, pidMode: 'pod', pidPath: '/proc/42/ns/pid' }), [
    { type: 'mount' }, { type: 'network', path: '/n' }, { type: 'ipc', path: '/i' }, { type: 'uts', path: '/u' }, { type: 'pid', path: '/proc/42/ns/pid' },
  ]);
  assert.deepEqual(containerNamespaces({ ...pod, pidMode: 'container' }).at(-1), { type: 'pid' });
  assert.equal(containerNamespaces({ ...pod, pidMode: 'node' }).find((n) => n.type === 'pid'), undefined);
  assert.deepEqual(containerNamespaces({ ...pod, pidMode: 'target', pidPath: '/proc/7/ns/pid' }).at(-1), { type: 'pid', path: '/proc/7/ns/pid' });
  assert.throws(() => containerNamespaces({ ...pod, pidMode: 'target' }), (e) => isCorralError(e, 'InvalidArgument'));
  assert.throws(() => containerNamespaces({ ...pod, pidMode: 'pod' }), (e) => isCorralError(e, 'InvalidArgument'));
  // Host network/IPC/UTS pod: no entries (the host's namespaces).
  assert.deepEqual(containerNamespaces({ pidMode: 'node' }), [{ type: 'mount' }]);
});

test('cgroupsPath per cgroup manager; bad parents refused', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  assert.equal(buildContainerSpec(baseInput(dir), fullHost()).spec.linux.cgroupsPath, '/kubepods/pod1/corral-c0ffee');
  const sd = baseInput(dir);
  sd.pod.cgroupParent = '/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice';
  assert.equal(buildContainerSpec(sd, fullHost({ cgroupManager: 'systemd' })).spec.linux.cgroupsPath, 'kubepods-besteffort-pod1.slice:corral:c0ffee');
  const bad = baseInput(dir);
  bad.pod.cgroupParent = '/kubepods/../etc';
  assert.throws(() => buildContainerSpec(bad, fullHost()), (e) => isCorralError(e, 'InvalidArgument'));
  assert.throws(() => buildContainerSpec(baseInput(dir), fullHost({ cgroupManager: 'systemd' })), (e) => isCorralError(e, 'InvalidArgument'));
});

test('pod sysctls: applied when their namespace is private, refused otherwise', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const i = baseInput(dir);
  i.pod.sysctls = { 'net.ipv4.ip_forward': '1', 'kernel.shm_rmid_forced': '1' };
  assert.deepEqual(buildContainerSpec(i, fullHost()).spec.linux.sysctl, { 'net.ipv4.ip_forward': '1', 'kernel.shm_rmid_forced': '1' });
  const hostNet = baseInput(dir);
  hostNet.pod.namespaces = { ...hostNet.pod.namespaces, network: undefined };
  hostNet.pod.sysctls = { 'net.ipv4.ip_forward': '1' };
  assert.throws(() => buildContainerSpec(hostNet, fullHost()), (e) => isCorralError(e, 'InvalidArgument') && /host/.test(e.message));
  const global = baseInput(dir);
  global.pod.sysctls = { 'vm.swappiness': '1' };
  assert.throws(() => buildContainerSpec(global, fullHost()), (e) => isCorralError(e, 'InvalidArgument'));
});

test('process fields, HOSTNAME, tty, annotations, stop signal', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const r = buildContainerSpec(
    baseInput(dir, {
      image: { Entrypoint: ['/bin/sh'], Cmd: ['-c', 'true'], Env: ['A=1'], WorkingDir: '/srv', StopSignal: 'SIGQUIT' },
      args: ['-c', 'echo hi'], envs: [{ key: 'A', value: '2' }], tty: true, imageName: 'busybox:latest',
      annotations: { 'x/y': 'z', 'io.kubernetes.cri.container-name': 'spoofed' },
    }),
    fullHost(),
  );
  assert.deepEqual(r.spec.process.args, ['/bin/sh', '-c', 'echo hi']);
  assert.deepEqual(r.spec.process.env, ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'A=2', 'HOSTNAME=web-0']);
  assert.equal(r.spec.process.cwd, '/srv');
  assert.equal(r.spec.process.terminal, true);
  assert.equal(r.stopSignal, 'SIGQUIT');
  assert.equal(r.spec.annotations!['x/y'], 'z');
  assert.equal(r.spec.annotations!['io.kubernetes.cri.container-name'], 'app');
  assert.equal(r.spec.annotations!['io.kubernetes.cri.image-name'], 'busybox:latest');
  assert.equal(r.spec.hostname, undefined, 'containers join the pod UTS namespace and do not set a hostname');
  assert.throws(() => buildContainerSpec(baseInput(dir, { image: {} }), fullHost()), (e) => isCorralError(e, 'InvalidArgument'));
});
