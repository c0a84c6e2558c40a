import { promises as fs, readFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Histogram, type Registry } from 'prom-client';
import type { CorralConfig } from '../config/schema';
import type { Logger } from '../log/logger';
import { alreadyExists, CorralError, errorMessage, internal, invalidArgument, isCorralError, notFound } from '../core/errors';
import { faultPoint } from '../core/fault';
import { findByIdPrefix } from '../core/id-prefix';
import { newId, nowNs } from '../core/ids';
import { KeyedMutex } from '../core/keyed-mutex';
import { Rollback } from '../core/rollback';
import { readJson, removeStaleTemps, writeJsonAtomic } from '../store/atomic';
import { buildInfraSpec, INFRA_ROOTFS_DIRS, PAUSE_PATH } from '../oci/infra';
import { defaultInfraSeccomp } from '../oci/seccomp';
import type { OciSeccomp } from '../oci/types';
import type { CniManager } from '../network/cni';
import type { RuntimeDriver } from '../runtime/driver';
import { cgroupsPathFor, checkCgroupParent, removeCgroup } from '../sys/cgroups';
import { mountPoints } from '../sys/mount';
import { clampOomScoreAdj, mustRestrictOomScoreAdj, type DaemonCapabilities } from '../sys/caps';
import { pinNamespaces, unpinNamespaces } from '../sys/netns';
import { renderHosts, renderResolvConf } from './files';
import { pauseRootfsPaths, type PauseImage } from './pause-image';
import type { EventBus, RuntimeEventType } from '../events/bus';
import { filterSandboxes } from './filter';
import { sweepOrphans } from './orphans';
import { HostPortRegistry, probeHostPorts } from './hostports';
import type { PodSandboxSpec, SandboxFilter, SandboxPaths, SandboxRecord } from './types';
import { shmSizeOf, stableStringify, validateSpec } from './validate';

/** oom_score_adj cri-o gives infra processes (clamped when the daemon may not set it). */
const INFRA_OOM_SCORE_ADJ = -998;
const INFRA_UID = 65535;
const STOP_WAIT_MS = 10_000;

export type SandboxHook = (sandboxId: string) => Promise<void>;

export interface SandboxServiceDeps {
  config: CorralConfig;
  log: Logger;
  metrics: Registry;
  driver: RuntimeDriver;
  cni: CniManager;
  caps: DaemonCapabilities;
  /** Present when the daemon can run infra containers from runtime.pause_image. */
  pause?: PauseImage;
  events?: EventBus;
}

/** Verbose status details (PodSandboxStatus info). */
export interface SandboxStatus {
  record: SandboxRecord;
  info: Record<string, unknown>;
}

const podKey = (s: PodSandboxSpec) => `${s.metadata.namespace}/${s.metadata.name}/${s.metadata.uid}/${s.metadata.attempt}`;

/**
 * Pod sandboxes: pinned namespaces, CNI, the catatonit infra process under conmon/runc, DNS/hosts files,
 * records on disk. List/Status read the in-memory view and never wait on a running operation.
 */
export class SandboxService {
  private readonly view = new Map<string, SandboxRecord>();
  /** Pod key (namespace/name/uid/attempt) → the sandbox creation, running or done. */
  private readonly reservations = new Map<string, { hash: string; id: string; done: Promise<string> }>();
  private readonly mutex = new KeyedMutex();
  private readonly hostPorts = new HostPortRegistry();
  private readonly stopHooks: SandboxHook[] = [];
  private readonly removeHooks: SandboxHook[] = [];
  private readonly phase: Histogram<'phase'>;
  private readonly recordsDir: string;
  private readonly runRoot: string;
  private readonly pauseRootfs: string;
  private offExit?: () => void;
  private warnedOom = false;

  constructor(private readonly d: SandboxServiceDeps) {
    this.recordsDir = path.join(d.config.root, 'sandboxes');
    this.runRoot = d.config.run_root;
    this.pauseRootfs = path.join(d.config.run_root, 'pause-rootfs');
    const existing = d.metrics.getSingleMetric('corral_sandbox_run_phase_seconds') as Histogram<'phase'> | undefined;
    this.phase =
      existing ??
      new Histogram({
        name: 'corral_sandbox_run_phase_seconds',
        help: 'RunPodSandbox duration per phase (namespaces, cni_add, infra_start, total).',
        labelNames: ['phase'],
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers: [d.metrics],
      });
  }

  /** Network readiness for the Status RPC (NetworkReady condition). */
  networkStatus(): { ready: boolean; reason: string; message: string } {
    return this.d.cni.networkReady();
  }

  /** The conmon + runc driver, shared with the containers area. */
  get driver(): RuntimeDriver {
    return this.d.driver;
  }

  /** Containers area hook: runs at StopPodSandbox before the infra stops (stop the pod's containers). */
  beforeStop(hook: SandboxHook): void {
    this.stopHooks.push(hook);
  }

  /** Containers area hook: runs at RemovePodSandbox before anything is removed (remove the pod's containers). */
  beforeRemove(hook: SandboxHook): void {
    this.removeHooks.push(hook);
  }

  /** Prepares directories, the shared pause rootfs, the exit listener; reloads records. */
  async init(): Promise<void> {
    await fs.mkdir(this.recordsDir, { recursive: true });
    await removeStaleTemps(this.recordsDir);
    for (const d of INFRA_ROOTFS_DIRS) await fs.mkdir(path.join(this.pauseRootfs, d), { recursive: true });
    await fs.writeFile(path.join(this.pauseRootfs, PAUSE_PATH.slice(1)), '', { flag: 'a' });
    this.offExit = this.d.driver.onExit((id, st) => {
      const r = this.view.get(id);
      if (r && r.state === 'ready') {
        this.d.log.warn('pod sandbox infra process exited', { sandbox: id, exitCode: st.exitCode });
        void this.mutex.run(id, () => this.markNotReady(id)).catch((e) => this.d.log.error('cannot record sandbox exit', { sandbox: id, error: e }));
      }
    });
    await this.recover();
  }

  close(): void {
    this.offExit?.();
  }

  // ---- RunPodSandbox ------------------------------------------------------------------------------

  /**
   * Creates and starts a sandbox. A retry with the same metadata and config joins the running creation
   * or returns the existing id; the same metadata with another config is AlreadyExists.
   */
  async run(input: PodSandboxSpec): Promise<string> {
    const spec = validateSpec(input, (h) => this.d.driver.hasHandler(h));
    const handler = spec.runtimeHandler || this.d.config.runtime.default_handler;
    this.d.driver.runtime(handler);
    const cgErr = checkCgroupParent(this.d.config.runtime.cgroup_manager, spec.cgroupParent);
    if (cgErr) throw invalidArgument(cgErr);
    const hash = stableStringify({ spec, handler });
    const key = podKey(spec);
    const existing = this.reservations.get(key);
    if (existing) {
      if (existing.hash !== hash) {
        throw alreadyExists(`pod sandbox ${key} already exists (${existing.id}) with a different configuration`);
      }
      return existing.done;
    }
    const id = newId();
    const done = this.mutex.run(id, () => this.create(id, spec, handler, hash));
    this.reservations.set(key, { hash, id, done });
    done.catch(() => {
      if (this.reservations.get(key)?.id === id) this.reservations.delete(key);
    });
    return done;
  }

  private paths(id: string, spec: PodSandboxSpec): SandboxPaths {
    const dir = path.join(this.runRoot, 'sandboxes', id);
    const hostNet = spec.namespaces.network === 'node';
    const hostIpc = spec.namespaces.ipc === 'node';
    return {
      dir,
      bundle: path.join(dir, 'infra'),
      netns: hostNet ? undefined : path.join(this.runRoot, 'netns', id),
      ipcns: hostIpc ? undefined : path.join(this.runRoot, 'ipcns', id),
      utsns: hostNet ? undefined : path.join(this.runRoot, 'utsns', id),
      shm: hostIpc ? '/dev/shm' : path.join(dir, 'shm'),
      shmMounted: !hostIpc,
      resolvConf: path.join(dir, 'resolv.conf'),
      hosts: path.join(dir, 'hosts'),
      hostname: path.join(dir, 'hostname'),
      infraLog: path.join(dir, 'infra', 'infra.log'),
    };
  }

  private async create(id: string, spec: PodSandboxSpec, handler: string, configHash: string): Promise<string> {
    const log = this.d.log.child({ sandbox: id, pod: `${spec.metadata.namespace}/${spec.metadata.name}` });
    const t0 = performance.now();
    const p = this.paths(id, spec);
    const hostNet = spec.namespaces.network === 'node';
    const cgroupsPath = cgroupsPathFor(this.d.config.runtime.cgroup_manager, spec.cgroupParent, 'corral', id);
    const rec: SandboxRecord = {
      version: 1, id, spec, handler, configHash, state: 'creating', createdAtNs: nowNs().toString(), paths: p,
      cgroupsPath, pid: 0, ips: [], timings: {},
      ...(this.d.config.runtime.pause_image && this.d.pause ? { infraImage: this.d.config.runtime.pause_image } : {}),
    };
    const rb = new Rollback(log);
    let step = 'seccomp profile';
    try {
      const seccomp = await this.seccompFor(spec);
      step = 'host ports';
      this.hostPorts.reserve(id, spec.portMappings);
      rb.push('release host ports', () => this.hostPorts.release(id));
      await probeHostPorts(spec.portMappings);

      step = 'sandbox record';
      // Disk first: a daemon crash mid-create leaves a 'creating' record that recovery undoes.
      rb.push('remove record', () => fs.rm(this.recordFile(id), { force: true }));
      rb.push('remove sandbox dir', () => fs.rm(p.dir, { recursive: true, force: true }));
      await fs.mkdir(p.bundle, { recursive: true });
      faultPoint('sandbox.run.before-record');
      await writeJsonAtomic(this.recordFile(id), rec);
      faultPoint('sandbox.run.after-record');

      step = 'namespaces';
      const t = performance.now();
      rb.push('unpin namespaces', () => unpinNamespaces(this.pinnedPaths(p)));
      await pinNamespaces({ net: p.netns, ipc: p.ipcns, uts: p.utsns, shm: p.shmMounted ? { path: p.shm, sizeBytes: shmSizeOf(spec) } : undefined });
      rec.timings.namespacesMs = ms(t);
      faultPoint('sandbox.run.after-namespaces');

      // The infra only needs the pinned namespaces, not the pod's addresses: CNI ADD and the infra start
      // run side by side (both undos are pushed before either starts), unless a sysctl names an interface
      // that only exists once CNI has run.
      const hostname = hostNet ? os.hostname() : spec.hostname || spec.metadata.name;
      if (!hostNet) rb.push('CNI DEL', () => this.d.cni.tearDown(id));
      rb.push('unmount pause image rootfs', () => this.unmountPause(rec));
      rb.push('delete infra', () => this.d.driver.delete(id, handler, true));
      const network = hostNet ? Promise.resolve() : this.addNetwork(id, spec, p, rec);
      const infra = (async () => {
        if (needsInterfaces(spec.sysctls)) await network;
        await this.startInfra(id, spec, handler, hostname, cgroupsPath, seccomp, p, rec);
      })();
      const [net, inf] = await Promise.allSettled([network, infra]);
      if (net.status === 'rejected') {
        step = 'CNI ADD';
        throw net.reason;
      }
      if (inf.status === 'rejected') {
        step = 'infra start';
        throw inf.reason;
      }

      step = 'pod files';
      await Promise.all([
        fs.writeFile(p.resolvConf, spec.dns ? renderResolvConf(spec.dns) : hostFile('/etc/resolv.conf')),
        fs.writeFile(p.hosts, hostNet ? hostFile('/etc/hosts') : renderHosts(hostname, rec.ips)),
        fs.writeFile(p.hostname, hostname + '\n'),
      ]);
      rec.timings.totalMs = ms(t0);
      rec.state = 'ready';
      faultPoint('sandbox.run.before-ready');
      await writeJsonAtomic(this.recordFile(id), rec);
      faultPoint('sandbox.run.after-ready');
      rb.commit();
      this.view.set(id, rec);
      this.observe(rec);
      this.emit('CONTAINER_CREATED_EVENT', id);
      this.emit('CONTAINER_STARTED_EVENT', id);
      log.info('pod sandbox ready', { ips: rec.ips, ms: rec.timings.totalMs });
      return id;
    } catch (e) {
      log.warn('RunPodSandbox failed; rolling back', { error: errorMessage(e) });
      await rb.unwind();
      throw isCorralError(e) ? new CorralError(e.code, `${step}: ${e.message}`, { cause: e }) : internal(`${step}: ${errorMessage(e)}`, e);
    }
  }

  private async addNetwork(id: string, spec: PodSandboxSpec, p: SandboxPaths, rec: SandboxRecord): Promise<void> {
    const t = performance.now();
    const portMappings = spec.portMappings
      .filter((m) => m.hostPort > 0)
      .map((m) => ({ hostPort: m.hostPort, containerPort: m.containerPort, protocol: m.protocol, ...(m.hostIp ? { hostIP: m.hostIp } : {}) }));
    const pod = { namespace: spec.metadata.namespace, name: spec.metadata.name, uid: spec.metadata.uid, id };
    const res = await this.d.cni.setUp(pod, p.netns!, { portMappings });
    faultPoint('sandbox.run.after-cni-add');
    rec.ips = res.ips;
    rec.network = res.network;
    rec.cniResult = res.result;
    rec.timings.cniAddMs = ms(t);
  }

  private async startInfra(
    id: string, spec: PodSandboxSpec, handler: string, hostname: string, cgroupsPath: string,
    seccomp: OciSeccomp | undefined, p: SandboxPaths, rec: SandboxRecord,
  ): Promise<void> {
    const t = performance.now();
    const image = this.pauseImageFor(rec);
    let rootfs = this.pauseRootfs;
    let args: string[] | undefined;
    if (image) {
      const pr = pauseRootfsPaths(p.dir);
      args = (await this.d.pause!.mount(image, id, pr)).args;
      rootfs = pr.rootfs;
    }
    const oci = buildInfraSpec({
      rootfs,
      args,
      catatonit: this.d.config.runtime.catatonit,
      hostname,
      netns: p.netns,
      ipcns: p.ipcns,
      utsns: p.utsns,
      pid: spec.namespaces.pid === 'node' ? 'node' : 'pod',
      cgroupsPath,
      sysctls: spec.sysctls,
      uid: spec.runAsUser ?? INFRA_UID,
      gid: spec.runAsGroup ?? (spec.runAsUser !== undefined ? 0 : INFRA_UID),
      readonlyRootfs: true,
      oomScoreAdj: this.oomScoreAdj(INFRA_OOM_SCORE_ADJ),
      seccomp,
      shmPath: p.shm,
      annotations: { 'io.kubernetes.cri.container-type': 'sandbox', 'io.kubernetes.cri.sandbox-id': id },
    });
    await fs.writeFile(path.join(p.bundle, 'config.json'), JSON.stringify(oci));
    const { pid } = await this.d.driver.create({ id, handler, bundle: p.bundle, logPath: p.infraLog, persistDir: p.bundle, name: `${spec.metadata.name}-infra` });
    faultPoint('sandbox.run.after-infra-create');
    await this.d.driver.start(id, handler);
    faultPoint('sandbox.run.after-infra-start');
    rec.pid = pid;
    rec.timings.infraStartMs = ms(t);
  }

  private observe(rec: SandboxRecord): void {
    const t = rec.timings;
    if (t.namespacesMs !== undefined) this.phase.observe({ phase: 'namespaces' }, t.namespacesMs / 1000);
    if (t.cniAddMs !== undefined) this.phase.observe({ phase: 'cni_add' }, t.cniAddMs / 1000);
    if (t.infraStartMs !== undefined) this.phase.observe({ phase: 'infra_start' }, t.infraStartMs / 1000);
    if (t.totalMs !== undefined) this.phase.observe({ phase: 'total' }, t.totalMs / 1000);
  }

  private oomScoreAdj(v: number): number {
    if (!mustRestrictOomScoreAdj(this.d.config.runtime.restrict_oom_score_adj, this.d.caps)) return v;
    const c = clampOomScoreAdj(v, this.d.caps);
    if (c !== v && !this.warnedOom) {
      this.warnedOom = true;
      this.d.log.warn('daemon lacks CAP_SYS_RESOURCE: clamping oom_score_adj', { requested: v, applied: c });
    }
    return c;
  }

  private async seccompFor(spec: PodSandboxSpec): Promise<OciSeccomp | undefined> {
    if (spec.privileged || spec.seccomp.type === 'unconfined') return undefined;
    if (spec.seccomp.type === 'runtime-default') return defaultInfraSeccomp();
    try {
      return JSON.parse(await fs.readFile(spec.seccomp.path, 'utf8')) as OciSeccomp;
    } catch (e) {
      throw invalidArgument(`seccomp profile ${spec.seccomp.path}: ${errorMessage(e)}`);
    }
  }

  /** The pause image this sandbox's infra uses, if any. */
  private pauseImageFor(rec: SandboxRecord): string | undefined {
    return rec.infraImage && this.d.pause ? rec.infraImage : undefined;
  }

  private async unmountPause(rec: SandboxRecord): Promise<void> {
    if (rec.infraImage && this.d.pause) await this.d.pause.unmount(rec.id, pauseRootfsPaths(rec.paths.dir));
  }

  private pinnedPaths(p: SandboxPaths): string[] {
    return [p.netns, p.ipcns, p.utsns, p.shmMounted ? p.shm : undefined].filter((x): x is string => !!x);
  }

  private recordFile(id: string): string {
    return path.join(this.recordsDir, `${id}.json`);
  }

  // ---- Stop / Remove --------------------------------------------------------------------------------

  /** Stops the pod: hooks (containers), infra, CNI DEL, namespaces and shm released. Idempotent; unknown ids succeed. */
  async stop(id: string): Promise<void> {
    const found = this.lookup(id);
    if (!found) return;
    await this.mutex.run(found.id, () => this.stopLocked(found.id));
  }

  private async stopLocked(id: string): Promise<void> {
    const rec = this.view.get(id);
    if (!rec) return;
    for (const h of this.stopHooks) await h(id);
    await this.stopInfra(rec);
    faultPoint('sandbox.stop.after-infra-kill');
    await this.unmountPause(rec);
    // A failing DEL is retried in the background from the cached result; it never blocks Stop/Remove.
    if (rec.spec.namespaces.network !== 'node') await this.d.cni.release(id);
    faultPoint('sandbox.stop.after-cni-del');
    this.hostPorts.release(id);
    await unpinNamespaces(this.pinnedPaths(rec.paths));
    if (rec.state !== 'notready' || !rec.stoppedAtNs) {
      const next: SandboxRecord = { ...rec, state: 'notready', pid: 0, stoppedAtNs: rec.stoppedAtNs ?? nowNs().toString() };
      await writeJsonAtomic(this.recordFile(id), next);
      this.view.set(id, next);
      if (rec.state === 'ready') this.emit('CONTAINER_STOPPED_EVENT', id);
    }
  }

  private async stopInfra(rec: SandboxRecord): Promise<void> {
    const st = await this.d.driver.state(rec.id, rec.handler);
    if (st && (st.status === 'running' || st.status === 'created' || st.status === 'paused')) {
      const exited = this.d.driver.waitExit(rec.id, STOP_WAIT_MS);
      exited.catch(() => undefined);
      try {
        await this.d.driver.kill(rec.id, rec.handler, 'KILL', rec.spec.namespaces.pid === 'node');
        await exited;
      } catch (e) {
        if (!isCorralError(e, 'NotFound')) this.d.log.warn('infra did not report its exit; deleting by force', { sandbox: rec.id, error: errorMessage(e) });
      }
    }
    await this.d.driver.delete(rec.id, rec.handler, true);
    // runc delete removes the cgroup only of containers it still knows (not after a reboot-like loss of its state).
    if (this.d.config.runtime.cgroup_manager === 'cgroupfs') await removeCgroup(rec.cgroupsPath);
  }

  /** Removes the pod: stops it if needed, then deletes its files and record. Unknown ids succeed. */
  async remove(id: string): Promise<void> {
    const found = this.lookup(id);
    if (!found) return;
    await this.mutex.run(found.id, async () => {
      const rec = this.view.get(found.id);
      if (!rec) return;
      for (const h of this.removeHooks) await h(rec.id);
      await this.stopLocked(rec.id);
      faultPoint('sandbox.remove.after-stop');
      await this.d.driver.delete(rec.id, rec.handler, true);
      await fs.rm(rec.paths.dir, { recursive: true, force: true });
      faultPoint('sandbox.remove.after-files');
      await fs.rm(this.recordFile(rec.id), { force: true });
      this.view.delete(rec.id);
      this.emit('CONTAINER_DELETED_EVENT', rec.id);
      const key = podKey(rec.spec);
      if (this.reservations.get(key)?.id === rec.id) this.reservations.delete(key);
    });
  }

  // ---- Status / List --------------------------------------------------------------------------------

  /** The record of a sandbox by id or unique id prefix; NotFound otherwise. Never waits. */
  get(id: string): SandboxRecord {
    const r = this.lookup(id);
    if (!r) throw notFound(`pod sandbox ${JSON.stringify(id)} not found`);
    return r;
  }

  status(id: string): SandboxStatus {
    const record = this.get(id);
    return {
      record,
      info: {
        id: record.id,
        pid: record.pid,
        runtimeHandler: record.handler,
        image: record.infraImage ?? 'built-in catatonit',
        netnsPath: record.paths.netns ?? '',
        ipcnsPath: record.paths.ipcns ?? '',
        utsnsPath: record.paths.utsns ?? '',
        shmPath: record.paths.shm,
        resolvConfPath: record.paths.resolvConf,
        hostsPath: record.paths.hosts,
        cgroupsPath: record.cgroupsPath,
        bundle: record.paths.bundle,
        network: record.network ?? '',
        cniResult: record.cniResult ?? null,
        timings: record.timings,
      },
    };
  }

  list(filter?: SandboxFilter): SandboxRecord[] {
    return filterSandboxes(this.view.values(), filter).sort((a, b) => (BigInt(a.createdAtNs) < BigInt(b.createdAtNs) ? -1 : 1));
  }

  private lookup(id: string): SandboxRecord | undefined {
    return findByIdPrefix(this.view, id, 'pod sandbox');
  }

  // ---- Recovery -------------------------------------------------------------------------------------

  private async markNotReady(id: string): Promise<void> {
    const rec = this.view.get(id);
    if (!rec || rec.state === 'notready') return;
    const next: SandboxRecord = { ...rec, state: 'notready' };
    await writeJsonAtomic(this.recordFile(id), next);
    this.view.set(id, next);
    this.emit('CONTAINER_STOPPED_EVENT', id);
  }

  /** Sandbox lifecycle events carry the sandbox id in both id fields, as containerd sends them. */
  private emit(type: RuntimeEventType, id: string): void {
    this.d.events?.publish({ type, containerId: id, podSandboxId: id, createdAtNs: nowNs() });
  }

  /**
   * Reloads records: half-created sandboxes are undone; a ready sandbox whose infra exited (exit file,
   * or unknown to the runtime) becomes NOTREADY. Running things are left alone.
   */
  async recover(): Promise<void> {
    let names: string[] = [];
    try {
      names = (await fs.readdir(this.recordsDir)).filter((n) => n.endsWith('.json') && !n.startsWith('.'));
    } catch {
      return;
    }
    // Ids with a record file, readable or not: the orphan sweep leaves their resources alone.
    const known = new Set(names.map((n) => n.slice(0, -5)));
    for (const n of names) {
      let rec: SandboxRecord | undefined;
      try {
        rec = await readJson<SandboxRecord>(path.join(this.recordsDir, n));
      } catch (e) {
        this.d.log.error('unreadable sandbox record skipped', { file: n, error: errorMessage(e) });
        continue;
      }
      if (!rec || rec.version !== 1) continue;
      try {
        await this.recoverOne(rec);
      } catch (e) {
        this.d.log.error('sandbox recovery failed', { sandbox: rec.id, error: errorMessage(e) });
        this.view.set(rec.id, { ...rec, state: 'notready' });
      }
    }
    const repaired = await sweepOrphans({
      runRoot: this.runRoot,
      log: this.d.log,
      known,
      cniIds: () => this.d.cni.cachedIds(),
      cniTearDown: (id) => this.d.cni.tearDown(id),
      releasePause: this.d.pause ? (id, dir) => this.d.pause!.unmount(id, pauseRootfsPaths(dir)) : undefined,
    });
    if (repaired.length > 0) this.d.log.warn('repaired leftovers of sandboxes without a record', { repaired });
  }

  /**
   * Undoes a creation a crash interrupted (record still 'creating'): infra container, pause rootfs, CNI
   * attachment, pinned namespaces, cgroup, files, record. Logs what it found and undid.
   */
  private async undoCreate(rec: SandboxRecord): Promise<void> {
    const repaired: string[] = [];
    const st = await this.d.driver.state(rec.id, rec.handler).catch(() => undefined);
    if (st) repaired.push(`infra container (${st.status})`);
    // Waits for the infra's exit (so conmon has written its exit file and gone) before deleting it.
    await this.stopInfra(rec).catch((e) => this.d.log.warn('cannot delete the infra of an interrupted creation', { sandbox: rec.id, error: errorMessage(e) }));
    if (this.pauseImageFor(rec)) {
      await this.unmountPause(rec);
      repaired.push('pause rootfs');
    }
    let cniFailed = false;
    if (rec.spec.namespaces.network !== 'node' && (await this.d.cni.attachment(rec.id))) {
      try {
        await this.d.cni.tearDown(rec.id);
        repaired.push('CNI attachment (DEL)');
      } catch (e) {
        // The cached attachment stays: the start-up orphan sweep retries the DEL next time.
        cniFailed = true;
        this.d.log.error('CNI DEL of an interrupted creation failed', { sandbox: rec.id, error: errorMessage(e) });
      }
    }
    const mounted = await mountPoints();
    const pinned = this.pinnedPaths(rec.paths);
    const was = pinned.filter((p) => mounted.has(p));
    if (was.length > 0) repaired.push(`mounts ${was.map((p) => (path.basename(p) === rec.id ? path.basename(path.dirname(p)) : path.basename(p))).join(', ')}`);
    await unpinNamespaces(pinned);
    await fs.rm(rec.paths.dir, { recursive: true, force: true });
    await fs.rm(this.recordFile(rec.id), { force: true });
    this.d.log.warn('repaired a sandbox creation interrupted by a restart: removed', {
      sandbox: rec.id,
      pod: `${rec.spec.metadata.namespace}/${rec.spec.metadata.name}`,
      repaired: repaired.length > 0 ? repaired : ['record and files only'],
      ...(cniFailed ? { pending: 'CNI DEL' } : {}),
    });
  }

  private async recoverOne(rec: SandboxRecord): Promise<void> {
    if (rec.state === 'creating') {
      await this.undoCreate(rec);
      return;
    }
    this.view.set(rec.id, rec);
    this.reservations.set(podKey(rec.spec), { hash: rec.configHash, id: rec.id, done: Promise.resolve(rec.id) });
    if (rec.state !== 'ready') return;
    this.hostPorts.reserve(rec.id, rec.spec.portMappings);
    const exited = await this.d.driver.exitStatus(rec.id);
    const st = exited ? undefined : await this.d.driver.state(rec.id, rec.handler).catch(() => undefined);
    if (exited || !st || st.status === 'stopped') {
      this.d.log.warn('repaired: pod sandbox infra is gone; marking NOTREADY', { sandbox: rec.id, infra: exited ? `exited ${exited.exitCode}` : st ? st.status : 'unknown to the runtime' });
      await this.markNotReady(rec.id);
    }
  }
}

/** Sysctls naming a per-interface setting (net.ipv4.conf.eth0.x) need the CNI interfaces to exist. */
function needsInterfaces(sysctls: Record<string, string>): boolean {
  return Object.keys(sysctls).some((k) => /^net\.ipv[46]\.(conf|neigh)\.(?!all\.|default\.)/.test(k));
}

function ms(t: number): number {
  return Math.round((performance.now() - t) * 100) / 100;
}

function hostFile(p: string): string {
  try {
    return readFileSync(p, 'utf8');
  } catch {
    return '';
  }
}
