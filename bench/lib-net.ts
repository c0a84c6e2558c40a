/**
 * The test networks both runtimes get in a benchmark run (the e2e harness's network shape), one bridge and
 * subnet per runtime so their IPAM pools never collide, and cleanup of what a peer runtime leaves on the host.
 */
import { promises as fs } from 'node:fs';
import { run } from '../src/sys/exec';
import { mountPoints, unmountAll } from '../src/sys/mount';
import type { TestNetwork } from '../e2e/harness/network';

// One conflist shape, bridge/IPAM removal and cgroup-tree removal for tests and benchmarks alike.
export { conflist, removeCgroupTree, removeNetwork } from '../e2e/harness/network';

export type BenchNetwork = TestNetwork;

/** /22 subnets: 1022 addresses per runtime, room for 200 live pods plus host-local's round-robin over a run. */
export const NETWORKS = {
  corral: { name: 'corral-bench-a', bridge: 'corral-bA0', subnet: '10.240.0.0/22' },
  containerd: { name: 'corral-bench-b', bridge: 'corral-bB0', subnet: '10.244.0.0/22' },
  floor: { name: 'corral-bench-f', bridge: 'corral-bF0', subnet: '10.248.0.0/22' },
} satisfies Record<string, BenchNetwork>;

/** Unmounts every mount point under `dir` (deepest first). */
export async function unmountUnder(dir: string): Promise<void> {
  const under = [...(await mountPoints())].filter((m) => m === dir || m.startsWith(dir + '/'));
  under.sort((a, b) => b.length - a.length);
  if (under.length) await unmountAll(under).catch(async () => {
    for (const m of under) await run('umount', ['-l', m], { allowFailure: true, timeoutMs: 10_000 });
  });
}

/** Entries of /run/netns (containerd pins pod netns there as cni-<uuid>). */
export async function netnsEntries(): Promise<Set<string>> {
  return new Set(await fs.readdir('/run/netns').catch(() => [] as string[]));
}

/** Unmounts and removes /run/netns entries that appeared since `before`. */
export async function removeNewNetns(before: Set<string>): Promise<string[]> {
  const left = [...(await netnsEntries())].filter((e) => !before.has(e));
  for (const e of left) {
    await run('umount', [`/run/netns/${e}`], { allowFailure: true, timeoutMs: 10_000 });
    await fs.rm(`/run/netns/${e}`, { force: true });
  }
  return left;
}
