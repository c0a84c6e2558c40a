/**
 * Load, small size (issue 8 point 7; bench/load.ts runs it at full size): 10 pods × 2 containers created
 * concurrently, 200 ExecSync across them, then all removed. No errors, nothing leaked (mounts, netns,
 * processes, cgroups, IPAM, veths), the daemon's fd count back at its baseline and its RSS near it.
 * Own bridge corral-ld0 (10.243.0.0/24) and cgroup parent /corral-e2e-load.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import * as path from 'node:path';
import { startDaemon } from './harness/daemon';
import { startRegistry } from './harness/registry';
import { buildBusyboxImage, pushImage } from './harness/oci-image';
import { enableNetwork, removeCgroupTree, removeNetwork, type TestNetwork } from './harness/network';
import { formatLoad, leakCounts, leaks, resources, runLoad, settledLeaks, settledResources, type LoadTarget } from '../bench/load';

const NETWORK: TestNetwork = { name: 'corral-e2e-load', bridge: 'corral-ld0', subnet: '10.243.0.0/24' };
const CGROUP_PARENT = '/corral-e2e-load';
/** RSS the daemon may keep above its warmed-up baseline (V8 gives old-space pages back lazily). */
const RSS_SLACK_MIB = 30;

test('10 pods × 2 containers, 200 ExecSync, all removed: no errors, no leaks, fds and RSS back near the baseline', { timeout: 180_000 }, async (t) => {
  const reg = await startRegistry();
  const d = await startDaemon({ logLevel: 'info' });
  try {
    await pushImage(reg, 'e2e/busybox', 'load', buildBusyboxImage());
    const image = `${reg.host}/e2e/busybox:load`;
    await enableNetwork(d, NETWORK);
    await d.img.PullImage({ image: { image } });
    const logDir = path.join(d.dir, 'logs');
    mkdirSync(logDir);
    const target: LoadTarget = { rt: d.rt, img: d.img, pid: d.pid()!, dir: d.dir, runRoot: d.runRoot, network: NETWORK, cgroupParent: CGROUP_PARENT };

    // Warm-up: code loaded on first use and helper pools belong to the baseline, not to growth.
    const warm = await runLoad(target, { image, pods: 2, containersPerPod: 2, execs: 20, execConcurrency: 4, logDir, prefix: 'warm' });
    assert.deepEqual(warm.errors, []);
    assert.deepEqual(leakCounts(await settledLeaks(target)), { mounts: 0, netns: 0, processes: 0, cgroups: 0, ipam: 0, veths: 0 });
    const baseline = await resources(target.pid);

    let loaded: Record<string, number> = {};
    const r = await runLoad(target, {
      image, pods: 10, containersPerPod: 2, execs: 200, execConcurrency: 8, logDir,
      // The leak checker sees every kind of state live pods have, so its empty answers later mean something.
      whileLoaded: async () => void (loaded = leakCounts(await leaks(target))),
    });
    for (const line of formatLoad(r).split('\n')) t.diagnostic(line);
    t.diagnostic(`while loaded: ${JSON.stringify(loaded)}`);
    for (const [kind, count] of Object.entries(loaded)) assert.ok(count >= 10, `20 live containers in 10 pods show ${kind}: ${count}`);
    assert.deepEqual(r.errors, [], 'no call failed');
    assert.equal(r.phases.runPod.n, 10);
    assert.equal(r.phases.createStart.n, 20);
    assert.equal(r.phases.exec.n, 200);
    assert.equal(r.phases.remove.n, 10);

    const left = await settledLeaks(target);
    assert.deepEqual(left, { mounts: [], netns: [], processes: [], cgroups: [], ipam: [], veths: [] }, 'nothing leaked');
    const after = await settledResources(target.pid, baseline, 3);
    t.diagnostic(`daemon fds ${baseline.fds} → ${after.fds}, RSS ${baseline.rssMiB} → ${after.rssMiB} MiB`);
    assert.ok(after.fds <= baseline.fds + 3, `fd count back at the baseline: ${baseline.fds} → ${after.fds}`);
    assert.ok(after.rssMiB <= baseline.rssMiB + RSS_SLACK_MIB, `RSS near the baseline: ${baseline.rssMiB} → ${after.rssMiB} MiB`);
  } finally {
    await d.cleanup();
    await reg.stop();
    await removeNetwork(NETWORK);
    await removeCgroupTree(CGROUP_PARENT);
  }
});
