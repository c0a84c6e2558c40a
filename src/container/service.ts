import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { CorralConfig } from '../config/schema';
import { CorralError, errorMessage, failedPrecondition, internal, invalidArgument, isCorralError, notFound } from '../core/errors';
import { faultPoint } from '../core/fault';
import { newId, nowNs } from '../core/ids';
import { findByIdPrefix } from '../core/id-prefix';
import { KeyedMutex } from '../core/keyed-mutex';
import { Rollback } from '../core/rollback';
import type { EventBus, RuntimeEventType } from '../events/bus';
import type { ImageConfig } from '../image/media-types';
import type { Logger } from '../log/logger';
import type { ExitStatus } from '../runtime/exit-monitor';
import type { RuntimeDriver } from '../runtime/driver';
import type { SandboxRecord } from '../sandbox/types';
import { writeFileAtomic } from '../store/atomic';
import { onceWarner } from '../sys/caps';
import { run } from '../sys/exec';
import { removeCgroup } from '../sys/cgroups';
import { cgroupOomKills, cgroupPids, killCgroup } from './cgroup';
import { execProcess, execSync } from './exec-sync';
import { filterContainers } from './filter';
import { reopenContainerLog } from './log-reopen';
import { NameRegistry } from './names';
import { canonicalJson, loadResources, storeResources } from './resources';
import { mountRootfs, unmountRootfs } from './rootfs';
import {
  buildContainerSpec, ociSpecJson, stringifyJson, toOciResources, validateResources,
  type ContainerSpecInput, type HostContext, type LinuxResourcesInput, type OciProcess, type OciSpec, type PodInput,
} from './spec';
import { cannotRun, checkStartable, cleanRuntimeMessage, exited, isCannotRunError, started, UNKNOWN_EXIT_CODE } from './state';
import { RecordStore } from './store';
import type { ContainerConfig, ContainerFilter, ContainerPaths, ContainerRecord, ExecSyncResult } from './types';

/** What the container service needs from the image service. */
export interface ContainerImages {
  resolveLocal(ref: string): { id: string; repoTags: string[]; repoDigests: string[] } | undefined;
  imageConfig(imageId: string): Promise<ImageConfig>;
  layerDirs(imageId: string): string[];
  acquire(imageId: string, holder: string): Promise<string[]>;
  release(holder: string): Promise<void>;
  leaseHolders(): string[];
}

/** What the container service needs from the sandbox service. */
export interface ContainerSandboxes {
  get(id: string): SandboxRecord;
  beforeStop(hook: (sandboxId: string) => Promise<void>): void;
  beforeRemove(hook: (sandboxId: string) => Promise<void>): void;
}

export type ContainerRuntime = Pick<
  RuntimeDriver,
  'runtime' | 'create' | 'start' | 'kill' | 'state' | 'delete' | 'onExit' | 'exitStatus' | 'waitExit' | 'oomKilled'
>;

/** Mounting is injected so unit tests can run without overlayfs. */
export interface RootfsOps {
  mount(lower: readonly string[], p: { dir: string; upper: string; work: string; target: string }): Promise<void>;
  unmount(target: string): Promise<void>;
}

export interface ContainerServiceDeps {
  config: CorralConfig;
  log: Logger;
  images: ContainerImages;
  sandboxes: ContainerSandboxes;
  driver: ContainerRuntime;
  host: HostContext;
  rootfs?: RootfsOps;
  /** Ms to wait for an exit after SIGKILL before escalating (tests shorten it). */
  killWaitMs?: number;
  /** Lifecycle events for GetContainerEvents. */
  events?: EventBus;
}

/** Verbose ContainerStatus details. */
export interface ContainerStatusInfo {
  record: ContainerRecord;
  info?: Record<string, unknown>;
}

const LEASE_PREFIX = 'container:';
const leaseHolder = (id: string) => `${LEASE_PREFIX}${id}`;
const nameKey = (r: { sandboxId: string; config: { metadata: { name: string; attempt: number } } }) =>
  NameRegistry.key(r.sandboxId, r.config.metadata.name, r.config.metadata.attempt);

/**
 * Workload containers: overlay rootfs over the image's layers, OCI bundle, conmon + runc, records on
 * disk, exits from conmon's exit files. List/Status read the in-memory view and never wait on a lock.
 */
export class ContainerService {
  private readonly view = new Map<string, ContainerRecord>();
  private readonly names = new NameRegistry();
  /** Serialises creates in one pod and the pod's stop/remove hooks. */
  private readonly podLock = new KeyedMutex();
  /** Serialises start/stop/remove/update of one container. */
  private readonly ctrLock = new KeyedMutex();
  /** Serialises record writes of one container (latest view state wins). */
  private readonly writeLock = new KeyedMutex();
  private readonly store: RecordStore;
  private readonly rootfs: RootfsOps;
  private readonly warnOnce: (key: string, msg: string, fields?: Record<string, unknown>) => void;
  /** Process specs by container id, for ExecSync (loaded from config.json after a restart). */
  private readonly processes = new Map<string, OciProcess>();
  private offExit?: () => void;
  private readonly background = new Set<Promise<void>>();

  constructor(private readonly d: ContainerServiceDeps) {
    this.store = new RecordStore(path.join(d.config.root, 'containers'), d.log);
    this.rootfs = d.rootfs ?? { mount: (l, p) => mountRootfs(l, p), unmount: (t) => unmountRootfs(t) };
    this.warnOnce = onceWarner((m, f) => d.log.warn(m, f));
  }

  /** Registers the exit listener and the pod hooks, then recovers records. */
  async init(): Promise<void> {
    await this.store.init();
    await fs.mkdir(path.join(this.d.config.run_root, 'containers'), { recursive: true });
    this.offExit = this.d.driver.onExit((id, st) => {
      if (this.view.has(id)) this.inBackground('record container exit', id, this.recordExit(id, st));
    });
    this.d.sandboxes.beforeStop((sb) => this.stopPodContainers(sb));
    this.d.sandboxes.beforeRemove((sb) => this.removePodContainers(sb));
    await this.recover();
  }

  /** Stops listening for exits and waits for record writes still in flight. */
  async close(): Promise<void> {
    this.offExit?.();
    await Promise.allSettled([...this.background]);
  }

  /** Runs a write without making the caller wait; close() waits for it. */
  private inBackground(what: string, id: string, p: Promise<void>): void {
    const tracked = p.catch((e) => this.d.log.error(`cannot ${what}`, { container: id, error: errorMessage(e) })).finally(() => this.background.delete(tracked));
    this.background.add(tracked);
  }

  private emit(type: RuntimeEventType, r: ContainerRecord): void {
    this.d.events?.publish({ type, containerId: r.id, podSandboxId: r.sandboxId, createdAtNs: nowNs() });
  }

  // ---- CreateContainer ------------------------------------------------------------------------------

  /**
   * Creates a container in a ready pod. A retry with the same pod, name, attempt and configuration joins the
   * running creation or returns its id; the same name with another configuration is AlreadyExists.
   */
  async create(sandboxId: string, cfg: ContainerConfig): Promise<string> {
    validateConfig(cfg);
    if (!sandboxId) throw invalidArgument('pod_sandbox_id is required');
    const sb = this.d.sandboxes.get(sandboxId);
    if (sb.state !== 'ready') throw failedPrecondition(`pod sandbox ${sb.id} is not ready (${sb.state}): cannot create containers in it`);
    const hash = createHash('sha256').update(canonicalJson({ sandbox: sb.id, cfg })).digest('hex');
    const key = NameRegistry.key(sb.id, cfg.metadata.name, cfg.metadata.attempt);
    const id = newId();
    return this.names.reserve(key, hash, id, () => this.podLock.run(sb.id, () => this.createLocked(id, sb.id, cfg, hash)));
  }

  private containerPaths(id: string): ContainerPaths {
    const dir = path.join(this.d.config.root, 'containers', id);
    const bundle = path.join(this.d.config.run_root, 'containers', id);
    return { dir, upper: path.join(dir, 'upper'), work: path.join(dir, 'work'), volumes: path.join(dir, 'volumes'), bundle, rootfs: path.join(bundle, 'rootfs') };
  }

  private async createLocked(id: string, sandboxId: string, cfg: ContainerConfig, configHash: string): Promise<string> {
    const sb = this.d.sandboxes.get(sandboxId);
    if (sb.state !== 'ready') throw failedPrecondition(`pod sandbox ${sb.id} is not ready (${sb.state}): cannot create containers in it`);
    const log = this.d.log.child({ container: id, name: cfg.metadata.name, sandbox: sb.id });
    const image = this.d.images.resolveLocal(cfg.image);
    if (!image) throw notFound(`image ${JSON.stringify(cfg.image)} not found locally: pull it first (corral never pulls implicitly)`);
    const imageConfig = await this.d.images.imageConfig(image.id);
    const p = this.containerPaths(id);

    // Pure spec generation first: bad input fails before anything exists to undo.
    const pod = this.podInput(sb, cfg);
    const input: ContainerSpecInput = {
      id,
      name: cfg.metadata.name,
      attempt: cfg.metadata.attempt,
      imageName: cfg.image,
      image: imageConfig.config ?? {},
      imageRoot: this.d.images.layerDirs(image.id),
      rootfsPath: p.rootfs,
      command: cfg.command,
      args: cfg.args,
      workingDir: cfg.workingDir,
      envs: cfg.envs,
      tty: cfg.tty,
      stdin: cfg.stdin,
      stdinOnce: cfg.stdinOnce,
      mounts: cfg.mounts,
      devices: cfg.devices,
      labels: cfg.labels,
      annotations: cfg.annotations,
      stopSignal: cfg.stopSignal,
      resources: cfg.resources,
      security: cfg.security,
      pod,
      volumesDir: p.volumes,
    };
    const built = buildContainerSpec(input, this.d.host);
    for (const w of built.warnings) this.warnOnce(w, 'container spec: ' + w, { container: id });

    const logPath = sb.spec.logDirectory && cfg.logPath ? path.join(sb.spec.logDirectory, cfg.logPath) : '';
    const { resources: _r, security: _s, envs: _e, ...stored } = cfg;
    const rec: ContainerRecord = {
      version: 1,
      id,
      sandboxId: sb.id,
      podName: sb.spec.metadata.name,
      podNamespace: sb.spec.metadata.namespace,
      config: stored,
      configHash,
      imageId: image.id,
      handler: sb.handler,
      logPath,
      paths: p,
      ownPidNamespace: cfg.pidMode === 'container',
      cgroupsPath: built.spec.linux.cgroupsPath ?? '',
      state: 'creating',
      createdAtNs: nowNs().toString(),
      startedAtNs: '0',
      finishedAtNs: '0',
      exitCode: 0,
      reason: '',
      message: '',
      pid: 0,
      user: built.user,
      stopSignal: built.stopSignal,
      resources: storeResources(cfg.resources),
    };

    const rb = new Rollback(log);
    let step = 'record';
    try {
      // Disk first: a crash mid-create leaves a 'creating' record that recovery undoes. The record, the image
      // lease and the rootfs+bundle are independent: every undo is pushed first, then they run side by side,
      // and all of them settle before any error unwinds.
      rb.push('remove record', () => this.store.remove(id));
      rb.push('release image lease', () => this.d.images.release(leaseHolder(id)));
      rb.push('remove container dirs', async () => {
        await fs.rm(p.bundle, { recursive: true, force: true });
        await fs.rm(p.dir, { recursive: true, force: true });
      });
      rb.push('unmount rootfs', () => this.rootfs.unmount(p.rootfs));
      const lower = input.imageRoot as string[];
      const steps: [string, Promise<unknown>][] = [
        ['record', this.store.save(rec).then(() => faultPoint('container.create.after-record'))],
        ['image lease', this.d.images.acquire(image.id, leaseHolder(id))],
        ['rootfs', (async () => {
          await this.rootfs.mount(lower, { dir: p.dir, upper: p.upper, work: p.work, target: p.rootfs });
          faultPoint('container.create.after-rootfs');
          for (const v of built.imageVolumes) await fs.mkdir(v.hostPath, { recursive: true });
        })()],
        // The bundle lives under run_root (volatile): replaced atomically, no fsync needed.
        ['bundle', writeFileReplace(path.join(p.bundle, 'config.json'), ociSpecJson(built.spec)).then(() => faultPoint('container.create.after-bundle'))],
      ];
      const settled = await Promise.allSettled(steps.map(([, pr]) => pr));
      const failed = settled.findIndex((r) => r.status === 'rejected');
      if (failed >= 0) {
        step = steps[failed][0];
        throw (settled[failed] as PromiseRejectedResult).reason;
      }

      step = 'runtime create';
      rb.push('delete from runtime', () => this.d.driver.delete(id, sb.handler, true));
      let final: ContainerRecord;
      try {
        const { pid } = await this.d.driver.create({
          id,
          handler: sb.handler,
          bundle: p.bundle,
          logPath: logPath || path.join(p.bundle, 'container.log'),
          persistDir: p.bundle,
          name: `${sb.spec.metadata.name}-${cfg.metadata.name}`,
          terminal: cfg.tty,
          stdin: cfg.stdin,
          stdinOnce: cfg.stdinOnce,
        });
        final = { ...rec, state: 'created', pid };
        faultPoint('container.create.after-runtime-create');
      } catch (e) {
        // A command that cannot run is the workload's fault, not the runtime's: the container exists,
        // reports EXITED with the reason, and StartContainer explains.
        if (!isCannotRunError(errorMessage(e))) throw e;
        await this.d.driver.delete(id, sb.handler, true).catch(() => undefined);
        final = cannotRun(rec, cleanRuntimeMessage(errorMessage(e)), nowNs());
        log.warn('container cannot run', { message: final.message });
      }
      step = 'record';
      await this.store.save(final);
      rb.commit();
      this.processes.set(id, built.spec.process);
      this.view.set(id, final);
      this.emit('CONTAINER_CREATED_EVENT', final);
      if (final.state === 'exited') this.emit('CONTAINER_STOPPED_EVENT', final);
      log.info('container created', { image: image.id, state: final.state });
      return id;
    } catch (e) {
      log.warn('CreateContainer failed; rolling back', { step, error: errorMessage(e) });
      await rb.unwind();
      throw isCorralError(e) ? new CorralError(e.code, `${step}: ${e.message}`, { cause: e }) : internal(`${step}: ${errorMessage(e)}`, e);
    }
  }

  private podInput(sb: SandboxRecord, cfg: ContainerConfig): PodInput {
    const s = sb.spec;
    const hostNet = s.namespaces.network === 'node';
    let pidMode = cfg.pidMode;
    let pidPath: string | undefined;
    if (pidMode === 'pod') {
      if (s.namespaces.pid === 'node') pidMode = 'node';
      else {
        if (!sb.pid) throw failedPrecondition(`pod sandbox ${sb.id} has no running infra process to share its PID namespace`);
        pidPath = `/proc/${sb.pid}/ns/pid`;
      }
    } else if (pidMode === 'target') {
      const t = this.lookup(cfg.pidTargetId);
      if (!t || t.state !== 'running' || !t.pid) throw notFound(`PID namespace target container ${JSON.stringify(cfg.pidTargetId)} is not running`);
      pidPath = `/proc/${t.pid}/ns/pid`;
    }
    return {
      id: sb.id,
      name: s.metadata.name,
      namespace: s.metadata.namespace,
      uid: s.metadata.uid,
      hostname: hostNet ? os.hostname() : s.hostname || s.metadata.name,
      hostnamePath: sb.paths.hostname,
      hostsPath: sb.paths.hosts,
      resolvConfPath: sb.paths.resolvConf,
      shmPath: sb.paths.shm,
      namespaces: { network: sb.paths.netns, ipc: sb.paths.ipcns, uts: sb.paths.utsns, pidMode, pidPath },
      cgroupParent: s.cgroupParent,
      sysctls: s.sysctls,
      privileged: s.privileged,
    };
  }

  // ---- StartContainer -------------------------------------------------------------------------------

  async start(id: string): Promise<void> {
    const found = this.mustGet(id);
    await this.ctrLock.run(found.id, async () => {
      const rec = this.mustGet(found.id);
      checkStartable(rec);
      const startedAt = nowNs(); // before runc start: a quick process may exit before start returns
      try {
        await this.d.driver.start(rec.id, rec.handler);
        faultPoint('container.start.after-runtime-start');
      } catch (e) {
        const msg = errorMessage(e);
        if (!isCannotRunError(msg)) throw e;
        await this.d.driver.delete(rec.id, rec.handler, true).catch(() => undefined);
        const next = cannotRun(this.mustGet(rec.id), cleanRuntimeMessage(msg), nowNs());
        this.view.set(rec.id, next);
        await this.persist(rec.id);
        throw failedPrecondition(`container ${rec.id} cannot run: ${next.message}`);
      }
      // The process may already have exited (the exit watcher got there first): keep that, add the start time.
      const cur = this.mustGet(rec.id);
      if (cur.state === 'exited') {
        const fin = BigInt(cur.finishedAtNs) < startedAt ? startedAt : BigInt(cur.finishedAtNs);
        this.view.set(rec.id, { ...cur, startedAtNs: startedAt.toString(), finishedAtNs: fin.toString() });
      } else {
        this.view.set(rec.id, started(cur, startedAt));
      }
      this.emit('CONTAINER_STARTED_EVENT', cur);
      // Not awaited: a crash before this write is repaired by recovery (runc says running, the record says created).
      this.inBackground('record container start', rec.id, this.persist(rec.id));
    });
  }

  // ---- StopContainer --------------------------------------------------------------------------------

  /** Stop signal, then SIGKILL after timeoutSec (0: at once). Idempotent; unknown ids succeed. */
  async stop(id: string, timeoutSec: number): Promise<void> {
    const found = this.lookup(id);
    if (!found) return;
    await this.ctrLock.run(found.id, () => this.stopLocked(found.id, timeoutSec));
  }

  private async stopLocked(id: string, timeoutSec: number): Promise<void> {
    const rec = this.view.get(id);
    if (!rec || rec.state === 'exited' || rec.state === 'creating') return;
    const log = this.d.log.child({ container: id });
    const all = !rec.ownPidNamespace;
    const killWait = this.d.killWaitMs ?? 10_000;
    let st: ExitStatus | undefined;
    try {
      if (timeoutSec > 0) st = await this.signalAndWait(rec, rec.stopSignal, timeoutSec * 1000, all);
      if (!st) st = await this.signalAndWait(rec, 'KILL', killWait, all);
      if (!st) {
        const n = await killCgroup(rec.cgroupsPath);
        log.warn('SIGKILL did not end the container; killed every process of its cgroup', { processes: n });
        st = await this.d.driver.waitExit(id, killWait).catch(() => undefined);
      }
    } catch (e) {
      if (!isCorralError(e, 'NotFound')) throw e;
      // The runtime no longer knows the container (lost across a reboot): it is not running.
    }
    if (all) await killCgroup(rec.cgroupsPath); // processes left in a shared PID namespace
    faultPoint('container.stop.after-kill');
    if (!st) st = await this.d.driver.exitStatus(id);
    if (!st) {
      const state = await this.d.driver.state(id, rec.handler).catch(() => undefined);
      if (state && state.status !== 'stopped') throw internal(`container ${id} did not stop (runtime state ${state.status})`);
      st = { exitCode: UNKNOWN_EXIT_CODE, finishedAtNs: nowNs() };
    }
    await this.recordExit(id, st);
  }

  /** Sends a signal and waits up to waitMs for the exit file. Undefined when the container did not exit. */
  private async signalAndWait(rec: ContainerRecord, signal: string, waitMs: number, all: boolean): Promise<ExitStatus | undefined> {
    const exitP = this.d.driver.waitExit(rec.id, waitMs);
    exitP.catch(() => undefined);
    await this.d.driver.kill(rec.id, rec.handler, signal, all);
    return exitP.catch(() => undefined);
  }

  /** Records the exit of a container (from the exit watcher, stop, or recovery). Idempotent. */
  private async recordExit(id: string, st: ExitStatus, message?: string): Promise<void> {
    const rec = this.view.get(id);
    if (!rec || rec.state === 'exited' || rec.state === 'creating') return;
    const oom = st.exitCode === 137 && (await this.wasOomKilled(rec));
    const cur = this.view.get(id);
    if (!cur || cur.state === 'exited') return;
    // Exit file times come from the coarse kernel clock: never report a finish before the start.
    const finishedAtNs = st.finishedAtNs < BigInt(cur.startedAtNs) ? BigInt(cur.startedAtNs) : st.finishedAtNs;
    this.view.set(id, exited(cur, { exitCode: st.exitCode, finishedAtNs, oomKilled: oom, message }));
    this.emit('CONTAINER_STOPPED_EVENT', cur);
    this.d.log.debug('container exited', { container: id, exitCode: st.exitCode, oomKilled: oom });
    await this.persist(id);
  }

  private async wasOomKilled(rec: ContainerRecord): Promise<boolean> {
    if (await this.d.driver.oomKilled(rec.paths.bundle)) return true;
    return (await cgroupOomKills(rec.cgroupsPath)) > 0;
  }

  // ---- RemoveContainer ------------------------------------------------------------------------------

  /** Force-stops, then removes the container and everything it owns. Unknown ids succeed. */
  async remove(id: string): Promise<void> {
    const found = this.lookup(id);
    if (!found) return;
    await this.ctrLock.run(found.id, () => this.removeLocked(found.id));
  }

  private async removeLocked(id: string): Promise<void> {
    const rec = this.view.get(id);
    if (!rec) return;
    if (rec.state === 'created' || rec.state === 'running') await this.stopLocked(id, 0);
    faultPoint('container.remove.after-stop');
    await this.d.driver.delete(id, rec.handler, true);
    // runc removes the cgroup only when it still knows the container (not after a reboot wiped its state).
    if (this.d.config.runtime.cgroup_manager === 'cgroupfs') await removeCgroup(rec.cgroupsPath).catch(() => undefined);
    await this.rootfs.unmount(rec.paths.rootfs);
    faultPoint('container.remove.after-unmount');
    await fs.rm(rec.paths.dir, { recursive: true, force: true });
    await fs.rm(rec.paths.bundle, { recursive: true, force: true });
    faultPoint('container.remove.after-files');
    this.view.delete(id);
    this.processes.delete(id);
    await this.writeLock.run(id, () => this.store.remove(id));
    await this.d.images.release(leaseHolder(id));
    this.names.release(nameKey(rec), id);
    this.emit('CONTAINER_DELETED_EVENT', rec);
    this.d.log.info('container removed', { container: id });
  }

  // ---- Pod hooks --------------------------------------------------------------------------------------

  private podContainers(sandboxId: string): ContainerRecord[] {
    return [...this.view.values()].filter((r) => r.sandboxId === sandboxId);
  }

  /** StopPodSandbox: kill every container of the pod (kubelet has already stopped them gracefully). */
  async stopPodContainers(sandboxId: string): Promise<void> {
    await this.podLock.run(sandboxId, async () => {
      await Promise.all(this.podContainers(sandboxId).map((r) => this.stop(r.id, 0)));
    });
  }

  /** RemovePodSandbox: remove every container of the pod. */
  async removePodContainers(sandboxId: string): Promise<void> {
    await this.podLock.run(sandboxId, async () => {
      await Promise.all(this.podContainers(sandboxId).map((r) => this.remove(r.id)));
    });
  }

  // ---- Status / List --------------------------------------------------------------------------------

  /** The record by id or unique prefix; NotFound otherwise. Never waits. */
  get(id: string): ContainerRecord {
    return this.mustGet(id);
  }

  async status(id: string, verbose: boolean): Promise<ContainerStatusInfo> {
    const record = this.mustGet(id);
    if (!verbose) return { record };
    let spec: unknown = null;
    try {
      spec = JSON.parse(await fs.readFile(path.join(record.paths.bundle, 'config.json'), 'utf8'));
    } catch {
      spec = null;
    }
    return {
      record,
      info: {
        sandboxID: record.sandboxId,
        pid: record.pid,
        bundle: record.paths.bundle,
        rootfs: record.paths.rootfs,
        runtimeHandler: record.handler,
        cgroupsPath: record.cgroupsPath,
        imageId: record.imageId,
        runtimeSpec: spec,
      },
    };
  }

  list(filter?: ContainerFilter): ContainerRecord[] {
    return filterContainers(this.view.values(), filter).sort((a, b) => (BigInt(a.createdAtNs) < BigInt(b.createdAtNs) ? -1 : 1));
  }

  private lookup(id: string): ContainerRecord | undefined {
    return findByIdPrefix(this.view, id, 'container');
  }

  private mustGet(id: string): ContainerRecord {
    if (!id) throw invalidArgument('container_id is required');
    const r = this.lookup(id);
    if (!r) throw notFound(`container ${JSON.stringify(id)} not found`);
    return r;
  }

  // ---- ExecSync / Update / ReopenLog -------------------------------------------------------------------

  async execSync(id: string, cmd: string[], timeoutMs: number, signal?: AbortSignal): Promise<ExecSyncResult> {
    if (cmd.length === 0 || !cmd[0]) throw invalidArgument('ExecSync: cmd is required');
    const rec = this.mustGet(id);
    if (rec.state !== 'running') throw failedPrecondition(`container ${rec.id} is not running (${rec.state.toUpperCase()})`);
    const base = await this.processOf(rec);
    return execSync({
      runtime: this.d.driver.runtime(rec.handler),
      id: rec.id,
      workDir: rec.paths.bundle,
      process: execProcess(base, cmd),
      timeoutMs,
      signal,
    });
  }

  private async processOf(rec: ContainerRecord): Promise<OciProcess> {
    const cached = this.processes.get(rec.id);
    if (cached) return cached;
    const spec = JSON.parse(await fs.readFile(path.join(rec.paths.bundle, 'config.json'), 'utf8')) as OciSpec;
    this.processes.set(rec.id, spec.process);
    return spec.process;
  }

  /** Applies new cgroup limits to a created or running container (runc update) and records them. */
  async updateResources(id: string, r: LinuxResourcesInput): Promise<void> {
    validateResources(r);
    const found = this.mustGet(id);
    await this.ctrLock.run(found.id, async () => {
      const rec = this.mustGet(found.id);
      if (rec.state !== 'created' && rec.state !== 'running') {
        throw failedPrecondition(`container ${rec.id} is ${rec.state.toUpperCase()}: its resources cannot be updated`);
      }
      const { resources, warnings } = toOciResources(r, { swapAccounting: this.d.host.swapAccounting });
      for (const w of warnings) this.warnOnce(w, 'UpdateContainerResources: ' + w, { container: rec.id });
      const rt = this.d.driver.runtime(rec.handler);
      await run(rt.path, [`--root=${rt.root}`, 'update', '--resources', '-', rec.id], { input: stringifyJson(resources), timeoutMs: 30_000 });
      const cfgFile = path.join(rec.paths.bundle, 'config.json');
      try {
        const spec = JSON.parse(await fs.readFile(cfgFile, 'utf8')) as { linux?: { resources?: Record<string, unknown> } };
        if (spec.linux) spec.linux.resources = { ...(spec.linux.resources ?? {}), ...(JSON.parse(stringifyJson(resources)) as Record<string, unknown>) };
        await writeFileAtomic(cfgFile, JSON.stringify(spec, null, 2) + '\n', 0o600);
      } catch (e) {
        this.d.log.warn('could not record new resources in config.json', { container: rec.id, error: errorMessage(e) });
      }
      const merged = { ...loadResources(rec.resources), ...stripUnset(r) };
      this.view.set(rec.id, { ...this.mustGet(rec.id), resources: storeResources(merged) });
      await this.persist(rec.id);
    });
  }

  async reopenLog(id: string): Promise<void> {
    const rec = this.mustGet(id);
    if (rec.state !== 'running') throw failedPrecondition(`container ${rec.id} is not running: its log cannot be reopened`);
    if (!rec.logPath) return;
    await reopenContainerLog(rec.paths.bundle, rec.logPath);
  }

  // ---- records and recovery ----------------------------------------------------------------------------

  /** Writes the current view state of id (queued per container; a removed container is not written). */
  private persist(id: string): Promise<void> {
    return this.writeLock.run(id, async () => {
      const r = this.view.get(id);
      if (r) await this.store.save(r);
    });
  }

  /**
   * Reloads records: half-created containers are undone; a container whose process ended while corral was
   * down gets its exit code and time from conmon's exit file; running ones are left alone.
   */
  async recover(): Promise<void> {
    for (const rec of await this.store.loadAll()) {
      try {
        await this.recoverOne(rec);
      } catch (e) {
        this.d.log.error('container recovery failed', { container: rec.id, error: errorMessage(e) });
        if (!this.view.has(rec.id)) this.view.set(rec.id, rec);
      }
    }
    await this.removeOrphans();
    for (const h of this.d.images.leaseHolders()) {
      if (h.startsWith(LEASE_PREFIX) && !this.view.has(h.slice(LEASE_PREFIX.length))) {
        await this.d.images.release(h).catch((e) => this.d.log.warn('cannot release a stale image lease', { holder: h, error: errorMessage(e) }));
      }
    }
  }

  /**
   * Container dirs without a record (a crash after the rootfs was mounted but before the record reached the
   * disk, since those steps run side by side): unmount and remove them.
   */
  private async removeOrphans(): Promise<void> {
    for (const base of [path.join(this.d.config.run_root, 'containers'), this.store.dir]) {
      let names: string[] = [];
      try {
        names = await fs.readdir(base);
      } catch {
        continue;
      }
      for (const n of names) {
        if (!/^[0-9a-f]{64}$/.test(n) || this.view.has(n)) continue;
        this.d.log.warn('repaired: removing the leftovers of a container without a record', { container: n, dir: path.join(base, n) });
        try {
          const p = this.containerPaths(n);
          await this.d.driver.delete(n, this.d.config.runtime.default_handler, true).catch(() => undefined);
          await this.rootfs.unmount(p.rootfs);
          await fs.rm(path.join(base, n), { recursive: true, force: true });
        } catch (e) {
          this.d.log.error('cannot remove container leftovers', { container: n, error: errorMessage(e) });
        }
      }
    }
  }

  private async recoverOne(rec: ContainerRecord): Promise<void> {
    if (rec.state === 'creating') {
      this.d.log.warn('repaired: undoing a container creation interrupted by a restart', { container: rec.id });
      await this.d.driver.delete(rec.id, rec.handler, true).catch(() => undefined);
      await this.rootfs.unmount(rec.paths.rootfs);
      await fs.rm(rec.paths.dir, { recursive: true, force: true });
      await fs.rm(rec.paths.bundle, { recursive: true, force: true });
      await this.store.remove(rec.id);
      await this.d.images.release(leaseHolder(rec.id));
      return;
    }
    this.view.set(rec.id, rec);
    this.names.restore(nameKey(rec), rec.configHash, rec.id);
    if (rec.state === 'exited') return;
    const st = await this.d.driver.exitStatus(rec.id);
    if (st) return this.recordExit(rec.id, st);
    const rs = await this.d.driver.state(rec.id, rec.handler).catch(() => undefined);
    if (!rs || rs.status === 'stopped') {
      this.d.log.warn('repaired: container ended while corral was down and left no exit status', { container: rec.id });
      return this.recordExit(rec.id, { exitCode: UNKNOWN_EXIT_CODE, finishedAtNs: nowNs() }, 'the container ended while corral was down; its exit status was lost');
    }
    if (rs.status === 'running' && rec.state === 'created') {
      this.d.log.warn('repaired: container started before a restart is recorded as running', { container: rec.id });
      this.view.set(rec.id, started(rec, nowNs()));
      await this.persist(rec.id);
    }
  }

  /** Pids still in a container's cgroup (tests and diagnostics). */
  async processesOf(id: string): Promise<number[]> {
    return cgroupPids(this.mustGet(id).cgroupsPath);
  }
}

/** Writes a file via temp + rename (atomic for readers, not durable: for files under the volatile run_root). */
async function writeFileReplace(file: string, data: string): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await fs.writeFile(tmp, data, { mode: 0o600 });
  await fs.rename(tmp, file);
}

function stripUnset(r: LinuxResourcesInput): LinuxResourcesInput {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(r)) {
    if (v === undefined || v === '' || v === 0n) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) continue;
    out[k] = v;
  }
  return out as LinuxResourcesInput;
}

/** Structural checks of a converted request (the spec builder checks the rest). */
export function validateConfig(cfg: ContainerConfig): void {
  if (!cfg.metadata?.name) throw invalidArgument('ContainerConfig.metadata.name is required');
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(cfg.metadata.name) || cfg.metadata.name.length > 253) {
    throw invalidArgument(`container name ${JSON.stringify(cfg.metadata.name)} is not a valid name`);
  }
  if (!Number.isInteger(cfg.metadata.attempt) || cfg.metadata.attempt < 0) throw invalidArgument(`attempt ${cfg.metadata.attempt} is invalid`);
  if (!cfg.image) throw invalidArgument('ContainerConfig.image.image is required');
  if (cfg.logPath && (path.isAbsolute(cfg.logPath) || cfg.logPath.split('/').includes('..'))) {
    throw invalidArgument(`log_path ${JSON.stringify(cfg.logPath)} must be relative to the pod's log directory`);
  }
  if (cfg.pidMode === 'target' && !cfg.pidTargetId) throw invalidArgument('PID namespace mode TARGET needs target_id');
  if (cfg.resources) validateResources(cfg.resources);
}
