import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { defaults } from '../../src/config/load';
import { ContainerService, type ContainerRuntime } from '../../src/container/service';
import type { ContainerConfig, ContainerRecord } from '../../src/container/types';
import { isCorralError } from '../../src/core/errors';
import { nullLogger } from '../../src/log/logger';
import type { ExitListener, ExitStatus } from '../../src/runtime/exit-monitor';
import type { SandboxRecord } from '../../src/sandbox/types';
import { writeJsonAtomic } from '../../src/store/atomic';
import { waitFor } from '../../src/core/wait';
import { nowNs } from '../../src/core/ids';
import { fullHost } from './spec/fixture';

/** A runtime that holds container state in memory; exits are announced like the exit monitor does. */
class FakeRuntime implements ContainerRuntime {
  readonly states = new Map<string, string>();
  readonly exits = new Map<string, ExitStatus>();
  readonly listeners = new Set<ExitListener>();
  readonly killed: string[] = [];
  createHook?: (id: string) => Promise<void>;
  /** Signals the fake processes ignore. */
  ignore = new Set<string>();

  runtime(name: string) {
    return { name, path: '/bin/false', root: '/nonexistent' };
  }
  async create(r: { id: string }) {
    await this.createHook?.(r.id);
    this.states.set(r.id, 'created');
    return { pid: 4242 };
  }
  async start(id: string) {
    this.states.set(id, 'running');
  }
  async kill(id: string, _h: string, signal: string) {
    this.killed.push(`${id.slice(0, 4)}:${signal}`);
    if (!this.states.has(id)) throw Object.assign(new Error('gone'), {});
    if (this.ignore.has(signal)) return;
    this.exit(id, signal === 'KILL' ? 137 : 143);
  }
  exit(id: string, exitCode: number) {
    this.states.set(id, 'stopped');
    const st = { exitCode, finishedAtNs: nowNs() };
    this.exits.set(id, st);
    for (const l of this.listeners) l(id, st);
  }
  async state(id: string) {
    const s = this.states.get(id);
    return s ? { id, pid: 4242, status: s, bundle: '' } : undefined;
  }
  async delete(id: string) {
    this.states.delete(id);
    this.exits.delete(id);
  }
  onExit(cb: ExitListener) {
    this.listeners.add(cb);
    return () => this.listeners.delete(cb);
  }
  async exitStatus(id: string) {
    return this.exits.get(id);
  }
  waitExit(id: string, timeoutMs: number): Promise<ExitStatus> {
    return new Promise((resolve, reject) => {
      const have = this.exits.get(id);
      if (have) return resolve(have);
      const t = setTimeout(() => {
        off();
        reject(new Error('timeout'));
      }, timeoutMs);
      const off = this.onExit((eid, st) => {
        if (eid !== id) return;
        clearTimeout(t);
        off();
        resolve(st);
      });
    });
  }
  async oomKilled() {
    return false;
  }
}

function fixture() {
  const dir = mkdtempSync(path.join(tmpdir(), 'corral-ctr-svc-'));
  const imageRoot = path.join(dir, 'layer');
  mkdirSync(path.join(imageRoot, 'etc'), { recursive: true });
  writeFileSync(path.join(imageRoot, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\n');
  const config = defaults();
  config.root = path.join(dir, 'root');
  config.run_root = path.join(dir, 'run');
  const leases = new Map<string, string>();
  const images = {
    resolveLocal: (ref: string) => (ref === 'busybox' ? { id: 'sha256:img', repoTags: ['busybox:latest'], repoDigests: [] } : undefined),
    imageConfig: async () => ({ config: { Cmd: ['sh'] } }),
    layerDirs: () => [imageRoot],
    acquire: async (id: string, holder: string) => {
      leases.set(holder, id);
      return [imageRoot];
    },
    release: async (holder: string) => void leases.delete(holder),
    leaseHolders: () => [...leases.keys()],
  };
  const sandbox = (id: string, state: SandboxRecord['state'] = 'ready'): SandboxRecord =>
    ({
      version: 1, id, handler: 'runc', configHash: '', state, createdAtNs: '1', cgroupsPath: '', pid: 99, ips: [], timings: {},
      spec: {
        metadata: { name: 'pod', namespace: 'ns', uid: 'u', attempt: 0 }, hostname: 'pod', logDirectory: path.join(dir, 'logs'), portMappings: [],
        labels: {}, annotations: {}, cgroupParent: '', sysctls: {}, namespaces: { network: 'pod', pid: 'pod', ipc: 'pod', targetId: '' },
        supplementalGroups: [], readonlyRootfs: false, privileged: false, seccomp: { type: 'unconfined' }, runtimeHandler: '',
      },
      paths: { dir, bundle: dir, netns: '/run/netns/x', ipcns: '/run/ipcns/x', utsns: '/run/utsns/x', shm: '/dev/shm', shmMounted: false, resolvConf: '', hosts: '', hostname: '', infraLog: '' },
    }) as SandboxRecord;
  const pods = new Map<string, SandboxRecord>([['pod1', sandbox('pod1')], ['pod2', sandbox('pod2', 'notready')]]);
  const hooks = { stop: [] as ((id: string) => Promise<void>)[], remove: [] as ((id: string) => Promise<void>)[] };
  const sandboxes = {
    get: (id: string) => {
      const p = pods.get(id);
      if (!p) throw Object.assign(new (require('../../src/core/errors').CorralError)('NotFound', `pod ${id} not found`));
      return p;
    },
    beforeStop: (h: (id: string) => Promise<void>) => void hooks.stop.push(h),
    beforeRemove: (h: (id: string) => Promise<void>) => void hooks.remove.push(h),
  };
  const mounts = new Set<string>();
  const rootfs = {
    mount: async (_l: readonly string[], p: { target: string }) => {
      mkdirSync(p.target, { recursive: true });
      mounts.add(p.target);
    },
    unmount: async (t: string) => void mounts.delete(t),
  };
  const driver = new FakeRuntime();
  const make = () => new ContainerService({ config, log: nullLogger, images, sandboxes, driver, host: fullHost(), rootfs, killWaitMs: 200 });
  return { dir, config, driver, leases, mounts, hooks, make, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const cfg = (name: string, over: Partial<ContainerConfig> = {}): ContainerConfig => ({
  metadata: { name, attempt: 0 }, image: 'busybox', imageAnnotations: {}, command: ['sleep', '9'], args: [], workingDir: '', envs: [], mounts: [],
  devices: [], labels: { n: name }, annotations: {}, logPath: `${name}.log`, stdin: false, stdinOnce: false, tty: false, security: {},
  pidMode: 'container', pidTargetId: '', stopSignal: '', ...over,
});

test('create: a retry joins a slow creation; List and Status do not wait for it', async () => {
  const fx = fixture();
  try {
    const svc = fx.make();
    await svc.init();
    const other = await svc.create('pod1', cfg('other'));
    let release: (() => void) | undefined;
    fx.driver.createHook = () => new Promise<void>((r) => (release = r));
    const first = svc.create('pod1', cfg('slow'));
    const retry = svc.create('pod1', cfg('slow'));
    await assert.rejects(svc.create('pod1', cfg('slow', { command: ['other'] })), (e) => isCorralError(e, 'AlreadyExists'));
    await waitFor(() => typeof release === 'function', { what: 'the create to reach the runtime' });
    // The slow create holds the pod lock: List and Status answer from memory meanwhile.
    assert.deepEqual(svc.list().map((r) => r.id), [other]);
    assert.equal((await svc.status(other, false)).record.state, 'created');
    release!();
    fx.driver.createHook = undefined;
    const [a, b] = await Promise.all([first, retry]);
    assert.equal(a, b);
    assert.equal(svc.list().length, 2);
    assert.ok(fx.leases.has(`container:${a}`));
    await svc.close();
  } finally {
    fx.cleanup();
  }
});

test('create: validation and pod checks fail early; a runtime failure rolls everything back', async () => {
  const fx = fixture();
  try {
    const svc = fx.make();
    await svc.init();
    await assert.rejects(svc.create('nope', cfg('a')), (e) => isCorralError(e, 'NotFound'));
    await assert.rejects(svc.create('pod2', cfg('a')), (e) => isCorralError(e, 'FailedPrecondition'));
    await assert.rejects(svc.create('pod1', cfg('a', { image: 'absent' })), (e) => isCorralError(e, 'NotFound') && /never pulls/.test(e.message));
    await assert.rejects(svc.create('pod1', cfg('bad name!')), (e) => isCorralError(e, 'InvalidArgument'));
    await assert.rejects(svc.create('pod1', cfg('a', { logPath: '../x' })), (e) => isCorralError(e, 'InvalidArgument'));

    fx.driver.createHook = async () => {
      throw new Error('runc create failed: cgroup trouble');
    };
    await assert.rejects(svc.create('pod1', cfg('a')), /runtime create: .*cgroup trouble/);
    assert.equal(fx.mounts.size, 0, 'rootfs unmounted');
    assert.equal(fx.leases.size, 0, 'lease released');
    assert.deepEqual(svc.list(), []);
    const leftovers = (await import('node:fs')).readdirSync(path.join(fx.config.root, 'containers'));
    assert.deepEqual(leftovers, [], 'no record, no dirs');

    // A command that cannot run: the container exists, EXITED with the reason; start explains.
    fx.driver.createHook = async () => {
      throw new Error('container create failed: runc create failed: unable to start container process: exec: "nope": executable file not found in $PATH');
    };
    const id = await svc.create('pod1', cfg('a'));
    const r = svc.get(id);
    assert.deepEqual([r.state, r.reason], ['exited', 'ContainerCannotRun']);
    assert.equal(r.message, 'exec: "nope": executable file not found in $PATH');
    await assert.rejects(svc.start(id), (e) => isCorralError(e, 'FailedPrecondition') && /nope/.test(e.message));
    await svc.close();
  } finally {
    fx.cleanup();
  }
});

test('stop: signal, SIGKILL after the timeout, cgroup kill after that; idempotent; exits seen by the watcher', async () => {
  const fx = fixture();
  try {
    const svc = fx.make();
    await svc.init();
    const id = await svc.create('pod1', cfg('a'));
    await svc.start(id);
    assert.equal(svc.get(id).state, 'running');
    fx.driver.ignore.add('SIGTERM');
    await svc.stop(id, 1);
    assert.deepEqual(fx.driver.killed, [`${id.slice(0, 4)}:SIGTERM`, `${id.slice(0, 4)}:KILL`]);
    assert.deepEqual([svc.get(id).state, svc.get(id).exitCode, svc.get(id).reason], ['exited', 137, 'Error']);
    await svc.stop(id, 1);
    assert.equal(fx.driver.killed.length, 2, 'stopping an exited container does nothing');
    await svc.stop('unknown', 0);

    const b = await svc.create('pod1', cfg('b'));
    await svc.start(b);
    fx.driver.exit(b, 0);
    await new Promise((r) => setImmediate(r));
    assert.deepEqual([svc.get(b).state, svc.get(b).reason, svc.get(b).finishedAtNs], ['exited', 'Completed', fx.driver.exits.get(b)!.finishedAtNs.toString()]);

    // A process that survives SIGKILL and the cgroup kill: a clear error, and the container stays RUNNING.
    const c = await svc.create('pod1', cfg('c'));
    await svc.start(c);
    fx.driver.ignore.add('KILL');
    await assert.rejects(svc.stop(c, 0), /did not stop/);
    assert.equal(svc.get(c).state, 'running');
    await svc.close();
  } finally {
    fx.cleanup();
  }
});

test('pod hooks stop and remove the pod containers; remove frees the name and lease', async () => {
  const fx = fixture();
  try {
    const svc = fx.make();
    await svc.init();
    const a = await svc.create('pod1', cfg('a'));
    const b = await svc.create('pod1', cfg('b'));
    await svc.start(a);
    await fx.hooks.stop[0]('pod1');
    assert.deepEqual([svc.get(a).state, svc.get(b).state], ['exited', 'exited']);
    await fx.hooks.remove[0]('pod1');
    assert.deepEqual(svc.list(), []);
    assert.equal(fx.leases.size, 0);
    assert.equal(fx.mounts.size, 0);
    assert.equal(existsSync(path.join(fx.config.root, 'containers', `${a}.json`)), false);
    await svc.remove(a);
    const again = await svc.create('pod1', cfg('a', { command: ['other'] }));
    assert.notEqual(again, a);
    await svc.close();
  } finally {
    fx.cleanup();
  }
});

test('recover: exits while down get their code, running ones stay, half-creations are undone, stale leases released', async () => {
  const fx = fixture();
  try {
    const svc = fx.make();
    await svc.init();
    const run = await svc.create('pod1', cfg('run'));
    const gone = await svc.create('pod1', cfg('gone'));
    const lost = await svc.create('pod1', cfg('lost'));
    for (const id of [run, gone, lost]) await svc.start(id);
    await svc.close();
    // While "down": gone exits (exit file), lost vanishes without a trace, a creation was interrupted.
    fx.driver.listeners.clear();
    fx.driver.exit(gone, 3);
    fx.driver.states.delete(lost);
    const hid = 'h'.repeat(64);
    const hp = (p: string) => p.split(run).join(hid);
    const rp = svc.get(run).paths;
    const half: ContainerRecord = {
      ...svc.get(run), id: hid, state: 'creating', config: { ...svc.get(run).config, metadata: { name: 'half', attempt: 0 } },
      paths: { dir: hp(rp.dir), upper: hp(rp.upper), work: hp(rp.work), volumes: hp(rp.volumes), bundle: hp(rp.bundle), rootfs: hp(rp.rootfs) },
    };
    await writeJsonAtomic(path.join(fx.config.root, 'containers', `${half.id}.json`), half);
    fx.leases.set(`container:${half.id}`, 'sha256:img');
    fx.leases.set('container:stale', 'sha256:img');
    const orphan = 'e'.repeat(64);
    mkdirSync(path.join(fx.config.run_root, 'containers', orphan, 'rootfs'), { recursive: true });
    mkdirSync(path.join(fx.config.root, 'containers', orphan, 'upper'), { recursive: true });
    fx.mounts.add(path.join(fx.config.run_root, 'containers', orphan, 'rootfs'));
    fx.leases.set('someone-else', 'sha256:img');

    const svc2 = fx.make();
    await svc2.init();
    assert.equal(svc2.get(run).state, 'running');
    assert.deepEqual([svc2.get(gone).state, svc2.get(gone).exitCode, svc2.get(gone).finishedAtNs], ['exited', 3, fx.driver.exits.get(gone)!.finishedAtNs.toString()]);
    assert.deepEqual([svc2.get(lost).state, svc2.get(lost).exitCode], ['exited', 255]);
    assert.match(svc2.get(lost).message, /while corral was down/);
    assert.throws(() => svc2.get(half.id), (e) => isCorralError(e, 'NotFound'));
    assert.equal(existsSync(path.join(fx.config.root, 'containers', `${half.id}.json`)), false);
    assert.equal(existsSync(path.join(fx.config.run_root, 'containers', orphan)), false, 'orphan bundle removed');
    assert.equal(existsSync(path.join(fx.config.root, 'containers', orphan)), false, 'orphan upper removed');
    assert.equal(fx.mounts.has(path.join(fx.config.run_root, 'containers', orphan, 'rootfs')), false, 'orphan unmounted');
    assert.ok(existsSync(path.join(fx.config.run_root, 'containers', run, 'config.json')), 'live containers keep their bundles');
    assert.deepEqual([...fx.leases.keys()].sort(), [`container:${gone}`, `container:${lost}`, `container:${run}`, 'someone-else'].sort());
    // Names survive the restart.
    assert.equal(await svc2.create('pod1', cfg('run')), run);
    await assert.rejects(svc2.create('pod1', cfg('run', { command: ['x'] })), (e) => isCorralError(e, 'AlreadyExists'));
    await svc2.close();
  } finally {
    fx.cleanup();
  }
});
