/**
 * containerd 1.6 (Debian's package, with its CRI plugin) as the peer runtime of the benchmarks: installed
 * when missing, started on a temp root/state/socket with a generated config (runc v2 shim with cgroupfs,
 * CNI from /usr/lib/cni with the bench network, a local pause image as sandbox_image, the local test
 * registry reachable over plain HTTP), driven with the same CRI client as corral, and cleaned up after.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { run } from '../src/sys/exec';
import { waitFor } from '../src/core/wait';
import { criClients } from '../e2e/harness/cri-client';
import { conflist, netnsEntries, removeCgroupTree, removeNetwork, removeNewNetns, unmountUnder, type BenchNetwork } from './lib-net';
import { findProcesses } from './lib-proc';
import { mountPoints } from '../src/sys/mount';
import { removeAllPods, type LeftOvers, type Peer } from './lib-peer';

export type ContainerdPeer = Peer & { name: 'containerd' };

export interface ContainerdOptions {
  /** Registry host "127.0.0.1:PORT" to reach over plain HTTP. */
  registryHost: string;
  /** sandbox_image (a pause image in that registry). */
  sandboxImage: string;
  network: BenchNetwork;
  /** cgroup_parent the bench uses for this runtime's pods (removed at stop). */
  cgroupParent: string;
}

const BIN = '/usr/bin/containerd';

/** apt-get install containerd when it is missing, then stop whatever apt started (it would hold /run/containerd). */
export async function ensureContainerd(): Promise<void> {
  if (!existsSync(BIN) || !existsSync('/usr/bin/containerd-shim-runc-v2')) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const inst = async () => run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'containerd'], { env, timeoutMs: 600_000, allowFailure: true });
    let r = await inst();
    if (r.code !== 0) {
      await run('apt-get', ['update', '-qq'], { env, timeoutMs: 600_000, allowFailure: true });
      r = await inst();
    }
    if (r.code !== 0) throw new Error(`apt-get install containerd failed: ${r.stderr.trim().slice(-2000)}`);
  }
  // A containerd started by the package (no systemd here: by its postinst) would compete for /run/containerd/s.
  await run('pkill', ['-x', 'containerd'], { allowFailure: true, timeoutMs: 10_000 });
}

function configToml(o: ContainerdOptions, dir: string): string {
  const q = JSON.stringify;
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return [
    'version = 2',
    `root = ${q(path.join(dir, 'root'))}`,
    `state = ${q(path.join(dir, 'state'))}`,
    'disabled_plugins = []',
    'oom_score = 0',
    '[grpc]',
    `  address = ${q(path.join(dir, 'containerd.sock'))}`,
    '[ttrpc]',
    `  address = ${q(path.join(dir, 'containerd.sock.ttrpc'))}`,
    '[debug]',
    '  level = "warn"',
    '[metrics]',
    '  address = ""',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${q(path.join(dir, 'opt'))}`,
    `[${cri}]`,
    `  sandbox_image = ${q(o.sandboxImage)}`,
    // Root here lacks CAP_SYS_RESOURCE: negative oom_score_adj would fail every container.
    '  restrict_oom_score_adj = true',
    '  disable_apparmor = true',
    '  enable_selinux = false',
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    '  max_concurrent_downloads = 3',
    `[${cri}.containerd]`,
    '  snapshotter = "overlayfs"',
    '  default_runtime_name = "runc"',
    `[${cri}.containerd.runtimes.runc]`,
    '  runtime_type = "io.containerd.runc.v2"',
    `[${cri}.containerd.runtimes.runc.options]`,
    '  SystemdCgroup = false',
    '  BinaryName = "/usr/sbin/runc"',
    `  Root = ${q(path.join(dir, 'runc'))}`,
    `[${cri}.cni]`,
    '  bin_dir = "/usr/lib/cni"',
    `  conf_dir = ${q(path.join(dir, 'net.d'))}`,
    '  max_conf_num = 1',
    `[${cri}.registry]`,
    `  config_path = ${q(path.join(dir, 'certs.d'))}`,
    '',
  ].join('\n');
}

function hostsToml(registryHost: string): string {
  return [`server = "http://${registryHost}"`, `[host."http://${registryHost}"]`, '  capabilities = ["pull", "resolve"]', '  skip_verify = true', ''].join('\n');
}

/** Starts containerd and waits until its CRI answers Version and reports NetworkReady. */
export async function startContainerd(o: ContainerdOptions): Promise<ContainerdPeer> {
  await ensureContainerd();
  const version = (await run(BIN, ['--version'], { timeoutMs: 10_000 })).stdout.trim().split(/\s+/)[2] ?? '?';
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'corral-bench-ctrd-'));
  const netnsBefore = await netnsEntries();
  await fs.mkdir(path.join(dir, 'net.d'), { recursive: true });
  await fs.mkdir(path.join(dir, 'certs.d', o.registryHost), { recursive: true });
  await fs.writeFile(path.join(dir, 'net.d', '10-bench.conflist'), JSON.stringify(conflist(o.network)));
  await fs.writeFile(path.join(dir, 'certs.d', o.registryHost, 'hosts.toml'), hostsToml(o.registryHost));
  const configFile = path.join(dir, 'config.toml');
  await fs.writeFile(configFile, configToml(o, dir));
  const socket = path.join(dir, 'containerd.sock');

  let log = '';
  // --pdeathsig KILL: containerd dies with the bench even if the bench is killed.
  const child: ChildProcess = spawn('/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', BIN, '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (b: Buffer) => (log = (log + b.toString()).slice(-200_000));
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let dead = false;
  void exited.then(() => (dead = true));
  const { rt, img } = criClients(socket);
  const helperPids = () => findProcesses('containerd-shim-runc-v2', (argv) => argv.includes(socket) || argv.some((a) => a.includes(dir)));

  const stop = async (): Promise<LeftOvers> => {
    if (!dead) {
      await removeAllPods(rt);
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
    }
    rt.close();
    img.close();
    const shims = await helperPids();
    for (const p of shims) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    // runc containers a killed shim leaves behind.
    const runcRoot = path.join(dir, 'runc', 'k8s.io');
    const ids = await fs.readdir(runcRoot).catch(() => [] as string[]);
    for (const id of ids) await run('/usr/sbin/runc', [`--root=${runcRoot}`, 'delete', '--force', id], { allowFailure: true, timeoutMs: 20_000 });
    await unmountUnder(dir);
    const mountsLeft = [...(await mountPoints())].filter((m) => m.startsWith(dir));
    const netnsLeft = await removeNewNetns(netnsBefore);
    await removeNetwork(o.network);
    const bridgeLeft = (await run('ip', ['-o', 'link', 'show', o.network.bridge], { allowFailure: true })).code === 0;
    const cgroupClean = await removeCgroupTree(o.cgroupParent);
    if (mountsLeft.length === 0) await fs.rm(dir, { recursive: true, force: true });
    return { mounts: mountsLeft, shims: await helperPids(), netns: netnsLeft, bridge: bridgeLeft, cgroup: !cgroupClean };
  };

  try {
    await waitFor(
      async () => {
        if (dead) throw new Error('containerd exited during start-up');
        await rt.Version({}, { timeoutMs: 1000 });
        const st = await rt.Status({}, { timeoutMs: 2000 });
        return st.status?.conditions.find((c) => c.type === 'NetworkReady')?.status === true;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: 'containerd CRI to answer and report NetworkReady' },
    );
  } catch (e) {
    await stop().catch(() => undefined);
    throw new Error(`${(e as Error).message}\n--- containerd log ---\n${log.slice(-5000)}`);
  }
  return { name: 'containerd', version, dir, socket, pid: child.pid!, rt, img, runcRoot: async () => path.join(dir, 'runc', 'k8s.io'), helperPids, logs: () => log, stop };
}
