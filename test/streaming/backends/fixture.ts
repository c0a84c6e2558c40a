import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs, readdirSync, readFileSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildContainerSpec, detectHostContext, ociSpecJson } from '../../../src/container/spec';
import { newId } from '../../../src/core/ids';
import { nullLogger } from '../../../src/log/logger';
import { RuntimeDriver } from '../../../src/runtime/driver';
import { defaultHelperPath } from '../../../src/streaming/backends/helper';
import type { StreamContainer } from '../../../src/streaming/backends/types';
import { removeCgroup } from '../../../src/sys/cgroups';
import { run } from '../../../src/sys/exec';
import { pinNamespaces, unpinNamespaces } from '../../../src/sys/netns';

const CONMON = '/usr/bin/conmon';
const RUNC = '/usr/sbin/runc';
const BUSYBOX = '/bin/busybox';

export const CAN_RUN =
  process.getuid?.() === 0 && existsSync(CONMON) && existsSync(RUNC) && existsSync(BUSYBOX) && (existsSync(defaultHelperPath()) || existsSync('/usr/bin/cc'));
export const SKIP = !CAN_RUN && 'needs root, conmon, runc, busybox-static and cc (or a built corral-io)';

/** Builds corral-io where the backends look for it (dist*\/bin), as the Makefile's build target does. */
export function ensureHelper(): string {
  const out = defaultHelperPath();
  const src = path.resolve(__dirname, '../../../../src/native/corral-io.c');
  if (existsSync(out) && (!existsSync(src) || statSync(out).mtimeMs >= statSync(src).mtimeMs)) return out;
  execFileSync('mkdir', ['-p', path.dirname(out)]);
  execFileSync('cc', ['-O2', '-Wall', '-o', out, src], { stdio: 'inherit' });
  return out;
}

export interface ContainerOptions {
  args: string[];
  tty?: boolean;
  stdin?: boolean;
  stdinOnce?: boolean;
  /** Run in the pod's pinned network namespace (default true). */
  podNetwork?: boolean;
}

export interface TestContainer extends StreamContainer {
  pid: number;
  logPath: string;
}

/**
 * A "pod" for backend tests: a pinned network namespace with lo up, a busybox rootfs, and containers
 * created by the real RuntimeDriver (conmon + runc) from specs built by the real spec builder.
 */
export class TestPod {
  readonly containers = new Map<string, TestContainer>();
  private constructor(
    readonly dir: string,
    readonly driver: RuntimeDriver,
    readonly rootfs: string,
    readonly netns: string,
    readonly cgroupParent: string,
  ) {}

  static async create(): Promise<TestPod> {
    ensureHelper();
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'corral-stream-be-'));
    const driver = new RuntimeDriver({
      conmon: CONMON,
      handlers: () => ({ runc: { path: RUNC, root: '', type: 'oci' } }),
      runRoot: path.join(dir, 'run'),
      cgroupManager: () => 'cgroupfs',
      log: nullLogger,
    });
    await driver.init();
    const rootfs = path.join(dir, 'rootfs');
    await makeRootfs(rootfs);
    const netns = path.join(dir, 'netns');
    await pinNamespaces({ net: netns });
    await run('nsenter', [`--net=${netns}`, 'ip', 'link', 'set', 'lo', 'up'], { timeoutMs: 10_000 });
    return new TestPod(dir, driver, rootfs, netns, `/corral-test-stream-${randomBytes(4).toString('hex')}`);
  }

  async startContainer(o: ContainerOptions): Promise<TestContainer> {
    const id = newId();
    const bundle = path.join(this.dir, 'b', id);
    await fs.mkdir(bundle, { recursive: true });
    const host = detectHostContext({ cgroupManager: 'cgroupfs', restrictOomScoreAdj: 'auto' });
    const { spec } = buildContainerSpec(
      {
        id,
        name: `c-${id.slice(0, 6)}`,
        image: { Env: ['PATH=/bin'], Cmd: o.args },
        imageRoot: this.rootfs,
        rootfsPath: this.rootfs,
        tty: o.tty,
        stdin: o.stdin,
        stdinOnce: o.stdinOnce,
        pod: {
          id: 'pod',
          hostname: 'stream-test',
          namespaces: { pidMode: 'container', network: o.podNetwork === false ? undefined : this.netns },
          cgroupParent: this.cgroupParent,
        },
      },
      host,
    );
    // The rootfs is shared by the test's containers: keep it read-only.
    spec.root.readonly = true;
    if (o.podNetwork === false) spec.linux.namespaces = spec.linux.namespaces.filter((n) => n.type !== 'network');
    await fs.writeFile(path.join(bundle, 'config.json'), ociSpecJson(spec));
    const logPath = path.join(bundle, 'ctr.log');
    const { pid } = await this.driver.create({
      id,
      handler: 'runc',
      bundle,
      logPath,
      persistDir: bundle,
      terminal: o.tty,
      stdin: o.stdin,
      stdinOnce: o.stdinOnce,
    });
    await this.driver.start(id, 'runc');
    const c: TestContainer = {
      id,
      pid,
      logPath,
      running: true,
      bundle,
      runtime: this.driver.runtime('runc'),
      attachSocket: path.join(this.driver.socketDir, id, 'attach'),
      ctlFifo: path.join(bundle, 'ctl'),
      tty: !!o.tty,
      stdin: !!o.stdin,
      stdinOnce: !!o.stdinOnce,
    };
    this.containers.set(id, c);
    return c;
  }

  lookup = (id: string): StreamContainer => {
    const c = this.containers.get(id);
    if (!c) throw new Error(`no container ${id}`);
    return c;
  };

  /** Whether the container's init is still alive (runc state). */
  async isRunning(id: string): Promise<boolean> {
    return (await this.driver.state(id, 'runc'))?.status === 'running';
  }

  async cleanup(): Promise<void> {
    for (const id of this.containers.keys()) {
      await this.driver.kill(id, 'runc', 'KILL', true).catch(() => undefined);
      await this.driver.waitExit(id, 10_000).catch(() => undefined);
      await this.driver.delete(id, 'runc', true).catch(() => undefined);
    }
    this.driver.close();
    await unpinNamespaces([this.netns]);
    await removeCgroup(this.cgroupParent).catch(() => undefined);
    await fs.rm(this.dir, { recursive: true, force: true });
  }
}

async function makeRootfs(root: string): Promise<void> {
  for (const d of ['bin', 'etc', 'proc', 'dev', 'sys', 'tmp', 'www']) await fs.mkdir(path.join(root, d), { recursive: true });
  await fs.copyFile(BUSYBOX, path.join(root, 'bin/busybox'));
  await run('chroot', [root, '/bin/busybox', '--install', '-s', '/bin'], { timeoutMs: 10_000 });
  await fs.writeFile(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  await fs.writeFile(path.join(root, 'etc/group'), 'root:x:0:\n');
  await fs.writeFile(path.join(root, 'www/index.html'), '<h1>hello from the pod</h1>\n');
}

/** Pids of live processes whose command line contains `marker` (zombies excluded). */
export function processesWith(marker: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8');
      if (!cmd.includes(marker)) continue;
      if (/^State:\s+Z/m.test(readFileSync(`/proc/${e}/status`, 'utf8'))) continue;
      out.push(Number(e));
    } catch {
      // gone meanwhile
    }
  }
  return out.filter((p) => p !== process.pid);
}

/** Our own corral-io children still alive. */
export function helperChildren(): number[] {
  return processesWith('corral-io').filter((p) => {
    try {
      return readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')[1] === String(process.pid);
    } catch {
      return false;
    }
  });
}
