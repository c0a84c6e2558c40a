/**
 * Host reboot, simulated: the daemon stops, every pod and container process dies, the run root (a tmpfs
 * on a real node) is unmounted and cleared. On start, pods come back NOTREADY and containers EXITED with a
 * reason, so kubelet recreates them; images and logs are kept; removal leaves nothing behind.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { startDaemon } from './harness/daemon';
import { startRegistry } from './harness/registry';
import { buildBusyboxImage, pushImage } from './harness/oci-image';
import { enableNetwork, removeNetwork } from './harness/network';
import { waitFor } from '../src/core/wait';
import { run } from '../src/sys/exec';
import { existingCgroupDirs, removeCgroup } from '../src/sys/cgroups';
import { mountPoints } from '../src/sys/mount';

const CGROUP_PARENT = '/corral-e2e-reboot';
const NETWORK = { name: 'corral-e2e-rbt', bridge: 'corral-rbt0', subnet: '10.245.0.0/24' };

function pidsUnder(cgroup: string): number[] {
  const root = path.join('/sys/fs/cgroup/pids', cgroup);
  const out: number[] = [];
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const l of readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n')) if (l.trim()) out.push(Number(l));
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(dir, e.name));
  };
  walk(root);
  return out;
}

test('after a reboot pods are NOTREADY, containers EXITED with a reason; images and logs kept', { timeout: 180_000 }, async () => {
  const reg = await startRegistry();
  await pushImage(reg, 'e2e/busybox', '1', buildBusyboxImage());
  const image = `${reg.host}/e2e/busybox:1`;
  const d = await startDaemon();
  const logDir = path.join(d.dir, 'logs');
  try {
    await enableNetwork(d, NETWORK);
    await d.img.PullImage({ image: { image } });
    const podCfg = { metadata: { name: 'rbt', namespace: 'e2e', uid: 'uid-rbt', attempt: 0 }, log_directory: logDir, linux: { cgroup_parent: CGROUP_PARENT } };
    const { pod_sandbox_id: podId } = await d.rt.RunPodSandbox({ config: podCfg });
    const { container_id: ctrId } = await d.rt.CreateContainer({
      pod_sandbox_id: podId,
      config: { metadata: { name: 'app', attempt: 0 }, image: { image }, command: ['sh', '-c', 'echo before-reboot; sleep 3600'], log_path: 'app.log' },
      sandbox_config: podCfg,
    });
    await d.rt.StartContainer({ container_id: ctrId });
    await waitFor(() => existsSync(path.join(logDir, 'app.log')) && readFileSync(path.join(logDir, 'app.log'), 'utf8').includes('before-reboot'), { what: 'log line' });

    // The "reboot": daemon down, every process of the node's pods gone, the run root wiped.
    await d.stop();
    const conmons = (await run('ps', ['-eo', 'pid,args'])).stdout.split('\n').filter((l) => l.includes('conmon') && l.includes(d.runRoot)).map((l) => Number(l.trim().split(/\s+/)[0]));
    for (const pid of [...conmons, ...pidsUnder(CGROUP_PARENT)]) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await waitFor(() => pidsUnder(CGROUP_PARENT).length === 0, { what: 'pod processes to die' });
    const mounts = [...(await mountPoints())].filter((m) => m.startsWith(d.runRoot)).sort((a, b) => b.length - a.length);
    for (const m of mounts) await run('umount', ['-l', m]);
    rmSync(d.runRoot, { recursive: true, force: true });

    await d.start();
    const pod = await d.rt.PodSandboxStatus({ pod_sandbox_id: podId });
    assert.equal(pod.status!.state, 'SANDBOX_NOTREADY');
    const ctr = await waitFor(async () => {
      const s = (await d.rt.ContainerStatus({ container_id: ctrId })).status!;
      return s.state === 'CONTAINER_EXITED' ? s : undefined;
    }, { what: 'container EXITED after reboot' });
    assert.ok(ctr.reason, `an exit reason is reported (got ${JSON.stringify(ctr.reason)}: ${ctr.message})`);
    assert.notEqual(ctr.exit_code, 0);
    assert.ok((await d.img.ListImages({})).images.some((i) => i.repo_tags.includes(image)), 'images kept');
    assert.match(readFileSync(path.join(logDir, 'app.log'), 'utf8'), /before-reboot/, 'logs kept');

    await d.rt.RemoveContainer({ container_id: ctrId });
    await d.rt.StopPodSandbox({ pod_sandbox_id: podId });
    await d.rt.RemovePodSandbox({ pod_sandbox_id: podId });
    const left = [...(await mountPoints())].filter((m) => m.startsWith(d.dir));
    assert.deepEqual(left, [], 'no mounts left');
    assert.equal(existsSync('/var/lib/cni/networks/corral-e2e-rbt') ? readdirSync('/var/lib/cni/networks/corral-e2e-rbt').filter((f) => /^\d/.test(f)).length : 0, 0, 'IP released');
  } finally {
    await d.cleanup();
    await reg.stop();
    await removeNetwork(NETWORK);
    await removeCgroup(CGROUP_PARENT);
    assert.deepEqual(await existingCgroupDirs(CGROUP_PARENT), []);
  }
});
