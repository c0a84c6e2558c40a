/**
 * The test network both runtimes get in a benchmark run: the same conflist shape as the e2e/sandbox tests
 * (bridge + host-local, portmap, loopback; test/sandbox/system-fixture testConflist), one bridge and subnet
 * per runtime so their IPAM pools never collide, and cleanup of what CNI leaves on the host.
 */
import { promises as fs } from 'node:fs';
import { run } from '../src/sys/exec';
import { mountPoints, unmountAll } from '../src/sys/mount';
import { removeCgroup, existingCgroupDirs } from '../src/sys/cgroups';

export interface BenchNetwork {
  name: string;
  bridge: string;
  subnet: string;
}

/** /22 subnets: 1022 addresses per runtime, room for 200 live pods plus host-local's round-robin over a run. */
export const NETWORKS = {
  corral: { name: 'corral-bench-a', bridge: 'corral-bA0', subnet: '10.240.0.0/22' },
  containerd: { name: 'corral-bench-b', bridge: 'corral-bB0', subnet: '10.244.0.0/22' },
  floor: { name: 'corral-bench-f', bridge: 'corral-bF0', subnet: '10.248.0.0/22' },
} satisfies Record<string, BenchNetwork>;

export function conflist(n: BenchNetwork): object {
  return {
    cniVersion: '1.0.0',
    name: n.name,
    plugins: [
      { type: 'bridge', bridge: n.bridge, isGateway: true, ipMasq: false, hairpinMode: true, ipam: { type: 'host-local', ranges: [[{ subnet: n.subnet }]], routes: [{ dst: '0.0.0.0/0' }] } },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      { type: 'loopback' },
    ],
  };
}

/** Deletes the bridge, host-local's IP reservations and libcni's cached results for the network. */
export async function removeNetwork(n: BenchNetwork): Promise<void> {
  await run('ip', ['link', 'del', n.bridge], { allowFailure: true, timeoutMs: 10_000 });
  await fs.rm(`/var/lib/cni/networks/${n.name}`, { recursive: true, force: true });
  const results = await fs.readdir('/var/lib/cni/results').catch(() => [] as string[]);
  for (const f of results) if (f.startsWith(`${n.name}-`)) await fs.rm(`/var/lib/cni/results/${f}`, { force: true });
}

/** Unmounts every mount point under `dir` (deepest first). */
export async function unmountUnder(dir: string): Promise<void> {
  const under = [...(await mountPoints())].filter((m) => m === dir || m.startsWith(dir + '/'));
  under.sort((a, b) => b.length - a.length);
  if (under.length) await unmountAll(under).catch(async () => {
    for (const m of under) await run('umount', ['-l', m], { allowFailure: true, timeoutMs: 10_000 });
  });
}

/** Removes a cgroup parent (all v1 hierarchies and v2), children first; true when nothing is left. */
export async function removeCgroupTree(parent: string): Promise<boolean> {
  const rmTree = async (dir: string): Promise<void> => {
    const kids = await fs.readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const k of kids) if (k.isDirectory()) await rmTree(`${dir}/${k.name}`);
    await fs.rmdir(dir).catch(() => undefined);
  };
  for (const d of await existingCgroupDirs(parent)) await rmTree(d);
  await removeCgroup(parent).catch(() => undefined);
  return (await existingCgroupDirs(parent)).length === 0;
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
