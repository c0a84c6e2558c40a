import { test } from 'node:test';
import assert from 'node:assert/strict';
import { toContainerConfig, toCriStatus, toResources } from '../../src/cri/container';
import { isCorralError } from '../../src/core/errors';
import { record } from './fixtures';

const base = (over: Record<string, unknown> = {}): any => ({
  metadata: { name: 'web', attempt: 2 },
  image: { image: ' busybox:1 ', annotations: { a: 'b' } },
  command: ['sh'],
  args: ['-c', 'true'],
  working_dir: '/w',
  envs: [{ key: 'A', value: Buffer.from('x=y') }],
  mounts: [{ container_path: '/data', host_path: '/tmp', readonly: true, selinux_relabel: false, propagation: 'PROPAGATION_HOST_TO_CONTAINER', uidMappings: [], gidMappings: [], recursive_read_only: false, image: null, image_sub_path: '' }],
  devices: [],
  labels: { l: '1' },
  annotations: {},
  log_path: 'web/0.log',
  stdin: false,
  stdin_once: false,
  tty: false,
  linux: {
    resources: { cpu_period: '100000', cpu_quota: '50000', cpu_shares: '512', memory_limit_in_bytes: '1048576', oom_score_adj: '-997', cpuset_cpus: '', cpuset_mems: '', hugepage_limits: [], unified: {}, memory_swap_limit_in_bytes: '0' },
    security_context: {
      capabilities: { add_capabilities: ['NET_ADMIN'], drop_capabilities: ['ALL'], add_ambient_capabilities: [] },
      privileged: false,
      namespace_options: { network: 'POD', pid: 'TARGET', ipc: 'POD', target_id: 'abc', userns_options: null },
      selinux_options: null,
      run_as_user: { value: '1000' },
      run_as_username: '',
      readonly_rootfs: true,
      supplemental_groups: ['5'],
      apparmor_profile: '',
      seccomp_profile_path: '',
      no_new_privs: true,
      run_as_group: null,
      masked_paths: [],
      readonly_paths: [],
      seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' },
      apparmor: null,
      supplemental_groups_policy: 'Merge',
    },
  },
  windows: null,
  CDI_devices: [],
  stop_signal: 'SIGUSR1',
  ...over,
});

test('toContainerConfig: request → domain (envs from bytes, propagation, resources as bigint, security)', () => {
  const c = toContainerConfig(base());
  assert.equal(c.image, 'busybox:1');
  assert.deepEqual(c.envs, [{ key: 'A', value: 'x=y' }]);
  assert.equal(c.mounts[0].propagation, 'rslave');
  assert.equal(c.resources?.oomScoreAdj, -997n);
  assert.equal(c.resources?.cpuQuota, 50000n);
  assert.equal(c.security.runAsUser, 1000n);
  assert.deepEqual(c.security.supplementalGroups, [5n]);
  assert.deepEqual(c.security.seccomp, { kind: 'RuntimeDefault' });
  assert.equal(c.security.maskedPaths, undefined, 'empty masked paths mean the defaults');
  assert.equal(c.security.readonlyRootfs, true);
  assert.deepEqual([c.pidMode, c.pidTargetId, c.stopSignal], ['target', 'abc', 'SIGUSR1']);
});

test('toContainerConfig: defaults for a minimal request; legacy profile paths', () => {
  const c = toContainerConfig(base({ linux: { resources: null, security_context: { ...base().linux.security_context, seccomp: null, seccomp_profile_path: 'localhost/p.json', namespace_options: null } }, stop_signal: 'RUNTIME_DEFAULT' }));
  assert.deepEqual(c.security.seccomp, { kind: 'Localhost', localhostRef: 'p.json' });
  assert.equal(c.pidMode, 'pod');
  assert.equal(c.stopSignal, '');
  assert.equal(c.resources, undefined);
});

test('toContainerConfig: refuses what corral cannot do', () => {
  assert.throws(() => toContainerConfig(null), (e) => isCorralError(e, 'InvalidArgument'));
  assert.throws(() => toContainerConfig(base({ metadata: null })), (e) => isCorralError(e, 'InvalidArgument'));
  assert.throws(() => toContainerConfig(base({ CDI_devices: [{ name: 'x' }] })), (e) => isCorralError(e, 'Unimplemented'));
  assert.throws(() => toResources({ ...base().linux.resources, memory_limit_in_bytes: '12abc' }), /not an integer/);
});

test('toCriStatus: int64 as strings, reason, user, mounts back in CRI form', () => {
  const r = record({ state: 'exited', exitCode: 137, reason: 'OOMKilled', finishedAtNs: '1700000000000000000', user: { uid: 1000, gid: 1000, supplementalGroups: [1000, 2000] } });
  r.config.mounts = [{ containerPath: '/data', hostPath: '/tmp', readonly: true, propagation: 'rshared' }];
  const s = toCriStatus(r);
  assert.equal(s.state, 'CONTAINER_EXITED');
  assert.equal(s.finished_at, '1700000000000000000');
  assert.equal(s.reason, 'OOMKilled');
  assert.deepEqual(s.user, { linux: { uid: '1000', gid: '1000', supplemental_groups: ['1000', '2000'] } });
  assert.equal(s.mounts![0].propagation, 'PROPAGATION_BIDIRECTIONAL');
  assert.equal(s.resources?.linux?.memory_limit_in_bytes, '0');
  assert.equal(s.stop_signal, 'SIGTERM');
});
