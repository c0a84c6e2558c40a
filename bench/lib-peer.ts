/**
 * A runtime under benchmark behind one interface (corral here; containerd in lib-containerd.ts): its CRI
 * clients, daemon pid, helper processes (conmon / shims) and a stop() that removes everything and
 * reports what could not be removed.
 */
import { writeFileSync, mkdirSync, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { startDaemon } from '../e2e/harness/daemon';
import type { ImageClient, RuntimeClient } from '../e2e/harness/cri-client';
import { waitFor } from '../src/core/wait';
import { mountPoints } from '../src/sys/mount';
import { run } from '../src/sys/exec';
import { conflist, removeCgroupTree, removeNetwork, type BenchNetwork } from './lib-net';
import { findProcesses } from './lib-proc';
import { pool } from './lib-stats';

export interface LeftOvers {
  mounts: string[];
  shims: number[];
  netns: string[];
  bridge: boolean;
  cgroup: boolean;
}

export interface Peer {
  name: string;
  version: string;
  dir: string;
  socket: string;
  pid: number;
  rt: RuntimeClient;
  img: ImageClient;
  /** runc --root where the runtime keeps this container (for `runc exec` floors). */
  runcRoot(containerId: string): Promise<string>;
  /** Per-pod/per-container helper processes: conmon for corral, containerd-shim-runc-v2 for containerd. */
  helperPids(): Promise<number[]>;
  logs(): string;
  stop(): Promise<LeftOvers>;
}

export function leftOversText(l: LeftOvers): string {
  const parts: string[] = [];
  if (l.mounts.length) parts.push(`${l.mounts.length} mounts (${l.mounts.slice(0, 3).join(', ')})`);
  if (l.shims.length) parts.push(`${l.shims.length} helper processes`);
  if (l.netns.length) parts.push(`${l.netns.length} netns`);
  if (l.bridge) parts.push('bridge');
  if (l.cgroup) parts.push('cgroup');
  return parts.length ? parts.join(', ') : 'nothing';
}

/** Removes every pod through CRI (StopPodSandbox + RemovePodSandbox, 4 at a time). */
export async function removeAllPods(rt: RuntimeClient): Promise<void> {
  const pods = await rt.ListPodSandbox({}, { timeoutMs: 30_000 }).then((r) => r.items).catch(() => []);
  await pool(pods, 4, async (p) => {
    await rt.StopPodSandbox({ pod_sandbox_id: p.id }, { timeoutMs: 60_000 }).catch(() => undefined);
    await rt.RemovePodSandbox({ pod_sandbox_id: p.id }, { timeoutMs: 60_000 }).catch(() => undefined);
  });
}

export interface CorralPeerOptions {
  network: BenchNetwork;
  cgroupParent: string;
  /** Extra TOML for the daemon. */
  config?: string;
  /** Directory for a V8 CPU profile of the daemon (written when it exits). */
  cpuProfileDir?: string;
}

/** corral's daemon with default settings (log level info), the bench network and nothing else. */
export async function startCorral(o: CorralPeerOptions): Promise<Peer> {
  const env: Record<string, string> = {};
  if (o.cpuProfileDir) {
    mkdirSync(o.cpuProfileDir, { recursive: true });
    // node 20 refuses --cpu-prof in NODE_OPTIONS: a preload takes the profile through the inspector instead.
    env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --require ${path.join(__dirname, 'lib-cpu-prof-preload.js')}`.trim();
    env.CORRAL_CPU_PROF_DIR = o.cpuProfileDir;
  }
  const d = await startDaemon({ logLevel: 'info', config: o.config, env });
  writeFileSync(path.join(d.dir, 'cni', '10-bench.conflist'), JSON.stringify(conflist(o.network)));
  await waitFor(async () => (await d.rt.Status({})).status!.conditions.find((c) => c.type === 'NetworkReady')?.status, {
    timeoutMs: 30_000,
    what: 'corral NetworkReady',
  });
  const version = (await d.rt.Version({})).runtime_version;
  // conmon daemonizes (reparented away from corral); it names corral's run root in its arguments.
  const helperPids = () => findProcesses('conmon', (argv) => argv.some((a) => a.includes(d.dir)));
  return {
    name: 'corral',
    version,
    dir: d.dir,
    socket: d.socket,
    pid: d.pid()!,
    rt: d.rt,
    img: d.img,
    // Read from the container's conmon command line (--runtime-arg --root=…), not guessed from the layout.
    runcRoot: async (id) => {
      const [pid] = await findProcesses('conmon', (argv) => argv.includes(id) && argv.some((a) => a.includes(d.dir)));
      const raw = pid ? await fs.readFile(`/proc/${pid}/cmdline`, 'utf8') : '';
      const root = raw.split('\0').find((a) => a.startsWith('--root='));
      if (!root) throw new Error(`no conmon with a --root= argument for container ${id}`);
      return root.slice('--root='.length);
    },
    helperPids,
    logs: d.logs,
    stop: async () => {
      await removeAllPods(d.rt);
      await d.cleanup();
      const left = await helperPids();
      for (const p of left) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      const mounts = [...(await mountPoints())].filter((m) => m.startsWith(d.dir));
      await removeNetwork(o.network);
      const bridge = (await run('ip', ['-o', 'link', 'show', o.network.bridge], { allowFailure: true })).code === 0;
      const cgroupClean = await removeCgroupTree(o.cgroupParent);
      return { mounts, shims: left, netns: [], bridge, cgroup: !cgroupClean };
    },
  };
}
