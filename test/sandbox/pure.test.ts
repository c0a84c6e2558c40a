import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderHosts, renderResolvConf } from '../../src/sandbox/files';
import { filterSandboxes } from '../../src/sandbox/filter';
import { matchesLabels } from '../../src/core/labels';
import { HostPortRegistry } from '../../src/sandbox/hostports';
import { parseSize, shmSizeOf, stableStringify, sysctlNamespace, validateSpec, DEFAULT_SHM_BYTES } from '../../src/sandbox/validate';
import { toPodSandboxSpec } from '../../src/cri/sandbox';
import type { PodSandboxSpec, SandboxRecord } from '../../src/sandbox/types';
import { podConfig } from './system-fixture';

const spec = (over: Partial<PodSandboxSpec> = {}): PodSandboxSpec => ({ ...toPodSandboxSpec(podConfig(), ''), ...over });
const known = (h: string) => h === 'runc';

test('resolv.conf rendering', () => {
  assert.equal(renderResolvConf({ servers: ['1.1.1.1', '8.8.8.8'], searches: ['a.b', 'c'], options: ['ndots:5', 'edns0'] }), 'search a.b c\nnameserver 1.1.1.1\nnameserver 8.8.8.8\noptions ndots:5 edns0\n');
  assert.equal(renderResolvConf({ servers: ['1.1.1.1'], searches: [], options: [] }), 'nameserver 1.1.1.1\n');
});

test('hosts rendering has localhost and the pod IPs under the hostname', () => {
  const h = renderHosts('web-0', ['10.0.0.5', 'fd00::5']);
  assert.match(h, /^127\.0\.0\.1\tlocalhost$/m);
  assert.match(h, /^10\.0\.0\.5\tweb-0$/m);
  assert.match(h, /^fd00::5\tweb-0$/m);
  assert.ok(h.endsWith('\n'));
});

test('label selector and filters', () => {
  assert.ok(matchesLabels({ a: '1', b: '2' }, { a: '1' }));
  assert.ok(!matchesLabels({ a: '1' }, { a: '2' }));
  assert.ok(!matchesLabels({ a: '1' }, { c: '1' }));
  assert.ok(matchesLabels({}, undefined));
  const rec = (id: string, state: SandboxRecord['state'], labels: Record<string, string>) => ({ id, state, spec: { labels } }) as unknown as SandboxRecord;
  const all = [rec('aaa1', 'ready', { x: '1' }), rec('aab2', 'notready', { x: '2' }), rec('bbb3', 'ready', { x: '1' }), rec('ccc4', 'creating', {})];
  assert.deepEqual(filterSandboxes(all, undefined).map((r) => r.id), ['aaa1', 'aab2', 'bbb3']);
  assert.deepEqual(filterSandboxes(all, { id: 'aa' }).map((r) => r.id), ['aaa1', 'aab2']);
  assert.deepEqual(filterSandboxes(all, { state: 'ready' }).map((r) => r.id), ['aaa1', 'bbb3']);
  assert.deepEqual(filterSandboxes(all, { state: 'notready' }).map((r) => r.id), ['aab2']);
  assert.deepEqual(filterSandboxes(all, { labelSelector: { x: '1' }, id: 'b' }).map((r) => r.id), ['bbb3']);
});

test('validation: metadata, log dir, handler, hostname, sysctls, ports, dns, cgroup parent, shm size', () => {
  const ok = validateSpec(spec({ sysctls: { 'net/ipv4/ip_forward': '1', 'kernel.shm_rmid_forced': '1' } }), known);
  assert.deepEqual(ok.sysctls, { 'net.ipv4.ip_forward': '1', 'kernel.shm_rmid_forced': '1' });
  const bad = (s: PodSandboxSpec, re: RegExp) => assert.throws(() => validateSpec(s, known), (e: any) => e.code === 'InvalidArgument' && re.test(e.message));
  bad(spec({ metadata: { name: '', namespace: 'n', uid: 'u', attempt: 0 } }), /name is required/);
  bad(spec({ metadata: { name: 'a', namespace: '', uid: 'u', attempt: 0 } }), /namespace is required/);
  bad(spec({ metadata: { name: 'a', namespace: 'n', uid: '', attempt: 0 } }), /uid is required/);
  bad(spec({ logDirectory: 'rel' }), /absolute/);
  bad(spec({ runtimeHandler: 'kata' }), /unknown runtime handler/);
  bad(spec({ hostname: 'bad_host!' }), /hostname/);
  bad(spec({ sysctls: { 'kernel.panic': '1' } }), /not namespaced/);
  bad(spec({ sysctls: { 'net..x': '1' } }), /invalid name/);
  bad(spec({ sysctls: { 'net.ipv4.ip_forward': '' } }), /invalid value/);
  bad(spec({ sysctls: { 'net.ipv4.ip_forward': '1' }, namespaces: { network: 'node', pid: 'pod', ipc: 'pod', targetId: '' } }), /host network/);
  bad(spec({ sysctls: { 'kernel.msgmax': '1' }, namespaces: { network: 'pod', pid: 'pod', ipc: 'node', targetId: '' } }), /host IPC/);
  bad(spec({ namespaces: { network: 'container', pid: 'pod', ipc: 'pod', targetId: '' } }), /network namespace mode/);
  bad(spec({ namespaces: { network: 'pod', pid: 'target', ipc: 'pod', targetId: 'x' } }), /TARGET/);
  bad(spec({ portMappings: [{ protocol: 'tcp', containerPort: 70000, hostPort: 0, hostIp: '' }] }), /container_port/);
  bad(spec({ portMappings: [{ protocol: 'tcp', containerPort: 80, hostPort: 80, hostIp: 'nope' }] }), /host_ip/);
  bad(spec({ dns: { servers: ['x.y'], searches: [], options: [] } }), /dns_config/);
  bad(spec({ cgroupParent: '/kubepods/../etc' }), /\.\./);
  bad(spec({ seccomp: { type: 'localhost', path: 'rel.json' } }), /absolute/);
  bad(spec({ annotations: { 'io.kubernetes.cri-o.ShmSize': 'lots' } }), /ShmSize/);
});

test('sizes, shm size, sysctl namespaces, stable stringify', () => {
  assert.equal(parseSize('64Mi'), 64 * 1024 * 1024);
  assert.equal(parseSize('128m'), 128 * 1024 * 1024);
  assert.equal(parseSize('1g'), 1024 ** 3);
  assert.equal(parseSize('4096'), 4096);
  assert.equal(parseSize('x'), undefined);
  assert.equal(shmSizeOf(spec()), DEFAULT_SHM_BYTES);
  assert.equal(shmSizeOf(spec({ annotations: { 'io.kubernetes.cri-o.ShmSize': '16Mi' } })), 16 * 1024 * 1024);
  assert.equal(sysctlNamespace('net.core.somaxconn'), 'net');
  assert.equal(sysctlNamespace('fs.mqueue.msg_max'), 'ipc');
  assert.equal(sysctlNamespace('kernel.sem'), 'ipc');
  assert.equal(sysctlNamespace('vm.overcommit_memory'), undefined);
  assert.equal(stableStringify({ b: 1, a: { d: [1, 2], c: 'x' } }), stableStringify({ a: { c: 'x', d: [1, 2] }, b: 1 }));
  assert.notEqual(stableStringify({ a: [1, 2] }), stableStringify({ a: [2, 1] }));
});

test('host port registry: conflicts per protocol/port unless distinct specific IPs', () => {
  const r = new HostPortRegistry();
  r.reserve('a', [{ protocol: 'tcp', containerPort: 80, hostPort: 8080, hostIp: '' }]);
  assert.throws(() => r.reserve('b', [{ protocol: 'tcp', containerPort: 80, hostPort: 8080, hostIp: '127.0.0.1' }]), (e: any) => e.code === 'FailedPrecondition');
  r.reserve('b', [{ protocol: 'udp', containerPort: 80, hostPort: 8080, hostIp: '' }]);
  r.reserve('c', [{ protocol: 'tcp', containerPort: 80, hostPort: 9090, hostIp: '127.0.0.1' }]);
  r.reserve('d', [{ protocol: 'tcp', containerPort: 80, hostPort: 9090, hostIp: '127.0.0.2' }]);
  r.reserve('e', [{ protocol: 'tcp', containerPort: 80, hostPort: 0, hostIp: '' }]);
  r.release('a');
  r.reserve('b2', [{ protocol: 'tcp', containerPort: 80, hostPort: 8080, hostIp: '127.0.0.1' }]);
  r.reserve('a', [{ protocol: 'tcp', containerPort: 80, hostPort: 8080, hostIp: '127.0.0.3' }]);
});

test('CRI conversion: namespaces, seccomp forms, int64 user, protocols; missing config/metadata', () => {
  const c = podConfig({ port_mappings: [{ protocol: 'UDP', container_port: 53, host_port: 5353, host_ip: '' }] });
  c.linux.security_context.run_as_user = { value: '1000' };
  c.linux.security_context.namespace_options = { network: 'NODE', pid: 'CONTAINER', ipc: 'POD', target_id: '', userns_options: null };
  const s = toPodSandboxSpec(c, 'runc');
  assert.equal(s.runAsUser, 1000);
  assert.deepEqual(s.namespaces, { network: 'node', pid: 'container', ipc: 'pod', targetId: '' });
  assert.deepEqual(s.portMappings, [{ protocol: 'udp', containerPort: 53, hostPort: 5353, hostIp: '' }]);
  assert.deepEqual(s.seccomp, { type: 'runtime-default' });
  assert.equal(s.runtimeHandler, 'runc');
  c.linux.security_context.seccomp = null;
  c.linux.security_context.seccomp_profile_path = 'localhost//etc/prof.json';
  assert.deepEqual(toPodSandboxSpec(c, '').seccomp, { type: 'localhost', path: '/etc/prof.json' });
  c.linux.security_context.seccomp = { profile_type: 'Unconfined', localhost_ref: '' };
  assert.deepEqual(toPodSandboxSpec(c, '').seccomp, { type: 'unconfined' });
  const noLinux = { ...podConfig(), linux: null, dns_config: null };
  const s2 = toPodSandboxSpec(noLinux, '');
  assert.deepEqual(s2.namespaces, { network: 'pod', pid: 'pod', ipc: 'pod', targetId: '' });
  assert.equal(s2.dns, undefined);
  assert.throws(() => toPodSandboxSpec(null, ''), /config is required/);
  assert.throws(() => toPodSandboxSpec({ ...podConfig(), metadata: null }, ''), /metadata is required/);
  c.linux.security_context.run_as_user = { value: '-1' };
  assert.throws(() => toPodSandboxSpec(c, ''), /run_as_user/);
});
