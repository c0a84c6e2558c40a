import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadCri } from '../../src/cri/proto';

// Wire compatibility: encode requests with the exact serializer the server uses and compare with bytes
// written by hand from the CRI v1 descriptor (field numbers and wire types spelled out below).

const VARINT = 0;
const LEN = 2;

function varint(v: bigint | number): number[] {
  // int64/int32 negatives are encoded as 10-byte two's complement varints.
  let x = BigInt.asUintN(64, BigInt(v));
  const out: number[] = [];
  do {
    let b = Number(x & 0x7fn);
    x >>= 7n;
    if (x !== 0n) b |= 0x80;
    out.push(b);
  } while (x !== 0n);
  return out;
}
const key = (field: number, wt: number) => varint((field << 3) | wt);
const int = (field: number, v: bigint | number) => [...key(field, VARINT), ...varint(v)];
const bytes = (field: number, b: number[]) => [...key(field, LEN), ...varint(b.length), ...b];
const str = (field: number, s: string) => bytes(field, [...Buffer.from(s)]);
const msg = (field: number, ...parts: number[][]) => bytes(field, parts.flat());
/** A map<string,string> entry: a nested message with key = 1, value = 2. */
const mapEntry = (field: number, k: string, v: string) => msg(field, str(1, k), str(2, v));

function serializer(service: 'RuntimeService' | 'ImageService', method: string): (o: unknown) => Buffer {
  const def = loadCri().def[`runtime.v1.${service}`] as unknown as Record<string, { requestSerialize(o: unknown): Buffer; requestDeserialize(b: Buffer): unknown }>;
  return (o) => def[method].requestSerialize(o);
}
function deserializer(service: 'RuntimeService' | 'ImageService', method: string): (b: Buffer) => any {
  const def = loadCri().def[`runtime.v1.${service}`] as unknown as Record<string, { requestDeserialize(b: Buffer): unknown }>;
  return (b) => def[method].requestDeserialize(b);
}

test('RunPodSandboxRequest: metadata, hostname, DNS, port mappings, labels, linux security context', () => {
  const req = {
    config: {
      metadata: { name: 'web', uid: 'u-1', namespace: 'default', attempt: 2 },
      hostname: 'web-0',
      log_directory: '/var/log/pods/default_web_u-1',
      dns_config: { servers: ['10.96.0.10'], searches: ['svc.cluster.local'], options: ['ndots:5'] },
      port_mappings: [{ protocol: 'UDP', container_port: 53, host_port: 5353, host_ip: '127.0.0.1' }],
      labels: { app: 'web' },
      linux: {
        cgroup_parent: '/kubepods/besteffort',
        security_context: { namespace_options: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' }, run_as_user: { value: '1000' }, readonly_rootfs: true },
        sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0' },
      },
    },
    runtime_handler: 'runc',
  };
  const expected = [
    ...msg(1, // PodSandboxConfig config = 1
      msg(1, str(1, 'web'), str(2, 'u-1'), str(3, 'default'), int(4, 2)), // PodSandboxMetadata: name 1, uid 2, namespace 3, attempt 4
      str(2, 'web-0'), // hostname = 2
      str(3, '/var/log/pods/default_web_u-1'), // log_directory = 3
      msg(4, str(1, '10.96.0.10'), str(2, 'svc.cluster.local'), str(3, 'ndots:5')), // DNSConfig: servers 1, searches 2, options 3
      msg(5, int(1, 1), int(2, 53), int(3, 5353), str(4, '127.0.0.1')), // PortMapping: protocol 1 (UDP=1), container_port 2, host_port 3, host_ip 4
      mapEntry(6, 'app', 'web'), // labels = 6
      msg(8, // LinuxPodSandboxConfig linux = 8
        str(1, '/kubepods/besteffort'), // cgroup_parent = 1
        msg(2, // LinuxSandboxSecurityContext security_context = 2
          // NamespaceOption: network 1 (NODE=2), pid 2 (CONTAINER=1), ipc 3 (POD=0; protobufjs writes a zero it was given explicitly, which every proto3 decoder accepts)
          msg(1, int(1, 2), int(2, 1), int(3, 0)),
          msg(3, int(1, 1000)), // Int64Value run_as_user = 3
          int(4, 1)), // readonly_rootfs = 4
        mapEntry(3, 'net.ipv4.ip_unprivileged_port_start', '0')), // sysctls = 3
    ),
    ...str(2, 'runc'), // runtime_handler = 2
  ];
  const got = serializer('RuntimeService', 'RunPodSandbox')(req);
  assert.deepEqual([...got], expected);
  const back = deserializer('RuntimeService', 'RunPodSandbox')(got);
  assert.equal(back.config.metadata.attempt, 2);
  assert.equal(back.config.linux.security_context.run_as_user.value, '1000', 'int64 decodes as a decimal string');
  assert.equal(back.config.port_mappings[0].protocol, 'UDP');
});

test('CreateContainerRequest: image, command, env, mounts, int64 resources beyond 2^53 and negative', () => {
  const big = '9007199254740993'; // 2^53 + 1: not representable as a JS number
  const req = {
    pod_sandbox_id: 'abc',
    config: {
      metadata: { name: 'app', attempt: 3 },
      image: { image: 'busybox:1' },
      command: ['sh'],
      args: ['-c', 'echo hi'],
      envs: [{ key: 'A', value: Buffer.from('b') }],
      mounts: [{ container_path: '/data', host_path: '/srv/data', readonly: true, propagation: 'PROPAGATION_BIDIRECTIONAL' }],
      log_path: 'app/3.log',
      linux: { resources: { cpu_period: '100000', cpu_quota: '50000', memory_limit_in_bytes: big, oom_score_adj: '-997' } },
    },
  };
  const expected = [
    ...str(1, 'abc'), // pod_sandbox_id = 1
    ...msg(2, // ContainerConfig config = 2
      msg(1, str(1, 'app'), int(2, 3)), // ContainerMetadata: name 1, attempt 2
      msg(2, str(1, 'busybox:1')), // ImageSpec image = 2 → image 1
      str(3, 'sh'), // command = 3
      str(4, '-c'), str(4, 'echo hi'), // args = 4 (repeated)
      msg(6, str(1, 'A'), str(2, 'b')), // KeyValue envs = 6: key 1, value 2
      msg(7, str(1, '/data'), str(2, '/srv/data'), int(3, 1), int(5, 2)), // Mount: container_path 1, host_path 2, readonly 3, propagation 5
      str(11, 'app/3.log'), // log_path = 11
      msg(15, // LinuxContainerConfig linux = 15
        msg(1, int(1, 100000n), int(2, 50000n), int(4, 9007199254740993n), int(5, -997n))), // LinuxContainerResources: cpu_period 1, cpu_quota 2, memory_limit_in_bytes 4, oom_score_adj 5
    ),
  ];
  const got = serializer('RuntimeService', 'CreateContainer')(req);
  assert.deepEqual([...got], expected);
  const back = deserializer('RuntimeService', 'CreateContainer')(got);
  assert.equal(back.config.linux.resources.memory_limit_in_bytes, big, 'int64 survives the round trip exactly');
  assert.equal(back.config.linux.resources.oom_score_adj, '-997');
});

test('PullImageRequest: image spec and auth config field numbers', () => {
  const req = { image: { image: 'registry.local/app:1' }, auth: { username: 'u', password: 'p', server_address: 'registry.local' } };
  const expected = [
    ...msg(1, str(1, 'registry.local/app:1')), // ImageSpec image = 1
    ...msg(2, str(1, 'u'), str(2, 'p'), str(4, 'registry.local')), // AuthConfig auth = 2: username 1, password 2, server_address 4
  ];
  assert.deepEqual([...serializer('ImageService', 'PullImage')(req)], expected);
});

test('every RuntimeService and ImageService RPC of CRI v1 is in the proto', () => {
  const { def } = loadCri();
  const rt = Object.keys(def['runtime.v1.RuntimeService'] as object);
  const img = Object.keys(def['runtime.v1.ImageService'] as object);
  assert.equal(rt.length + img.length, 41);
  for (const m of ['Version', 'RunPodSandbox', 'CreateContainer', 'ExecSync', 'Exec', 'Attach', 'PortForward', 'GetContainerEvents', 'ListMetricDescriptors', 'RuntimeConfig', 'UpdatePodSandboxResources']) {
    assert.ok(rt.includes(m), m);
  }
  assert.deepEqual(img.sort(), ['ImageFsInfo', 'ImageStatus', 'ListImages', 'PullImage', 'RemoveImage', 'StreamImages']);
});
