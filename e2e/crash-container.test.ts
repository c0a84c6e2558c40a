/**
 * Crash consistency of containers: the daemon is killed (SIGKILL, via CORRAL_FAULT_POINT) between the side
 * effects of CreateContainer / StartContainer / StopContainer / RemoveContainer, restarted without the fault,
 * and must converge: the container is either fully there and usable or fully gone, and once removed nothing
 * of it is left (mounts, upper/work dirs, bundle, exit file, conmon/runc processes, cgroup, image lease).
 * Also: a kill -9 of the daemon never kills running containers, and exits that happen while it is down
 * keep their exit codes. Own bridge corral-crc0 (10.242.0.0/24) and cgroup parent /corral-e2e-crash.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, promises as fs, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { startDaemon, type TestDaemon } from './harness/daemon';
import { startRegistry, type TestRegistry } from './harness/registry';
import { buildBusyboxImage, pushImage } from './harness/oci-image';
import { enableNetwork, networkReady } from './harness/network';
import { filesNaming } from './harness/leftovers';
import { tearDown } from './harness/teardown';
import { waitFor } from '../src/core/wait';
import { existingCgroupDirs } from '../src/sys/cgroups';

const NETWORK = { name: 'corral-crc', bridge: 'corral-crc0', subnet: '10.242.0.0/24' };
const CGROUP_PARENT = '/corral-e2e-crash';

let reg: TestRegistry;
let d: TestDaemon;
let image: string;
let podId: string;
let logDir: string;
let hostDir: string;

const NS = { network: 'POD', pid: 'CONTAINER', ipc: 'POD', target_id: '' };

function podConfig(): any {
  return {
    metadata: { name: 'crash', namespace: 'e2e-crash', uid: 'uid-crash', attempt: 0 },
    hostname: 'crash',
    log_directory: logDir,
    linux: { cgroup_parent: CGROUP_PARENT, security_context: { namespace_options: NS } },
  };
}

function ctrConfig(name: string, command: string[] = ['sleep', '3600'], over: Record<string, unknown> = {}): any {
  return {
    metadata: { name, attempt: 0 },
    image: { image },
    command,
    log_path: `${name}.log`,
    linux: { security_context: { namespace_options: NS } },
    ...over,
  };
}

function mountsNaming(ids: string[]): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p && (p.startsWith(d.runRoot + '/') || p.startsWith(d.root + '/')) && ids.some((id) => p.includes(id)));
}

/** Processes whose argv or cgroup names one of the ids (conmon, runc, the container's own processes). */
async function processesNaming(ids: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const pid of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cg = await fs.readFile(`/proc/${pid}/cgroup`, 'utf8');
      const args = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
      if (ids.some((id) => args.includes(id) || cg.includes(id))) out.push(`${pid}: ${args}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

function leases(): string[] {
  try {
    return Object.keys(JSON.parse(readFileSync(path.join(d.root, 'images', 'index.json'), 'utf8')).leases ?? {});
  } catch {
    return [];
  }
}

/** Everything a container may leave behind; each list must be empty once it is gone. */
async function leftovers(ids: string[]) {
  const cgroups: string[] = [];
  for (const id of ids) cgroups.push(...(await existingCgroupDirs(`${CGROUP_PARENT}/corral-${id}`)));
  return {
    mounts: mountsNaming(ids),
    files: [...(await filesNaming(d.runRoot, ids)), ...(await filesNaming(d.root, ids))],
    processes: await processesNaming(ids),
    cgroups,
    leases: leases().filter((h) => ids.some((id) => h.includes(id))),
  };
}

const NOTHING = { mounts: [], files: [], processes: [], cgroups: [], leases: [] };

async function assertNothingLeft(ids: string[], what: string): Promise<void> {
  // conmon exits shortly after its container is killed: give the last exits a moment.
  let last = await leftovers(ids);
  await waitFor(async () => {
    last = await leftovers(ids);
    return Object.values(last).every((l) => l.length === 0);
  }, { timeoutMs: 10_000, what }).catch(() => undefined);
  assert.deepEqual(last, NOTHING, `${what}: nothing of the container is left`);
  // No lease may name a container the daemon does not know.
  const known = new Set((await d.rt.ListContainers({})).containers.map((c) => c.id));
  assert.deepEqual(leases().filter((h) => h.startsWith('container:') && !known.has(h.slice('container:'.length))), [], 'no lease of a missing container');
}

/** Container ids with a record or a dir on disk (read while the daemon is dead). */
async function idsOnDisk(): Promise<string[]> {
  const ids = new Set<string>();
  for (const dir of [path.join(d.root, 'containers'), path.join(d.runRoot, 'containers')]) {
    for (const n of await fs.readdir(dir).catch(() => [] as string[])) {
      const m = /^([0-9a-f]{64})(\.json)?$/.exec(n);
      if (m) ids.add(m[1]);
    }
  }
  return [...ids];
}

/** Restarts the daemon armed to die at `point`. */
async function arm(point: string): Promise<void> {
  await d.stop();
  await d.start({ env: { CORRAL_FAULT_POINT: point } });
  await networkReady(d);
}

/** Runs `action` on the armed daemon, which must die at `point`; restarts it without the fault. */
async function crashAt(point: string, action: () => Promise<unknown>): Promise<{ log: string; crashed: string[] }> {
  const err = await action().then(() => undefined, (e: Error) => e);
  const exit = await d.exited();
  assert.equal(exit.signal, 'SIGKILL', `the daemon died at ${point} (rpc error: ${err?.message})`);
  assert.ok(err, 'the RPC failed');
  assert.ok(d.logs().includes(`fault point ${point}: exiting`), 'the fault point was hit');
  const crashed = await idsOnDisk();
  const mark = d.logs().length;
  await d.start({ env: {} });
  await networkReady(d);
  return { log: d.logs().slice(mark), crashed };
}

async function ctrIds(): Promise<string[]> {
  return (await d.rt.ListContainers({})).containers.map((c) => c.id);
}

async function state(id: string): Promise<string> {
  return (await d.rt.ContainerStatus({ container_id: id })).status!.state;
}

/** Starts the container and proves it usable: ExecSync answers from inside. */
async function assertUsable(id: string): Promise<void> {
  if ((await state(id)) === 'CONTAINER_CREATED') await d.rt.StartContainer({ container_id: id });
  assert.equal(await state(id), 'CONTAINER_RUNNING');
  const r = await d.rt.ExecSync({ container_id: id, cmd: ['sh', '-c', 'echo alive'], timeout: '10' });
  assert.equal(r.exit_code, 0);
  assert.equal(r.stdout.toString().trim(), 'alive');
}

async function removeAndCheck(ids: string[], what: string): Promise<void> {
  for (const id of ids) {
    await d.rt.StopContainer({ container_id: id, timeout: '0' });
    await d.rt.RemoveContainer({ container_id: id });
    await d.rt.RemoveContainer({ container_id: id });
  }
  assert.deepEqual(await ctrIds(), []);
  await assertNothingLeft(ids, what);
}

before(async () => {
  reg = await startRegistry();
  await pushImage(reg, 'e2e/busybox', 'crash', buildBusyboxImage());
  image = `${reg.host}/e2e/busybox:crash`;
  d = await startDaemon();
  logDir = path.join(d.dir, 'logs');
  hostDir = path.join(d.dir, 'host');
  mkdirSync(hostDir);
  await enableNetwork(d, NETWORK);
  await d.img.PullImage({ image: { image } });
  podId = (await d.rt.RunPodSandbox({ config: podConfig() })).pod_sandbox_id;
});

// A failed test may leave the daemon dead or armed: restart it unarmed to remove what is left.
after(() => tearDown({ d, reg, network: NETWORK, cgroupParent: CGROUP_PARENT, restartFirst: true }));

const CREATE_POINTS = [
  'container.create.after-record',
  'container.create.after-rootfs',
  'container.create.after-bundle',
  'container.create.after-runtime-create',
];

test('kill -9 at every step of CreateContainer: undone at restart, nothing left, the retry works', { timeout: 300_000 }, async (t) => {
  for (const point of CREATE_POINTS) {
    await t.test(point, async () => {
      const cfg = ctrConfig(point.split('.').pop()!);
      await arm(point);
      const { log, crashed } = await crashAt(point, () => d.rt.CreateContainer({ pod_sandbox_id: podId, config: cfg, sandbox_config: podConfig() }, { timeoutMs: 30_000 }));
      assert.equal(crashed.length, 1, `the crashed creation left state on disk: ${crashed}`);
      // The final record was never written: the creation is undone, and the restart says so.
      assert.deepEqual(await ctrIds(), [], `${point}: the half-created container is gone`);
      assert.ok(log.includes(crashed[0]) && /repaired/.test(log), `restart log names the repaired container:\n${log}`);
      await assertNothingLeft(crashed, `${point}: undone at restart`);
      assert.equal((await d.rt.PodSandboxStatus({ pod_sandbox_id: podId })).status!.state, 'SANDBOX_READY', 'the pod survived');
      // kubelet retries with the same config: a new, usable container.
      const { container_id: id } = await d.rt.CreateContainer({ pod_sandbox_id: podId, config: cfg, sandbox_config: podConfig() });
      await assertUsable(id);
      await removeAndCheck([...new Set([...crashed, id])], `${point}: after RemoveContainer`);
    });
  }
});

test('kill -9 after runc start: the container is RUNNING after restart', { timeout: 120_000 }, async () => {
  const point = 'container.start.after-runtime-start';
  await arm(point);
  const { container_id: id } = await d.rt.CreateContainer({ pod_sandbox_id: podId, config: ctrConfig('start'), sandbox_config: podConfig() });
  const { log } = await crashAt(point, () => d.rt.StartContainer({ container_id: id }, { timeoutMs: 30_000 }));
  assert.deepEqual(await ctrIds(), [id]);
  assert.equal(await state(id), 'CONTAINER_RUNNING', 'runc started it: the restart records it as running');
  assert.ok(log.includes(id), `restart log names the container:\n${log}`);
  await assertUsable(id);
  // The leak checker sees every kind of state a live container has (so its empty answers mean something).
  const live = await leftovers([id]);
  for (const [kind, found] of Object.entries(live)) assert.ok(found.length > 0, `a running container has ${kind}: ${JSON.stringify(live)}`);
  await removeAndCheck([id], `${point}: after RemoveContainer`);
});

test('kill -9 after the stop signal: the container is EXITED with its exit code after restart', { timeout: 120_000 }, async () => {
  const point = 'container.stop.after-kill';
  await arm(point);
  const { container_id: id } = await d.rt.CreateContainer({ pod_sandbox_id: podId, config: ctrConfig('stop'), sandbox_config: podConfig() });
  await d.rt.StartContainer({ container_id: id });
  await crashAt(point, () => d.rt.StopContainer({ container_id: id, timeout: '0' }, { timeoutMs: 30_000 }));
  assert.deepEqual(await ctrIds(), [id]);
  const st = (await d.rt.ContainerStatus({ container_id: id })).status!;
  assert.equal(st.state, 'CONTAINER_EXITED');
  assert.equal(st.exit_code, 137, 'SIGKILLed: exit code from conmon\'s exit file');
  await removeAndCheck([id], `${point}: after RemoveContainer`);
});

const REMOVE_POINTS = ['container.remove.after-stop', 'container.remove.after-unmount', 'container.remove.after-files'];

test('kill -9 at every step of RemoveContainer: EXITED or gone after restart, the retry removes everything', { timeout: 300_000 }, async (t) => {
  for (const point of REMOVE_POINTS) {
    await t.test(point, async (st0) => {
      await arm(point);
      const { container_id: id } = await d.rt.CreateContainer({ pod_sandbox_id: podId, config: ctrConfig(point.split('.').pop()!), sandbox_config: podConfig() });
      await d.rt.StartContainer({ container_id: id });
      await crashAt(point, () => d.rt.RemoveContainer({ container_id: id }, { timeoutMs: 30_000 }));
      const ids = await ctrIds();
      st0.diagnostic(ids.length === 0 ? 'converged: gone' : 'converged: exited');
      if (ids.length > 0) {
        assert.deepEqual(ids, [id]);
        assert.equal(await state(id), 'CONTAINER_EXITED', 'an interrupted removal leaves a stopped container');
      }
      await d.rt.RemoveContainer({ container_id: id });
      assert.deepEqual(await ctrIds(), []);
      await assertNothingLeft([id], `${point}: after RemoveContainer`);
    });
  }
});

test('kill -9 of the daemon keeps running containers; exits while it is down keep their exit codes', { timeout: 120_000 }, async () => {
  await d.stop();
  await d.start({ env: {} });
  await networkReady(d);
  const mounts = [{ container_path: '/host', host_path: hostDir, readonly: false, selinux_relabel: false, propagation: 'PROPAGATION_PRIVATE' }];
  const { container_id: keep } = await d.rt.CreateContainer({ pod_sandbox_id: podId, config: ctrConfig('keep'), sandbox_config: podConfig() });
  const { container_id: quit } = await d.rt.CreateContainer({
    pod_sandbox_id: podId,
    config: ctrConfig('quit', ['sh', '-c', 'while [ ! -e /host/go ]; do sleep 0.05; done; exit 7'], { mounts }),
    sandbox_config: podConfig(),
  });
  await d.rt.StartContainer({ container_id: keep });
  await d.rt.StartContainer({ container_id: quit });
  const pidOf = async (id: string) => JSON.parse((await d.rt.ContainerStatus({ container_id: id, verbose: true })).info.info).pid as number;
  const keepPid = await pidOf(keep);
  const quitPid = await pidOf(quit);
  assert.ok(keepPid > 0 && quitPid > 0);

  await d.stop('SIGKILL');
  assert.ok(existsSync(`/proc/${keepPid}`), 'the running container survived the daemon');
  writeFileSync(path.join(hostDir, 'go'), '');
  await waitFor(() => !existsSync(`/proc/${quitPid}`), { timeoutMs: 10_000, what: 'the second container to exit while corral is down' });
  const mark = d.logs().length;
  await d.start({ env: {} });
  await networkReady(d);

  assert.ok(existsSync(`/proc/${keepPid}`), 'the restart did not kill the running container');
  const ks = (await d.rt.ContainerStatus({ container_id: keep })).status!;
  assert.equal(ks.state, 'CONTAINER_RUNNING');
  await assertUsable(keep);
  const qs = (await d.rt.ContainerStatus({ container_id: quit })).status!;
  assert.equal(qs.state, 'CONTAINER_EXITED', `restart log:\n${d.logs().slice(mark)}`);
  assert.equal(qs.exit_code, 7, 'the exit code of an exit while corral was down');
  assert.ok(BigInt(qs.finished_at) > BigInt(qs.started_at));
  await d.rt.StopContainer({ container_id: keep, timeout: '0' });
  assert.equal((await d.rt.ContainerStatus({ container_id: keep })).status!.exit_code, 137);
  await removeAndCheck([keep, quit], 'after removing both');
});
