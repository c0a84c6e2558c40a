import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs, existsSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { CAN_RUN_SYSTEM, podConfig, systemFixture, TEST_CGROUP_PARENT, type SystemFixture } from '../test/sandbox/system-fixture';
import { run } from '../src/sys/exec';
import { mountPoints } from '../src/sys/mount';
import { existingCgroupDirs } from '../src/sys/cgroups';
import { waitFor } from '../src/core/wait';

let fx: SystemFixture;

before(async () => {
  if (CAN_RUN_SYSTEM) fx = await systemFixture();
});
after(async () => {
  if (fx) await fx.cleanup();
  if (!CAN_RUN_SYSTEM) return;
  const mounts = [...(await mountPoints())].filter((m) => m.includes('corral-sb-'));
  assert.deepEqual(mounts, [], 'no corral mounts left');
  const links = (await run('ip', ['-o', 'link'])).stdout;
  assert.ok(!links.includes('corral-e2e'), 'no test bridge left');
  assert.deepEqual(await existingCgroupDirs(TEST_CGROUP_PARENT), [], 'no test cgroups left');
});

const opts = { skip: !CAN_RUN_SYSTEM, timeout: 120_000 };

async function status(id: string) {
  return (await fx.call('PodSandboxStatus', { pod_sandbox_id: id, verbose: true })) as any;
}

async function vethCount(): Promise<number> {
  const out = (await run('ip', ['-o', 'link', 'show', 'master', 'corral-e2e0'], { allowFailure: true })).stdout;
  return out.split('\n').filter((l) => l.trim()).length;
}

async function conmonsFor(id: string): Promise<number> {
  const out = (await run('ps', ['-eo', 'args'])).stdout;
  return out.split('\n').filter((l) => l.includes('conmon') && l.includes(id)).length;
}

/** A listener inside the pod's netns that answers one connection with `msg`. */
function podListener(netns: string, port: number, msg: string) {
  const p = spawn('nsenter', [`--net=${netns}`, 'busybox', 'nc', '-l', '-p', String(port)], { stdio: ['pipe', 'ignore', 'ignore'] });
  p.stdin.end(msg);
  return p;
}

function readFrom(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port });
    let data = '';
    s.setEncoding('utf8');
    s.on('data', (d) => (data += d));
    s.on('end', () => resolve(data));
    s.on('error', reject);
    s.setTimeout(3000, () => s.destroy(new Error('timeout')));
  });
}

test('run a pod: IP, namespaces, files, sysctl, reachability, host port, then stop/remove leave nothing', opts, async () => {
  const cfg = podConfig(
    { port_mappings: [{ protocol: 'TCP', container_port: 8080, host_port: 18080, host_ip: '127.0.0.1' }] },
    { sysctls: { 'net.ipv4.ip_unprivileged_port_start': '1024', 'kernel/shm_rmid_forced': '1' } },
  );
  const { pod_sandbox_id: id } = await fx.call('RunPodSandbox', { config: cfg, runtime_handler: '' });
  assert.match(id, /^[0-9a-f]{64}$/);
  const st = await status(id);
  assert.equal(st.status.state, 'SANDBOX_READY');
  assert.match(st.status.network.ip, /^10\.233\.0\.\d+$/);
  assert.match(st.status.created_at, /^\d{19}$/);
  assert.deepEqual(st.status.labels, cfg.labels);
  assert.deepEqual(st.status.annotations, cfg.annotations);
  assert.equal(st.status.linux.namespaces.options.network, 'POD');
  const info = JSON.parse(st.info.info);
  assert.ok(info.pid > 0);
  assert.ok(info.timings.namespacesMs >= 0 && info.timings.cniAddMs > 0 && info.timings.infraStartMs > 0);
  assert.equal(info.cniResult.ips[0].address.split('/')[0], st.status.network.ip);

  // The infra process runs catatonit inside the pinned namespaces.
  assert.equal((await fs.readFile(`/proc/${info.pid}/comm`, 'utf8')).trim(), 'catatonit');
  for (const [kind, file] of [['net', info.netnsPath], ['ipc', info.ipcnsPath], ['uts', info.utsnsPath]]) {
    assert.equal((await fs.stat(`/proc/${info.pid}/ns/${kind}`)).ino, (await fs.stat(file)).ino, `${kind} namespace is the pinned one`);
  }
  assert.equal((await run('nsenter', [`--uts=${info.utsnsPath}`, 'hostname'])).stdout.trim(), cfg.hostname);
  assert.equal((await run('nsenter', [`--net=${info.netnsPath}`, 'cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start'])).stdout.trim(), '1024');
  assert.equal((await run('nsenter', [`--ipc=${info.ipcnsPath}`, 'cat', '/proc/sys/kernel/shm_rmid_forced'])).stdout.trim(), '1');
  assert.match((await run('nsenter', [`--net=${info.netnsPath}`, 'ip', '-o', 'link', 'show', 'lo'])).stdout, /UP|LOOPBACK,UP/);

  // DNS, hosts and hostname files.
  const resolv = await fs.readFile(info.resolvConfPath, 'utf8');
  assert.equal(resolv, 'search e2e.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n');
  const hosts = await fs.readFile(info.hostsPath, 'utf8');
  assert.match(hosts, new RegExp(`^${st.status.network.ip.replace(/\./g, '\\.')}\\t${cfg.hostname}$`, 'm'));
  assert.match(hosts, /^127\.0\.0\.1\tlocalhost$/m);
  const mounts = await mountPoints();
  assert.ok(mounts.has(info.shmPath), '/dev/shm tmpfs mounted');

  // A listener in the pod is reachable from the host, directly and through the host port.
  const l1 = podListener(info.netnsPath, 8080, 'hello-direct\n');
  try {
    const got = await waitFor(() => readFrom(st.status.network.ip, 8080).catch(() => ''), { timeoutMs: 5000, what: 'pod listener' });
    assert.equal(got, 'hello-direct\n');
  } finally {
    l1.kill();
  }
  const l2 = podListener(info.netnsPath, 8080, 'hello-hostport\n');
  try {
    const got = await waitFor(() => readFrom('127.0.0.1', 18080).catch(() => ''), { timeoutMs: 5000, what: 'host port' });
    assert.equal(got, 'hello-hostport\n');
  } finally {
    l2.kill();
  }

  // List with filters.
  const all = (await fx.call('ListPodSandbox', { filter: null })) as any;
  assert.ok(all.items.some((x: any) => x.id === id));
  const byPrefix = (await fx.call('ListPodSandbox', { filter: { id: id.slice(0, 12), state: null, label_selector: {} } })) as any;
  assert.deepEqual(byPrefix.items.map((x: any) => x.id), [id]);
  const byLabel = (await fx.call('ListPodSandbox', { filter: { id: '', state: { state: 'SANDBOX_READY' }, label_selector: { pod: cfg.labels.pod } } })) as any;
  assert.deepEqual(byLabel.items.map((x: any) => x.id), [id]);
  const none = (await fx.call('ListPodSandbox', { filter: { id: '', state: { state: 'SANDBOX_NOTREADY' }, label_selector: { pod: cfg.labels.pod } } })) as any;
  assert.equal(none.items.length, 0);

  // Stop: infra gone, network torn down, namespaces unpinned; idempotent.
  const cgroup = info.cgroupsPath;
  assert.ok((await existingCgroupDirs(cgroup)).length > 0);
  await fx.call('StopPodSandbox', { pod_sandbox_id: id });
  await fx.call('StopPodSandbox', { pod_sandbox_id: id });
  assert.equal((await status(id)).status.state, 'SANDBOX_NOTREADY');
  assert.ok(!existsSync(`/proc/${info.pid}`) || (await fs.readFile(`/proc/${info.pid}/comm`, 'utf8')).trim() !== 'catatonit');
  assert.ok(!existsSync(info.netnsPath));
  assert.equal(await vethCount(), 0);
  assert.deepEqual(await existingCgroupDirs(cgroup), []);
  const after = await mountPoints();
  for (const p of [info.netnsPath, info.ipcnsPath, info.utsnsPath, info.shmPath]) assert.ok(!after.has(p), `${p} unmounted`);
  const nat = (await run('iptables', ['-t', 'nat', '-S'])).stdout;
  assert.ok(!nat.includes('18080'), 'host port rules removed');

  // Remove: record and files gone; idempotent; status NotFound afterwards.
  await fx.call('RemovePodSandbox', { pod_sandbox_id: id });
  await fx.call('RemovePodSandbox', { pod_sandbox_id: id });
  await assert.rejects(fx.call('PodSandboxStatus', { pod_sandbox_id: id, verbose: false }), (e: any) => e.code === 'NotFound');
  assert.ok(!existsSync(path.join(fx.config.root, 'sandboxes', `${id}.json`)));
  assert.ok(!existsSync(path.join(fx.config.run_root, 'sandboxes', id)));
  assert.ok(!existsSync(path.join(fx.config.root, 'cni-results', `${id}.json`)));
  assert.equal(await conmonsFor(id), 0);
});

test('host-network pod: no netns, node hostname, no CNI', opts, async () => {
  const cfg = podConfig({}, {
    security_context: { ...podConfig().linux.security_context, namespace_options: { network: 'NODE', pid: 'NODE', ipc: 'NODE', target_id: '', userns_options: null } },
  });
  const { pod_sandbox_id: id } = await fx.call('RunPodSandbox', { config: cfg, runtime_handler: 'runc' });
  const st = await status(id);
  const info = JSON.parse(st.info.info);
  assert.equal(st.status.state, 'SANDBOX_READY');
  assert.equal(st.status.network.ip, '');
  assert.equal(info.netnsPath, '');
  assert.equal(st.status.linux.namespaces.options.network, 'NODE');
  assert.equal(await fs.readlink(`/proc/${info.pid}/ns/net`), await fs.readlink('/proc/self/ns/net'));
  assert.equal(await fs.readlink(`/proc/${info.pid}/ns/pid`), await fs.readlink('/proc/self/ns/pid'));
  assert.equal((await fs.readFile(info.hostsPath, 'utf8')), await fs.readFile('/etc/hosts', 'utf8'));
  assert.equal(info.shmPath, '/dev/shm');
  await fx.call('RemovePodSandbox', { pod_sandbox_id: id });
  assert.ok(!existsSync(`/proc/${info.pid}`) || (await fs.readFile(`/proc/${info.pid}/comm`, 'utf8')).trim() !== 'catatonit');
});

test('20 concurrent RunPodSandbox get distinct IPs; List/Status do not wait behind creation', opts, async () => {
  const cfgs = Array.from({ length: 20 }, () => podConfig());
  const runs = cfgs.map((c) => fx.call('RunPodSandbox', { config: c, runtime_handler: '' }));
  const t = performance.now();
  await fx.call('ListPodSandbox', { filter: null });
  assert.ok(performance.now() - t < 50, 'List answered while creations run');
  const ids = (await Promise.all(runs)).map((r: any) => r.pod_sandbox_id as string);
  assert.equal(new Set(ids).size, 20);
  const ips = await Promise.all(ids.map(async (id) => (await status(id)).status.network.ip as string));
  assert.equal(new Set(ips).size, 20);
  for (const ip of ips) assert.match(ip, /^10\.233\.0\.\d+$/);
  await Promise.all(ids.map((id) => fx.call('RemovePodSandbox', { pod_sandbox_id: id })));
  assert.equal(await vethCount(), 0);
});

test('idempotent retry joins or returns the same id; a different config is AlreadyExists', opts, async () => {
  const cfg = podConfig();
  const [a, b] = await Promise.all([
    fx.call('RunPodSandbox', { config: cfg, runtime_handler: '' }),
    fx.call('RunPodSandbox', { config: structuredClone(cfg), runtime_handler: '' }),
  ]);
  assert.equal(a.pod_sandbox_id, b.pod_sandbox_id);
  const c = await fx.call('RunPodSandbox', { config: structuredClone(cfg), runtime_handler: '' });
  assert.equal(c.pod_sandbox_id, a.pod_sandbox_id);
  await assert.rejects(fx.call('RunPodSandbox', { config: { ...cfg, labels: { other: 'x' } }, runtime_handler: '' }), (e: any) => e.code === 'AlreadyExists');
  assert.equal(fx.area.service.list({ labelSelector: { pod: cfg.labels.pod } }).length, 1);
  await fx.call('RemovePodSandbox', { pod_sandbox_id: a.pod_sandbox_id });
  // After removal the same metadata creates a new sandbox.
  const d = await fx.call('RunPodSandbox', { config: cfg, runtime_handler: '' });
  assert.notEqual(d.pod_sandbox_id, a.pod_sandbox_id);
  await fx.call('RemovePodSandbox', { pod_sandbox_id: d.pod_sandbox_id });
});

async function assertNoLeftovers(podName: string) {
  const leftovers = fx.area.service.list().filter((s) => s.spec.metadata.name === podName);
  assert.equal(leftovers.length, 0);
  for (const d of ['netns', 'ipcns', 'utsns', 'sandboxes']) {
    const names = await fs.readdir(path.join(fx.config.run_root, d)).catch(() => []);
    assert.deepEqual(names, [], `${d} empty`);
  }
  assert.deepEqual(await fs.readdir(path.join(fx.config.root, 'sandboxes')), []);
  assert.deepEqual(await fs.readdir(path.join(fx.config.root, 'cni-results')), []);
  assert.ok(![...(await mountPoints())].some((m) => m.startsWith(fx.dir)), 'no mounts');
  assert.equal(await vethCount(), 0);
  const ipam = await fs.readdir('/var/lib/cni/networks/corral-e2e').catch(() => [] as string[]);
  assert.deepEqual(ipam.filter((n) => /^\d+\.\d+\.\d+\.\d+$/.test(n)), [], 'IPAM released');
}

test('bad input is rejected before side effects', opts, async () => {
  const bad = async (config: any, code: string, re: RegExp, handler = '') =>
    assert.rejects(fx.call('RunPodSandbox', { config, runtime_handler: handler }), (e: any) => e.code === code && re.test(e.message));
  await bad(null, 'InvalidArgument', /config is required/);
  await bad({ ...podConfig(), metadata: null }, 'InvalidArgument', /metadata is required/);
  await bad({ ...podConfig(), metadata: { name: '', namespace: 'x', uid: 'u', attempt: 0 } }, 'InvalidArgument', /name is required/);
  await bad({ ...podConfig(), log_directory: 'relative/dir' }, 'InvalidArgument', /absolute/);
  await bad(podConfig(), 'InvalidArgument', /unknown runtime handler/, 'kata');
  await bad(podConfig({}, { sysctls: { 'net.ipv4..bad': '1' } }), 'InvalidArgument', /sysctl/);
  await bad(podConfig({}, { sysctls: { 'vm.swappiness': '1' } }), 'InvalidArgument', /not namespaced/);
  await bad(podConfig({ port_mappings: [{ protocol: 'TCP', container_port: 0, host_port: 80, host_ip: '' }] }), 'InvalidArgument', /container_port/);
  await assertNoLeftovers('none');
});

test('an unparsable sysctl value fails in runc and rolls back everything', opts, async () => {
  const cfg = podConfig({}, { sysctls: { 'net.ipv4.ip_unprivileged_port_start': 'not-a-number' } });
  await assert.rejects(fx.call('RunPodSandbox', { config: cfg, runtime_handler: '' }), (e: any) => /infra start/.test(e.message));
  await assertNoLeftovers(cfg.metadata.name);
});

test('a host port already in use is refused with nothing left behind', opts, async () => {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(18081, '127.0.0.1', () => r()));
  try {
    const cfg = podConfig({ port_mappings: [{ protocol: 'TCP', container_port: 80, host_port: 18081, host_ip: '127.0.0.1' }] });
    await assert.rejects(fx.call('RunPodSandbox', { config: cfg, runtime_handler: '' }), (e: any) => e.code === 'FailedPrecondition' && /18081/.test(e.message));
    await assertNoLeftovers(cfg.metadata.name);
  } finally {
    srv.close();
  }
  // Two pods cannot map the same host port either.
  const a = await fx.call('RunPodSandbox', { config: podConfig({ port_mappings: [{ protocol: 'TCP', container_port: 80, host_port: 18082, host_ip: '' }] }), runtime_handler: '' });
  await assert.rejects(
    fx.call('RunPodSandbox', { config: podConfig({ port_mappings: [{ protocol: 'TCP', container_port: 80, host_port: 18082, host_ip: '127.0.0.1' }] }), runtime_handler: '' }),
    (e: any) => e.code === 'FailedPrecondition',
  );
  await fx.call('RemovePodSandbox', { pod_sandbox_id: a.pod_sandbox_id });
});

test('a failing or hanging CNI plugin rolls back (netns, veth, IPAM, mounts, records)', opts, async () => {
  const conf = path.join(fx.confDir, '10-test.conflist');
  const orig = await fs.readFile(conf, 'utf8');
  const script = (body: string) => `#!/bin/sh\nif [ "$CNI_COMMAND" = ADD ]; then\n${body}\nfi\ncat >/dev/null\necho '{}'\n`;
  await fs.writeFile(path.join(fx.pluginDir, 'corral-fail'), script(`echo '{"cniVersion":"1.0.0","code":100,"msg":"injected failure"}'; exit 1`), { mode: 0o755 });
  await fs.writeFile(path.join(fx.pluginDir, 'corral-hang'), script('exec sleep 30'), { mode: 0o755 });
  try {
    for (const [plugin, code, re] of [['corral-fail', 'Internal', /injected failure/], ['corral-hang', 'DeadlineExceeded', /timed out/]] as const) {
      const list = JSON.parse(orig);
      list.plugins.push({ type: plugin });
      await fs.writeFile(conf, JSON.stringify(list));
      await fx.area.reload!();
      fx.config.cni.timeout_seconds = plugin === 'corral-hang' ? 1 : 20;
      const cfg = podConfig();
      await assert.rejects(fx.call('RunPodSandbox', { config: cfg, runtime_handler: '' }), (e: any) => e.code === code && re.test(e.message) && /CNI ADD/.test(e.message));
      await assertNoLeftovers(cfg.metadata.name);
    }
  } finally {
    fx.config.cni.timeout_seconds = 20;
    await fs.writeFile(conf, orig);
    await fx.area.reload!();
  }
});

test('network readiness follows the CNI config dir (watched)', opts, async () => {
  assert.equal(fx.area.service.networkStatus().ready, true);
  const conf = path.join(fx.confDir, '10-test.conflist');
  const orig = await fs.readFile(conf, 'utf8');
  await fs.rename(conf, conf + '.off');
  try {
    await waitFor(() => !fx.area.service.networkStatus().ready, { timeoutMs: 5000, what: 'not ready' });
    const ns = fx.area.service.networkStatus();
    assert.equal(ns.reason, 'NetworkPluginNotReady');
    await assert.rejects(fx.call('RunPodSandbox', { config: podConfig(), runtime_handler: '' }), (e: any) => e.code === 'FailedPrecondition');
  } finally {
    await fs.writeFile(conf, orig);
    await fs.rm(conf + '.off', { force: true });
  }
  await waitFor(() => fx.area.service.networkStatus().ready, { timeoutMs: 5000, what: 'ready again' });
});

test('recovery: pods survive a restart; an infra that died is NOTREADY (live exit event and at start)', opts, async () => {
  const { pod_sandbox_id: id } = await fx.call('RunPodSandbox', { config: podConfig(), runtime_handler: '' });
  const { pod_sandbox_id: id2 } = await fx.call('RunPodSandbox', { config: podConfig(), runtime_handler: '' });
  const pid = JSON.parse((await status(id)).info.info).pid;
  await fx.restart();
  assert.equal((await status(id)).status.state, 'SANDBOX_READY');
  assert.equal(JSON.parse((await status(id)).info.info).pid, pid);
  // Live: the infra dies while the daemon runs.
  await fx.area.runtime.kill(id, 'runc', 'KILL');
  await waitFor(async () => (await status(id)).status.state === 'SANDBOX_NOTREADY', { timeoutMs: 5000, what: 'NOTREADY after exit' });
  // While down: the infra dies between two daemon lives.
  await fx.area.close();
  const pid2 = JSON.parse((await status(id2)).info.info).pid;
  process.kill(pid2, 'SIGKILL');
  await waitFor(async () => !!(await fx.area.runtime.exitStatus(id2)), { timeoutMs: 5000, what: 'exit file' });
  await fx.restart();
  assert.equal((await status(id2)).status.state, 'SANDBOX_NOTREADY');
  await fx.call('RemovePodSandbox', { pod_sandbox_id: id });
  await fx.call('RemovePodSandbox', { pod_sandbox_id: id2 });
  assert.equal(fx.area.service.list().length, 0);
});
