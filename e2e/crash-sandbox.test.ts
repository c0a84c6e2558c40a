import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { startDaemon, type TestDaemon } from './harness/daemon';
import { enableNetwork, networkReady, removeNetwork } from './harness/network';
import { filesNaming } from './harness/leftovers';
import { waitFor } from '../src/core/wait';
import { run } from '../src/sys/exec';
import { existingCgroupDirs, removeCgroup } from '../src/sys/cgroups';

// Crash consistency of pod sandboxes: the daemon is killed (SIGKILL, via CORRAL_FAULT_POINT) between the
// side effects of RunPodSandbox / StopPodSandbox / RemovePodSandbox, restarted without the fault, and
// must converge: the pod is either fully there and usable or fully gone, and after RemovePodSandbox
// nothing of it is left on the machine. Also a simulated host reboot (run root wiped, processes gone).

const NETWORK = { name: 'corral-flt', bridge: 'corral-flt0', subnet: '10.239.0.0/24' };
const CGROUP_PARENT = '/corral-e2e-fault';
const IPAM_DIR = `/var/lib/cni/networks/${NETWORK.name}`;

const pod = (name: string, logDir: string) => ({
  metadata: { name, namespace: 'e2e-fault', uid: `uid-${name}`, attempt: 0 },
  hostname: name,
  log_directory: logDir,
  linux: { cgroup_parent: CGROUP_PARENT },
  labels: { app: name },
});

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => !!p && (p === dir || p.startsWith(dir + '/')));
}

/** Pids of processes in our test cgroup parent (any hierarchy), or whose argv names one of the ids. */
async function podProcesses(ids: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const pid of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const cg = await fs.readFile(`/proc/${pid}/cgroup`, 'utf8');
      const args = (await fs.readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0').join(' ');
      if (cg.includes(CGROUP_PARENT + '/') || ids.some((id) => args.includes(id))) out.push(`${pid}: ${args}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Everything a pod may leave behind; each list must be empty once the pod is gone. */
async function leftovers(d: TestDaemon, ids: string[]) {
  const ipam = existsSync(IPAM_DIR) ? (await fs.readdir(IPAM_DIR)).filter((n) => /^\d+\.\d+\.\d+\.\d+$/.test(n)) : [];
  const veths = (await run('ip', ['-o', 'link', 'show', 'master', NETWORK.bridge], { allowFailure: true })).stdout.trim();
  const cgroups: string[] = [];
  for (const id of ids) cgroups.push(...(await existingCgroupDirs(`${CGROUP_PARENT}/corral-${id}`)));
  const netns = existsSync(path.join(d.runRoot, 'netns')) ? await fs.readdir(path.join(d.runRoot, 'netns')) : [];
  return {
    mounts: mountsUnder(d.runRoot).concat(mountsUnder(d.root)),
    netns,
    veths: veths ? veths.split('\n') : [],
    ipam,
    processes: await podProcesses(ids),
    cgroups,
    files: [...(await filesNaming(d.runRoot, ids)), ...(await filesNaming(d.root, ids))],
  };
}

const NOTHING = { mounts: [], netns: [], veths: [], ipam: [], processes: [], cgroups: [], files: [] };

async function assertNothingLeft(d: TestDaemon, ids: string[], what: string): Promise<void> {
  // conmon exits shortly after its container is killed: give the last exits a moment.
  let last = await leftovers(d, ids);
  await waitFor(async () => {
    last = await leftovers(d, ids);
    return Object.values(last).every((l) => l.length === 0);
  }, { timeoutMs: 10_000, what }).catch(() => undefined);
  assert.deepEqual(last, NOTHING, `${what}: nothing of the pod is left`);
}

async function podIds(d: TestDaemon): Promise<string[]> {
  return (await d.rt.ListPodSandbox({})).items.map((p) => p.id);
}

const RUN_POINTS = [
  'sandbox.run.before-record',
  'sandbox.run.after-record',
  'sandbox.run.after-namespaces',
  'sandbox.run.after-cni-add',
  'sandbox.run.after-infra-create',
  'sandbox.run.after-infra-start',
  'sandbox.run.before-ready',
  'sandbox.run.after-ready',
];
const STOP_POINTS = ['sandbox.stop.after-infra-kill', 'sandbox.stop.after-cni-del'];
const REMOVE_POINTS = ['sandbox.remove.after-stop', 'sandbox.remove.after-files'];

async function cleanupHost(): Promise<void> {
  await removeNetwork(NETWORK);
  await removeCgroup(CGROUP_PARENT);
}

test('kill -9 at every step of RunPodSandbox, StopPodSandbox and RemovePodSandbox converges with no leaks', { timeout: 600_000 }, async (t) => {
  const d = await startDaemon();
  const logDir = path.join(d.dir, 'logs');
  try {
    await enableNetwork(d, NETWORK);

    /** Restarts the daemon armed to die at `point`. */
    const arm = async (point: string) => {
      await d.stop();
      await d.start({ env: { CORRAL_FAULT_POINT: point } });
      await networkReady(d);
    };
    /** Sandbox ids with a record, a run dir or a CNI result on disk (read while the daemon is dead). */
    const idsOnDisk = async () => {
      const names = new Set<string>();
      for (const dir of [path.join(d.root, 'sandboxes'), path.join(d.runRoot, 'sandboxes'), path.join(d.root, 'cni-results')]) {
        for (const n of await fs.readdir(dir).catch(() => [] as string[])) {
          const m = /^([0-9a-f]{64})(\.json)?$/.exec(n);
          if (m) names.add(m[1]);
        }
      }
      return [...names];
    };
    /** Runs `action` on the armed daemon, which dies; restarts it without the fault. */
    const crashAt = async (point: string, action: () => Promise<unknown>): Promise<{ log: string; crashed: string[] }> => {
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
    };

    for (const point of RUN_POINTS) {
      await t.test(point, async (st0) => {
        const name = point.split('.').pop()!;
        const cfg = pod(name, logDir);
        await arm(point);
        const { log, crashed } = await crashAt(point, () => d.rt.RunPodSandbox({ config: cfg }, { timeoutMs: 30_000 }));
        assert.equal(crashed.length, 1, 'the crashed creation left state on disk');
        for (const l of log.split('\n').filter((l) => /repaired/.test(l))) st0.diagnostic(l);
        const ids = await podIds(d);
        st0.diagnostic(ids.length === 0 ? 'converged: gone' : 'converged: ready');
        if (ids.length === 0) {
          // Fully gone, and the restart said what it undid.
          assert.ok(log.includes(crashed[0]) && /repaired/.test(log), `restart log names the repaired sandbox:\n${log}`);
          await assertNothingLeft(d, crashed, `${point}: undone at restart`);
        } else {
          assert.equal(ids.length, 1);
          const st = await d.rt.PodSandboxStatus({ pod_sandbox_id: ids[0] });
          assert.equal(st.status!.state, 'SANDBOX_READY', `${point}: a pod that survived is READY`);
          assert.match(st.status!.network!.ip, /^10\.239\.0\.\d+$/);
        }
        // kubelet retries: the same config gives a usable pod (the survivor, or a new one).
        const { pod_sandbox_id: id } = await d.rt.RunPodSandbox({ config: cfg });
        if (ids.length === 1) assert.equal(id, ids[0], 'the retry returns the pod that survived');
        const st = await d.rt.PodSandboxStatus({ pod_sandbox_id: id, verbose: true });
        assert.equal(st.status!.state, 'SANDBOX_READY');
        assert.match(st.status!.network!.ip, /^10\.239\.0\.\d+$/);
        const pid = JSON.parse(st.info.info).pid as number;
        assert.ok(pid > 0 && existsSync(`/proc/${pid}`), 'the infra process runs');
        await d.rt.StopPodSandbox({ pod_sandbox_id: id });
        await d.rt.RemovePodSandbox({ pod_sandbox_id: id });
        assert.deepEqual(await podIds(d), []);
        await assertNothingLeft(d, [...new Set([...crashed, id])], `${point}: after RemovePodSandbox`);
      });
    }

    for (const point of [...STOP_POINTS, ...REMOVE_POINTS]) {
      await t.test(point, async (st0) => {
        const name = point.split('.').slice(1).join('-');
        await arm(point);
        const { pod_sandbox_id: id } = await d.rt.RunPodSandbox({ config: pod(name, logDir) });
        const isRemove = point.startsWith('sandbox.remove');
        const { log } = await crashAt(point, async () => {
          await d.rt.StopPodSandbox({ pod_sandbox_id: id }, { timeoutMs: 30_000 });
          if (isRemove) await d.rt.RemovePodSandbox({ pod_sandbox_id: id }, { timeoutMs: 30_000 });
        });
        // Interrupted stop/remove: the pod is there, NOTREADY (its infra is gone), until kubelet finishes.
        for (const l of log.split('\n').filter((l) => /repaired/.test(l))) st0.diagnostic(l);
        const st = await d.rt.PodSandboxStatus({ pod_sandbox_id: id });
        assert.equal(st.status!.state, 'SANDBOX_NOTREADY', `${point}: NOTREADY after restart`);
        if (!isRemove) assert.ok(log.includes(id), `restart log names the pod it repaired:\n${log}`);
        await d.rt.StopPodSandbox({ pod_sandbox_id: id });
        await d.rt.RemovePodSandbox({ pod_sandbox_id: id });
        await d.rt.RemovePodSandbox({ pod_sandbox_id: id });
        assert.deepEqual(await podIds(d), []);
        await assertNothingLeft(d, [id], `${point}: after RemovePodSandbox`);
      });
    }
  } finally {
    await d.cleanup();
    await cleanupHost();
  }
  assert.deepEqual(await existingCgroupDirs(CGROUP_PARENT), [], 'no cgroup left');
});

test('host reboot: run root wiped and pod processes gone; the pod comes back NOTREADY and is removed cleanly', { timeout: 120_000 }, async (t) => {
  const d = await startDaemon();
  try {
    await enableNetwork(d, NETWORK);
    const { pod_sandbox_id: id } = await d.rt.RunPodSandbox({ config: pod('rebooted', path.join(d.dir, 'logs')) });
    const st = await d.rt.PodSandboxStatus({ pod_sandbox_id: id, verbose: true });
    const ip = st.status!.network!.ip;
    assert.ok(existsSync(path.join(IPAM_DIR, ip)), 'IPAM holds the pod address');
    const info = JSON.parse(st.info.info);

    // "Reboot": the daemon stops, every process of the pod dies, mounts and the tmpfs run root vanish.
    await d.stop();
    const conmons = (await podProcesses([id])).map((l) => Number(l.split(':')[0])).filter((p) => p !== info.pid);
    assert.ok(conmons.length > 0, 'the pod has a conmon');
    for (const pid of [info.pid as number, ...conmons]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    await waitFor(async () => (await podProcesses([id])).length === 0, { what: 'pod processes to die' });
    for (const m of mountsUnder(d.runRoot).sort((a, b) => b.length - a.length)) await run('umount', ['-l', m]);
    await fs.rm(d.runRoot, { recursive: true, force: true });

    const mark = d.logs().length;
    await d.start();
    await networkReady(d);
    const after = await d.rt.PodSandboxStatus({ pod_sandbox_id: id });
    assert.equal(after.status!.state, 'SANDBOX_NOTREADY', 'the pod comes back NOTREADY');
    const restartLog = d.logs().slice(mark);
    assert.ok(restartLog.includes(id), 'the restart log names the pod');
    for (const l of restartLog.split('\n').filter((l) => /repaired/.test(l))) t.diagnostic(l);
    // kubelet removes it: CNI DEL from the cached result releases the address though the netns is gone.
    await d.rt.StopPodSandbox({ pod_sandbox_id: id });
    await d.rt.RemovePodSandbox({ pod_sandbox_id: id });
    assert.equal(existsSync(path.join(IPAM_DIR, ip)), false, 'the IPAM allocation is released');
    await assertNothingLeft(d, [id], 'after reboot and RemovePodSandbox');
  } finally {
    await d.cleanup();
    await cleanupHost();
  }
  assert.deepEqual(await existingCgroupDirs(CGROUP_PARENT), [], 'no cgroup left');
});
