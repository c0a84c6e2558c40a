/**
 * Containers end to end through the real daemon: busybox image pulled from a local registry, a pod on its
 * own bridge (corral-ctr0, 10.235.0.0/24) and cgroup parent (/corral-e2e-ctr), conmon + runc underneath.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { startDaemon, type TestDaemon } from './harness/daemon';
import { startRegistry, type TestRegistry } from './harness/registry';
import { buildBusyboxImage, pushImage } from './harness/oci-image';
import { enableNetwork } from './harness/network';
import { tearDown } from './harness/teardown';
import { waitFor } from '../src/core/wait';
import { run } from '../src/sys/exec';
import { existingCgroupDirs } from '../src/sys/cgroups';
import { decodeCapMask } from '../src/sys/caps';

const CGROUP_PARENT = '/corral-e2e-ctr';
const NETWORK = { name: 'corral-e2e-ctr', bridge: 'corral-ctr0', subnet: '10.235.0.0/24' };

let reg: TestRegistry;
let d: TestDaemon;
let image: string;
let logDir: string;
let podId: string;

const GRPC = { INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, ALREADY_EXISTS: 6, FAILED_PRECONDITION: 9, UNIMPLEMENTED: 12 };

function podConfig(name: string, over: Record<string, unknown> = {}): any {
  return {
    metadata: { name, namespace: 'e2e-ctr', uid: `uid-${name}`, attempt: 0 },
    hostname: name,
    log_directory: path.join(logDir, name),
    dns_config: { servers: ['10.0.0.53'], searches: ['e2e.svc'], options: [] },
    linux: {
      cgroup_parent: CGROUP_PARENT,
      security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD', target_id: '' } },
    },
    labels: { app: name },
    ...over,
  };
}

type Ctr = Record<string, any>;

/** A ContainerConfig for the busybox image; `sc` is merged into linux.security_context. */
function ctrConfig(name: string, over: Ctr = {}, sc: Ctr = {}, resources?: Ctr): Ctr {
  return {
    metadata: { name, attempt: 0 },
    image: { image },
    log_path: `${name}.log`,
    labels: { ctr: name },
    annotations: { 'e2e/anno': name },
    linux: {
      resources: resources ?? null,
      security_context: {
        namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD', target_id: '' },
        seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' },
        ...sc,
      },
    },
    ...over,
  };
}

async function create(cfg: Ctr, pod = podId, podCfg = podConfig('main')): Promise<string> {
  const r = await d.rt.CreateContainer({ pod_sandbox_id: pod, config: cfg, sandbox_config: podCfg });
  assert.match(r.container_id, /^[0-9a-f]{64}$/);
  return r.container_id;
}

async function status(id: string, verbose = false) {
  return d.rt.ContainerStatus({ container_id: id, verbose });
}

async function waitState(id: string, state: string, timeoutMs = 20_000) {
  return waitFor(async () => {
    const s = (await status(id)).status!;
    return s.state === state ? s : undefined;
  }, { timeoutMs, what: `container ${id.slice(0, 12)} ${state}` });
}

/** Creates, starts, waits for exit; returns the status and the log text. */
async function runToExit(name: string, cmd: string[], over: Ctr = {}, sc: Ctr = {}, resources?: Ctr) {
  const id = await create(ctrConfig(name, { command: cmd, ...over }, sc, resources));
  await d.rt.StartContainer({ container_id: id });
  const st = await waitState(id, 'CONTAINER_EXITED', 60_000);
  const log = readFileSync(path.join(logDir, 'main', `${name}.log`), 'utf8');
  return { id, st, log };
}

/** The message part of CRI log lines of a stream. */
function logMessages(log: string, stream = 'stdout'): string[] {
  return log.split('\n').filter(Boolean).map((l) => l.split(' ')).filter((f) => f[1] === stream).map((f) => f.slice(3).join(' '));
}

async function expectCode(p: Promise<unknown>, code: number, re?: RegExp): Promise<void> {
  await assert.rejects(p, (e: { code?: number; details?: string }) => {
    assert.equal(e.code, code, `grpc code ${e.code}: ${e.details}`);
    if (re) assert.match(e.details ?? '', re);
    return true;
  });
}

before(async () => {
  logDir = '';
  reg = await startRegistry();
  await pushImage(reg, 'e2e/busybox', '1', buildBusyboxImage({ config: { Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'FROM_IMAGE=yes'], Cmd: ['sh'], WorkingDir: '/tmp' } }));
  image = `${reg.host}/e2e/busybox:1`;
  d = await startDaemon({ logLevel: 'debug' });
  logDir = path.join(d.dir, 'logs');
  await enableNetwork(d, NETWORK);
  await d.img.PullImage({ image: { image } });
  podId = (await d.rt.RunPodSandbox({ config: podConfig('main') })).pod_sandbox_id;
});

after(() => tearDown({ d, reg, network: NETWORK, cgroupParent: CGROUP_PARENT }));

test('env, args and working dir as Docker merges them; CRI log lines', async () => {
  const { st, log } = await runToExit('env', ['sh', '-c', 'echo "pwd=$(pwd)"; env; echo "args=$*"', 'sh', 'a1', 'a2'], {
    envs: [{ key: 'FOO', value: Buffer.from('bar baz') }],
  });
  assert.equal(st.exit_code, 0);
  assert.equal(st.reason, 'Completed');
  const out = logMessages(log);
  assert.ok(out.includes('pwd=/tmp'), `image WorkingDir used: ${out}`);
  assert.ok(out.includes('FOO=bar baz'), 'request env');
  assert.ok(out.includes('FROM_IMAGE=yes'), 'image env');
  assert.ok(out.includes('HOSTNAME=main'), 'pod hostname');
  assert.ok(out.includes('args=a1 a2'));
  // <RFC3339Nano> stdout F <message>
  for (const line of log.split('\n').filter(Boolean)) assert.match(line, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) (stdout|stderr) (F|P) /);
  assert.ok(BigInt(st.finished_at) >= BigInt(st.started_at) && BigInt(st.started_at) >= BigInt(st.created_at));
});

test('user and groups: run_as_user, run_as_username, supplemental groups from the image and the request', async () => {
  const a = await runToExit('id-uid', ['id'], {}, { run_as_user: { value: '1000' }, supplemental_groups: ['3000'] });
  assert.equal(logMessages(a.log)[0], 'uid=1000(app) gid=1000(app) groups=1000(app),2000(extra),3000');
  assert.deepEqual(a.st.user?.linux, { uid: '1000', gid: '1000', supplemental_groups: ['1000', '2000', '3000'] });
  const b = await runToExit('id-name', ['id', '-u'], {}, { run_as_username: 'nobody' });
  assert.equal(logMessages(b.log)[0], '65534');
  const c = await runToExit('id-root', ['id']);
  assert.match(logMessages(c.log)[0], /^uid=0\(root\) gid=0\(root\)/);
});

test('exit codes and reasons', async () => {
  const e = await runToExit('exit3', ['sh', '-c', 'echo oops >&2; exit 3']);
  assert.equal(e.st.exit_code, 3);
  assert.equal(e.st.reason, 'Error');
  assert.deepEqual(logMessages(e.log, 'stderr'), ['oops']);
});

test('readonly rootfs refuses writes; a dropped capability refuses chown; seccomp RuntimeDefault blocks unshare', async () => {
  const ro = await runToExit('ro', ['sh', '-c', 'touch /x 2>&1; echo rc=$?; touch /dev/shm/ok && echo shm-ok'], {}, { readonly_rootfs: true });
  const out = logMessages(ro.log);
  assert.ok(out.some((l) => /Read-only file system/.test(l)), out.join('\n'));
  assert.ok(out.includes('shm-ok'), 'the pod shm stays writable');
  const cap = await runToExit('nochown', ['sh', '-c', 'touch /tmp/f; chown 1000 /tmp/f 2>&1; echo rc=$?'], {}, { capabilities: { add_capabilities: [], drop_capabilities: ['CHOWN'], add_ambient_capabilities: [] } });
  assert.ok(logMessages(cap.log).some((l) => /Operation not permitted/.test(l)), cap.log);
  assert.ok(logMessages(cap.log).includes('rc=1'));
  const withCap = await runToExit('chown', ['sh', '-c', 'touch /tmp/f; chown 1000 /tmp/f; echo rc=$?']);
  assert.ok(logMessages(withCap.log).includes('rc=0'), withCap.log);
  const sec = await runToExit('seccomp', ['sh', '-c', 'unshare -U true 2>&1; echo rc=$?']);
  assert.ok(logMessages(sec.log).some((l) => /Operation not permitted/.test(l)), sec.log);
  const unconfined = await runToExit('unconfined', ['sh', '-c', 'unshare -U true 2>&1; echo rc=$?'], {}, { seccomp: { profile_type: 'Unconfined', localhost_ref: '' } });
  assert.ok(logMessages(unconfined.log).includes('rc=0'), `without seccomp unshare works: ${unconfined.log}`);
});

test('capabilities the daemon lacks: oom_score_adj is clamped and ungrantable capabilities left out, the container still runs', async () => {
  const caps = decodeCapMask(/^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
  const r = await runToExit('nocaps', ['sh', '-c', 'cat /proc/self/oom_score_adj; grep CapBnd /proc/self/status'], {}, {
    capabilities: { add_capabilities: ['SYS_RESOURCE'], drop_capabilities: [], add_ambient_capabilities: [] },
  }, { oom_score_adj: '-997' });
  assert.equal(r.st.exit_code, 0, r.log);
  const [adj, bnd] = logMessages(r.log);
  const inCtr = decodeCapMask(bnd.split(/\s+/)[1]);
  if (!caps.has('CAP_SYS_RESOURCE')) {
    assert.ok(Number(adj) > -997, `clamped oom_score_adj: ${adj}`);
    assert.equal(inCtr.has('CAP_SYS_RESOURCE'), false);
  } else {
    assert.equal(adj, '-997');
    assert.equal(inCtr.has('CAP_SYS_RESOURCE'), true);
  }
});

test('StopContainer: trapped stop signal vs timeout 0 vs ignored signal; idempotent; unknown id succeeds', async () => {
  const trap = await create(ctrConfig('trap', { command: ['sh', '-c', 'trap "echo got-term; exit 7" TERM; echo ready; while true; do sleep 0.1; done'] }));
  await d.rt.StartContainer({ container_id: trap });
  const trapLog = path.join(logDir, 'main', 'trap.log');
  await waitFor(() => existsSync(trapLog) && readFileSync(trapLog, 'utf8').includes('ready'), { what: 'trap ready' });
  let t = Date.now();
  await d.rt.StopContainer({ container_id: trap, timeout: '30' });
  assert.ok(Date.now() - t < 10_000, 'stopped by the signal, not the timeout');
  let st = (await status(trap)).status!;
  assert.equal(st.state, 'CONTAINER_EXITED');
  assert.equal(st.exit_code, 7);
  assert.ok(logMessages(readFileSync(trapLog, 'utf8')).includes('got-term'));
  await d.rt.StopContainer({ container_id: trap, timeout: '30' });

  const kill = await create(ctrConfig('kill0', { command: ['sh', '-c', 'trap "" TERM; while true; do sleep 0.1; done'] }));
  await d.rt.StartContainer({ container_id: kill });
  await waitState(kill, 'CONTAINER_RUNNING');
  t = Date.now();
  await d.rt.StopContainer({ container_id: kill, timeout: '0' });
  assert.ok(Date.now() - t < 5_000);
  st = (await status(kill)).status!;
  assert.equal(st.exit_code, 137);
  assert.equal(st.reason, 'Error');

  const ignore = await create(ctrConfig('ignore', { command: ['sh', '-c', 'trap "" TERM; echo ready; while true; do sleep 0.1; done'] }));
  await d.rt.StartContainer({ container_id: ignore });
  const ignoreLog = path.join(logDir, 'main', 'ignore.log');
  await waitFor(() => existsSync(ignoreLog) && readFileSync(ignoreLog, 'utf8').includes('ready'), { what: 'ignore ready' });
  t = Date.now();
  await d.rt.StopContainer({ container_id: ignore, timeout: '1' });
  const took = Date.now() - t;
  assert.ok(took >= 900 && took < 8000, `SIGKILL after the 1 s timeout (took ${took} ms)`);
  assert.equal((await status(ignore)).status!.exit_code, 137);

  await d.rt.StopContainer({ container_id: 'f'.repeat(64), timeout: '0' });
  await d.rt.RemoveContainer({ container_id: 'f'.repeat(64) });
  for (const id of [trap, kill, ignore]) await d.rt.RemoveContainer({ container_id: id });
});

test('ExecSync: stdout, stderr, exit code; timeout gives DEADLINE_EXCEEDED; not running gives FAILED_PRECONDITION', async () => {
  const id = await create(ctrConfig('exec', { command: ['sleep', '1000'] }, { run_as_user: { value: '1000' } }));
  await expectCode(d.rt.ExecSync({ container_id: id, cmd: ['true'], timeout: '5' }), GRPC.FAILED_PRECONDITION);
  await d.rt.StartContainer({ container_id: id });
  const r = await d.rt.ExecSync({ container_id: id, cmd: ['sh', '-c', 'echo out; echo err >&2; id -u; exit 4'], timeout: '10' });
  assert.equal(r.stdout.toString(), 'out\n1000\n');
  assert.equal(r.stderr.toString(), 'err\n');
  assert.equal(r.exit_code, 4);
  const big = await d.rt.ExecSync({ container_id: id, cmd: ['sh', '-c', 'head -c 3000000 /dev/zero'], timeout: '20' });
  assert.equal(big.stdout.length, 3_000_000);
  const t = Date.now();
  await expectCode(d.rt.ExecSync({ container_id: id, cmd: ['sleep', '30'], timeout: '1' }), GRPC.DEADLINE_EXCEEDED);
  assert.ok(Date.now() - t < 8000);
  const ps = await d.rt.ExecSync({ container_id: id, cmd: ['ps', '-o', 'args'], timeout: '10' });
  assert.ok(!ps.stdout.toString().includes('sleep 30'), `the timed-out process was killed: ${ps.stdout}`);
  await d.rt.RemoveContainer({ container_id: id });
});

test('logs: partial P lines for long output without newline; ReopenContainerLog after rotation', async () => {
  const long = await runToExit('partial', ['sh', '-c', 'head -c 20000 /dev/zero | tr "\\0" a']);
  const lines = long.log.split('\n').filter(Boolean);
  assert.ok(lines.some((l) => / stdout P /.test(l)), `expected partial lines: ${lines.map((l) => l.slice(0, 50)).join('\n')}`);
  assert.equal(logMessages(long.log).join(''), 'a'.repeat(20000));

  const id = await create(ctrConfig('rotate', { command: ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo line-$i; sleep 0.05; done'] }));
  await d.rt.StartContainer({ container_id: id });
  const file = path.join(logDir, 'main', 'rotate.log');
  await waitFor(() => existsSync(file) && readFileSync(file, 'utf8').includes('line-3'), { what: 'first lines' });
  await fs.rename(file, `${file}.1`);
  await d.rt.ReopenContainerLog({ container_id: id });
  await waitFor(() => existsSync(file) && logMessages(readFileSync(file, 'utf8')).length >= 2, { what: 'lines in the reopened log' });
  const before = logMessages(readFileSync(`${file}.1`, 'utf8'));
  const after = logMessages(readFileSync(file, 'utf8'));
  const n = (s: string) => Number(s.split('-')[1]);
  assert.ok(n(after[0]) > n(before[before.length - 1]) - 1, 'the new file continues where the old one ended');
  await d.rt.StopContainer({ container_id: id, timeout: '0' });
  await expectCode(d.rt.ReopenContainerLog({ container_id: id }), GRPC.FAILED_PRECONDITION);
  await d.rt.RemoveContainer({ container_id: id });
});

test('memory limit: OOM kill gives OOMKilled; UpdateContainerResources changes the cgroup', async () => {
  const mib = (n: number) => String(n * 1024 * 1024);
  const oom = await runToExit('oom', ['sh', '-c', 'tail /dev/zero'], {}, {}, { memory_limit_in_bytes: mib(32) });
  assert.equal(oom.st.reason, 'OOMKilled');
  assert.equal(oom.st.exit_code, 137);
  assert.equal(oom.st.resources?.linux?.memory_limit_in_bytes, mib(32));

  const id = await create(ctrConfig('update', { command: ['sleep', '1000'] }, {}, { memory_limit_in_bytes: mib(64), cpu_shares: '512' }));
  await d.rt.StartContainer({ container_id: id });
  const cg = path.join('/sys/fs/cgroup/memory', CGROUP_PARENT, `corral-${id}`, 'memory.limit_in_bytes');
  assert.equal(readFileSync(cg, 'utf8').trim(), mib(64));
  await d.rt.UpdateContainerResources({ container_id: id, linux: { memory_limit_in_bytes: mib(96), cpu_shares: '256' } });
  assert.equal(readFileSync(cg, 'utf8').trim(), mib(96));
  const st = (await status(id)).status!;
  assert.equal(st.resources?.linux?.memory_limit_in_bytes, mib(96));
  assert.equal(st.resources?.linux?.cpu_shares, '256');
  await expectCode(d.rt.UpdateContainerResources({ container_id: id, linux: { memory_limit_in_bytes: '-5' } }), GRPC.INVALID_ARGUMENT);
  await d.rt.RemoveContainer({ container_id: id });
});

test('status, verbose info and list filters', async () => {
  const a = await create(ctrConfig('list-a', { command: ['sleep', '1000'], labels: { group: 'g1', ctr: 'list-a' } }));
  const b = await create(ctrConfig('list-b', { command: ['true'], labels: { group: 'g1', ctr: 'list-b' } }));
  await d.rt.StartContainer({ container_id: a });
  const v = await status(a, true);
  const info = JSON.parse(v.info.info);
  assert.ok(info.pid > 0);
  assert.equal(info.runtimeSpec.process.args[0], 'sleep');
  assert.equal(v.status!.image!.image, image);
  assert.match(v.status!.image_ref, /^sha256:/);
  assert.equal(v.status!.log_path, path.join(logDir, 'main', 'list-a.log'));
  assert.equal(v.status!.annotations['e2e/anno'], 'list-a');
  const ids = async (filter: object) => (await d.rt.ListContainers({ filter })).containers.map((c) => c.id).sort();
  assert.deepEqual(await ids({ label_selector: { group: 'g1' } }), [a, b].sort());
  assert.deepEqual(await ids({ label_selector: { group: 'g1' }, state: { state: 'CONTAINER_RUNNING' } }), [a]);
  assert.deepEqual(await ids({ label_selector: { group: 'g1' }, state: { state: 'CONTAINER_CREATED' } }), [b]);
  assert.deepEqual(await ids({ id: a.slice(0, 10) }), [a]);
  assert.ok((await ids({ pod_sandbox_id: podId })).includes(a));
  assert.deepEqual(await ids({ pod_sandbox_id: 'ffffffff' }), []);
  assert.equal((await status(a.slice(0, 12))).status!.id, a, 'unique prefix');
  for (const id of [a, b]) await d.rt.RemoveContainer({ container_id: id });
  await expectCode(status(a), GRPC.NOT_FOUND);
});

test('bad input: clear errors, nothing left behind', async () => {
  const before = (await d.rt.ListContainers({})).containers.length;
  await expectCode(create(ctrConfig('x'), 'a'.repeat(64)), GRPC.NOT_FOUND, /pod sandbox/);
  await expectCode(create({ ...ctrConfig('x'), image: { image: `${reg.host}/e2e/absent:1` } }), GRPC.NOT_FOUND, /never pulls/);
  await expectCode(create(ctrConfig('x', { mounts: [{ container_path: '/proc', host_path: '/tmp' }] })), GRPC.INVALID_ARGUMENT, /proc/);
  await expectCode(create(ctrConfig('x', { mounts: [{ container_path: '/data', host_path: '/nonexistent/corral' }] })), GRPC.INVALID_ARGUMENT, /does not exist/);
  await expectCode(create(ctrConfig('x', {}, {}, { memory_limit_in_bytes: '-1' })), GRPC.INVALID_ARGUMENT, /negative/);
  await expectCode(create(ctrConfig('x', {}, {}, { cpu_shares: '99999999999' })), GRPC.INVALID_ARGUMENT);
  await expectCode(create(ctrConfig('')), GRPC.INVALID_ARGUMENT);

  // Same name and attempt: the same config returns the same id, another config is ALREADY_EXISTS.
  const dup = await create(ctrConfig('dup', { command: ['true'] }));
  assert.equal(await create(ctrConfig('dup', { command: ['true'] })), dup);
  await expectCode(create(ctrConfig('dup', { command: ['false'] })), GRPC.ALREADY_EXISTS);
  await d.rt.RemoveContainer({ container_id: dup });
  const again = await create(ctrConfig('dup', { command: ['false'] }));
  assert.notEqual(again, dup, 'the name is free again after removal');
  await d.rt.RemoveContainer({ container_id: again });

  // A command that does not exist: the container exists, start fails clearly, status says why.
  const nf = await create(ctrConfig('notfound', { command: ['/no/such/binary'] }));
  await expectCode(d.rt.StartContainer({ container_id: nf }), GRPC.FAILED_PRECONDITION, /no\/such\/binary/);
  const st = (await status(nf)).status!;
  assert.equal(st.state, 'CONTAINER_EXITED');
  assert.equal(st.reason, 'ContainerCannotRun');
  assert.match(st.message, /no\/such\/binary/);
  await d.rt.RemoveContainer({ container_id: nf });

  assert.equal((await d.rt.ListContainers({})).containers.length, before);
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  const records = (await fs.readdir(path.join(d.root, 'containers'))).filter((n) => n.endsWith('.json'));
  assert.equal(records.length, before, 'no records of failed creates');
  assert.equal(mounts.split('\n').filter((l) => l.includes(path.join(d.runRoot, 'containers'))).length, before, 'no rootfs mounts of failed creates');
});

test('PID namespace shared with the pod: containers see each other; stop kills every process of the container', async () => {
  const shared = podConfig('shared', { linux: { cgroup_parent: CGROUP_PARENT, security_context: { namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD', target_id: '' } } } });
  const pod = (await d.rt.RunPodSandbox({ config: shared })).pod_sandbox_id;
  const pidNs = { namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD', target_id: '' } };
  const a = await create(ctrConfig('pa', { command: ['sh', '-c', 'sleep 1001 & sleep 1002'] }, pidNs), pod, shared);
  const b = await create(ctrConfig('pb', { command: ['sleep', '1003'] }, pidNs), pod, shared);
  for (const id of [a, b]) await d.rt.StartContainer({ container_id: id });
  const ps = async () => (await d.rt.ExecSync({ container_id: b, cmd: ['ps', '-o', 'args'], timeout: '10' })).stdout.toString();
  await waitFor(async () => (await ps()).includes('sleep 1001'), { what: 'the background sleep of pa' });
  const seen = await ps();
  assert.ok(seen.includes('sleep 1002') && seen.includes('sleep 1003'), seen);
  await d.rt.StopContainer({ container_id: a, timeout: '0' });
  const after = await ps();
  assert.ok(!after.includes('sleep 1001') && !after.includes('sleep 1002'), `every process of pa is gone: ${after}`);
  assert.ok(after.includes('sleep 1003'), 'pb keeps running');
  await d.rt.StopPodSandbox({ pod_sandbox_id: pod });
  await d.rt.RemovePodSandbox({ pod_sandbox_id: pod });
  await expectCode(status(a), GRPC.NOT_FOUND);
});

test('daemon restart: a running container keeps running, one that exited meanwhile reports its exit code', async () => {
  const keep = await create(ctrConfig('keep', { command: ['sh', '-c', 'echo started; sleep 1000'] }));
  const quit = await create(ctrConfig('quit', { command: ['sh', '-c', 'while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 5'] }));
  for (const id of [keep, quit]) await d.rt.StartContainer({ container_id: id });
  await waitState(quit, 'CONTAINER_RUNNING');
  const pid = JSON.parse((await status(keep, true)).info.info).pid as number;

  await d.stop('SIGKILL');
  // Let `quit` exit while the daemon is down (nsenter into its mount namespace to drop the trigger file).
  const quitPid = Number(readFileSync(path.join(d.runRoot, 'containers', quit, 'pidfile'), 'utf8').trim());
  await run('nsenter', ['-t', String(quitPid), '-m', 'touch', '/tmp/go']);
  const exitFile = path.join(d.runRoot, 'exits', quit);
  await waitFor(() => existsSync(exitFile), { what: 'exit file while the daemon is down' });
  const exitedAtMs = (await fs.stat(exitFile)).mtimeMs;
  await d.start();

  const k = (await status(keep)).status!;
  assert.equal(k.state, 'CONTAINER_RUNNING');
  assert.equal(JSON.parse((await status(keep, true)).info.info).pid, pid);
  const q = (await status(quit)).status!;
  assert.equal(q.state, 'CONTAINER_EXITED');
  assert.equal(q.exit_code, 5);
  assert.ok(Math.abs(Number(BigInt(q.finished_at) / 1_000_000n) - exitedAtMs) < 1000, 'finish time from the exit file');
  const r = await d.rt.ExecSync({ container_id: keep, cmd: ['echo', 'alive'], timeout: '10' });
  assert.equal(r.stdout.toString(), 'alive\n');

  // A graceful restart too; the log written before is intact and the exit watcher works afterwards.
  await d.stop('SIGTERM');
  await d.start();
  assert.equal((await status(keep)).status!.state, 'CONTAINER_RUNNING');
  assert.ok(logMessages(readFileSync(path.join(logDir, 'main', 'keep.log'), 'utf8')).includes('started'));
  await d.rt.StopContainer({ container_id: keep, timeout: '0' });
  assert.equal((await status(keep)).status!.exit_code, 137);
  for (const id of [keep, quit]) await d.rt.RemoveContainer({ container_id: id });
});

test('pod stop and remove stop and remove its containers; no mounts, conmon or cgroups left', async () => {
  const pod = (await d.rt.RunPodSandbox({ config: podConfig('hooks') })).pod_sandbox_id;
  const ids: string[] = [];
  for (const n of ['h1', 'h2']) {
    const id = await create(ctrConfig(n, { command: ['sleep', '1000'] }), pod, podConfig('hooks'));
    await d.rt.StartContainer({ container_id: id });
    ids.push(id);
  }
  await d.rt.StopPodSandbox({ pod_sandbox_id: pod });
  for (const id of ids) assert.equal((await status(id)).status!.state, 'CONTAINER_EXITED');
  await expectCode(create(ctrConfig('late'), pod, podConfig('hooks')), GRPC.FAILED_PRECONDITION, /not ready/);
  await d.rt.RemovePodSandbox({ pod_sandbox_id: pod });
  for (const id of ids) {
    await expectCode(status(id), GRPC.NOT_FOUND);
    assert.deepEqual(await existingCgroupDirs(`${CGROUP_PARENT}/corral-${id}`), [], 'cgroup removed');
    assert.equal(existsSync(path.join(d.runRoot, 'containers', id)), false);
    assert.equal(existsSync(path.join(d.root, 'containers', id)), false);
    assert.equal(existsSync(path.join(d.root, 'containers', `${id}.json`)), false);
  }
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8');
  for (const id of ids) assert.ok(!mounts.includes(id), 'rootfs unmounted');
  const ps = (await run('ps', ['-eo', 'args'])).stdout;
  for (const id of ids) assert.ok(!ps.split('\n').some((l) => l.includes('conmon') && l.includes(id)), 'no conmon left');
});
