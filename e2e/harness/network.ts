/**
 * The CNI network a test (or benchmark) daemon gets: the conflist shape every system test uses
 * (test/sandbox/system-fixture testConflist: bridge + host-local, portmap, loopback), one bridge and
 * subnet per test file so runs never share IPAM pools, and removal of what CNI leaves on the host.
 */
import { writeFileSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { existingCgroupDirs, removeCgroup } from '../../src/sys/cgroups';
import { run } from '../../src/sys/exec';
import { waitFor } from '../../src/core/wait';
import { testConflist } from '../../test/sandbox/system-fixture';
import type { TestDaemon } from './daemon';

export interface TestNetwork {
  name: string;
  bridge: string;
  subnet: string;
}

export function conflist(n: TestNetwork): object {
  return testConflist(n.name, n.bridge, n.subnet);
}

/** Writes the network's conflist into the daemon's CNI dir and waits until Status reports NetworkReady. */
export async function enableNetwork(d: Pick<TestDaemon, 'dir' | 'rt'>, n: TestNetwork): Promise<void> {
  writeFileSync(path.join(d.dir, 'cni', `10-${n.name}.conflist`), JSON.stringify(conflist(n)));
  await networkReady(d);
}

/** Waits until the daemon's Status reports NetworkReady (after a start or restart). */
export async function networkReady(d: Pick<TestDaemon, 'rt'>): Promise<void> {
  await waitFor(async () => (await d.rt.Status({})).status!.conditions.find((c) => c.type === 'NetworkReady')?.status, { what: 'NetworkReady' });
}

/** Deletes the bridge, host-local's IP reservations and libcni's cached results for the network. */
export async function removeNetwork(n: Pick<TestNetwork, 'name' | 'bridge'>): Promise<void> {
  await run('ip', ['link', 'del', n.bridge], { allowFailure: true, timeoutMs: 10_000 });
  await fs.rm(`/var/lib/cni/networks/${n.name}`, { recursive: true, force: true });
  const results = await fs.readdir('/var/lib/cni/results').catch(() => [] as string[]);
  for (const f of results) if (f.startsWith(`${n.name}-`)) await fs.rm(`/var/lib/cni/results/${f}`, { force: true });
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
