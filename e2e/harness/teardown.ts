import { removeCgroup } from '../../src/sys/cgroups';
import type { TestDaemon } from './daemon';
import { removeNetwork, type TestNetwork } from './network';
import type { TestRegistry } from './registry';

/**
 * The end of a test file that shares one daemon, registry and network: stops and removes every pod the
 * daemon still has, wipes its state, then stops the registry and removes the network and cgroup parent,
 * whatever failed before. `restartFirst`: restart the daemon with no fault armed (a failed crash test may
 * have left it dead or armed).
 */
export async function tearDown(o: { d?: TestDaemon; reg?: TestRegistry; network: Pick<TestNetwork, 'name' | 'bridge'>; cgroupParent: string; restartFirst?: boolean }): Promise<void> {
  const { d } = o;
  try {
    if (d) {
      if (o.restartFirst) {
        await d.stop();
        await d.start({ env: {} }).catch(() => undefined);
      }
      for (const p of (await d.rt.ListPodSandbox({}).catch(() => ({ items: [] as { id: string }[] }))).items) {
        await d.rt.StopPodSandbox({ pod_sandbox_id: p.id }).catch(() => undefined);
        await d.rt.RemovePodSandbox({ pod_sandbox_id: p.id }).catch(() => undefined);
      }
      await d.cleanup();
    }
  } finally {
    await o.reg?.stop();
    await removeNetwork(o.network);
    await removeCgroup(o.cgroupParent);
  }
}
