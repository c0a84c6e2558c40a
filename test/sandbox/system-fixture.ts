/**
 * Real-system fixture for sandbox tests and the pods bench: a temp root/run_root, a CNI conf dir with a
 * test bridge network on a private subnet, and the sandbox area built from it. cleanup() removes
 * everything the area made (pods, mounts, the test bridge, IPAM state, cgroups, temp dirs).
 */
import { promises as fs, existsSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Registry } from 'prom-client';
import { defaults } from '../../src/config/load';
import type { CorralConfig } from '../../src/config/schema';
import { nullLogger } from '../../src/log/logger';
import { createSandboxArea } from '../../src/sandbox/index';
import type { CallContext, UnaryHandler } from '../../src/cri/types';
import { run } from '../../src/sys/exec';
import { mountPoints, unmountAll } from '../../src/sys/mount';
import { removeCgroup } from '../../src/sys/cgroups';

export const CAN_RUN_SYSTEM = process.getuid?.() === 0 && ['/usr/bin/conmon', '/usr/sbin/runc', '/usr/bin/catatonit', '/usr/lib/cni/bridge'].every((p) => existsSync(p));

export const TEST_CGROUP_PARENT = '/corral-e2e';

export function testConflist(name: string, bridge: string, subnet: string, extra: object[] = []): object {
  return {
    cniVersion: '1.0.0',
    name,
    plugins: [
      { type: 'bridge', bridge, isGateway: true, ipMasq: false, hairpinMode: true, ipam: { type: 'host-local', ranges: [[{ subnet }]], routes: [{ dst: '0.0.0.0/0' }] } },
      { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      { type: 'loopback' },
      ...extra,
    ],
  };
}

export interface SystemFixture {
  dir: string;
  config: CorralConfig;
  confDir: string;
  pluginDir: string;
  area: Awaited<ReturnType<typeof createSandboxArea>>;
  call<Res = any>(method: string, req: object): Promise<Res>;
  /** Builds a new area over the same root (a daemon restart). */
  restart(): Promise<void>;
  cleanup(): Promise<void>;
}

export async function systemFixture(opts: { network?: string; bridge?: string; subnet?: string; timeoutSeconds?: number } = {}): Promise<SystemFixture> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'corral-sb-'));
  const confDir = path.join(dir, 'net.d');
  const pluginDir = path.join(dir, 'plugins');
  await fs.mkdir(confDir, { recursive: true });
  await fs.mkdir(pluginDir, { recursive: true });
  const network = opts.network ?? 'corral-e2e';
  const bridge = opts.bridge ?? 'corral-e2e0';
  await fs.writeFile(path.join(confDir, '10-test.conflist'), JSON.stringify(testConflist(network, bridge, opts.subnet ?? '10.233.0.0/24')));
  const config = defaults();
  config.root = path.join(dir, 'root');
  config.run_root = path.join(dir, 'run');
  config.cni.conf_dirs = [confDir];
  config.cni.plugin_dirs = [pluginDir, '/usr/lib/cni'];
  config.cni.timeout_seconds = opts.timeoutSeconds ?? 20;
  const ctx = (): CallContext => ({ method: 'test', signal: new AbortController().signal, log: nullLogger });
  const fx: SystemFixture = {
    dir,
    config,
    confDir,
    pluginDir,
    area: await createSandboxArea({ config, log: nullLogger, metrics: new Registry() }),
    call(method, req) {
      const h = fx.area.handlers.unary?.[method] as UnaryHandler | undefined;
      if (!h) throw new Error(`no handler ${method}`);
      return h(req, ctx());
    },
    async restart() {
      await fx.area.close();
      fx.area = await createSandboxArea({ config, log: nullLogger, metrics: new Registry() });
    },
    async cleanup() {
      for (const s of fx.area.service.list()) await fx.area.service.remove(s.id).catch(() => undefined);
      await fx.area.close();
      await unmountAll([...(await mountPoints())].filter((m) => m.startsWith(dir)));
      await run('ip', ['link', 'del', bridge], { allowFailure: true, timeoutMs: 5000 });
      await fs.rm(path.join('/var/lib/cni/networks', network), { recursive: true, force: true });
      await removeCgroup(TEST_CGROUP_PARENT);
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
  return fx;
}

let seq = 0;
/** A PodSandboxConfig as kubelet would send it (decoded form: every field present). */
export function podConfig(over: Record<string, unknown> = {}, linuxOver: Record<string, unknown> = {}): any {
  const n = `pod-${process.pid}-${++seq}`;
  return {
    metadata: { name: n, namespace: 'e2e', uid: `uid-${n}`, attempt: 0 },
    hostname: n,
    log_directory: `/tmp/corral-e2e-logs/${n}`,
    dns_config: { servers: ['10.96.0.10'], searches: ['e2e.svc.cluster.local', 'svc.cluster.local'], options: ['ndots:5'] },
    port_mappings: [],
    labels: { app: 'e2e', pod: n },
    annotations: { 'e2e/anno': 'yes' },
    linux: {
      cgroup_parent: TEST_CGROUP_PARENT,
      security_context: { namespace_options: { network: 'POD', pid: 'POD', ipc: 'POD', target_id: '', userns_options: null }, selinux_options: null, run_as_user: null, readonly_rootfs: false, supplemental_groups: [], privileged: false, seccomp_profile_path: '', run_as_group: null, seccomp: { profile_type: 'RuntimeDefault', localhost_ref: '' }, apparmor: null, supplemental_groups_policy: 'Merge' },
      sysctls: {},
      overhead: null,
      resources: null,
      ...linuxOver,
    },
    windows: null,
    ...over,
  };
}
