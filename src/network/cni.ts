import { watch, promises as fs, type FSWatcher } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../log/logger';
import { failedPrecondition, errorMessage } from '../core/errors';
import { readJson, removeStaleTemps, writeJsonAtomic } from '../store/atomic';
import { loadFirstNetwork, versionAtLeast, type NetworkConfigList } from './config';
import { execPlugin, pluginStdin, type PodRef, type RuntimeConfig, type Invocation } from './invoke';
import { resultIps, type CniResult } from './result';

export interface CniSettings {
  conf_dirs: string[];
  plugin_dirs: string[];
  timeout_seconds: number;
}

export interface NetworkReadiness {
  ready: boolean;
  reason: string;
  message: string;
}

/** What is cached per attachment for DEL: the exact config used, the args and the ADD result. */
export interface Attachment {
  version: 1;
  containerId: string;
  ifName: string;
  netns: string;
  pod: PodRef;
  runtimeConfig: RuntimeConfig;
  config: NetworkConfigList;
  result?: CniResult;
}

export interface SetUpResult {
  result: CniResult;
  ips: string[];
  network: string;
}

export const IFNAME = 'eth0';
const LOOPBACK_CONF = { cniVersion: '1.0.0', name: 'cni-loopback', type: 'loopback' };

/**
 * CNI driver: the lexically first valid network config (watched for changes), ADD/DEL/CHECK with the
 * CNI 1.0 protocol (STATUS/GC for cniVersion >= 1.1.0), results cached under <root>/cni-results.
 */
export class CniManager {
  private network?: NetworkConfigList;
  private problems: string[] = [];
  private statusError?: string;
  private watchers: FSWatcher[] = [];
  private debounce?: NodeJS.Timeout;
  private retry?: NodeJS.Timeout;
  private closed = false;
  private readonly cacheDir: string;
  /** Pending background DEL retries by sandbox id. */
  private readonly delRetries = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly settings: () => CniSettings,
    root: string,
    private readonly log: Logger,
    private readonly opts: {
      delRetryBaseMs?: number;
      delRetryMaxMs?: number;
      /** Wraps each plugin-running operation (ADD, DEL, CHECK), e.g. to record latency and failures. */
      observe?: <T>(operation: string, fn: () => Promise<T>) => Promise<T>;
    } = {},
  ) {
    this.cacheDir = path.join(root, 'cni-results');
  }

  /** Loads the config and starts watching the config dirs. */
  async start(): Promise<void> {
    await fs.mkdir(this.cacheDir, { recursive: true });
    await removeStaleTemps(this.cacheDir);
    await this.reload();
    this.watchDirs();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.debounce);
    clearTimeout(this.retry);
    for (const t of this.delRetries.values()) clearTimeout(t);
    this.delRetries.clear();
    for (const w of this.watchers) w.close();
    this.watchers = [];
  }

  /** Re-reads the config dirs (on changes, and on SIGHUP when the dirs themselves may have changed). */
  async reload(): Promise<void> {
    const { config, problems } = await loadFirstNetwork(this.settings().conf_dirs);
    const before = this.network?.source;
    this.network = config;
    this.problems = problems;
    this.statusError = undefined;
    if (config && versionAtLeast(config.cniVersion, '1.1.0')) {
      try {
        await this.status();
      } catch (e) {
        this.statusError = errorMessage(e);
      }
    }
    if (config?.source !== before) {
      if (config) this.log.info('CNI network config loaded', { network: config.name, file: config.source });
      else this.log.warn('no valid CNI network config', { dirs: this.settings().conf_dirs, problems });
    }
  }

  /** Re-watches the dirs (call after a config reload changed conf_dirs). */
  rewatch(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    this.watchDirs();
  }

  private watchDirs(): void {
    let missing = false;
    for (const dir of this.settings().conf_dirs) {
      try {
        const w = watch(dir, () => this.scheduleReload());
        w.on('error', () => undefined);
        this.watchers.push(w);
      } catch {
        missing = true;
      }
    }
    if (missing && !this.closed) {
      // A conf dir that does not exist yet cannot be watched; look again in a while.
      this.retry = setTimeout(() => {
        if (this.closed) return;
        this.rewatch();
        this.scheduleReload();
      }, 2000);
      this.retry.unref();
    }
  }

  private scheduleReload(): void {
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.reload().catch((e) => this.log.error('CNI config reload failed', { error: e }));
    }, 100);
    this.debounce.unref();
  }

  networkReady(): NetworkReadiness {
    if (!this.network) {
      const why = this.problems.length ? `: ${this.problems.join('; ')}` : '';
      return { ready: false, reason: 'NetworkPluginNotReady', message: `Network plugin returns error: no CNI configuration file in ${this.settings().conf_dirs.join(', ')}${why}` };
    }
    if (this.statusError) return { ready: false, reason: 'NetworkPluginNotReady', message: `Network plugin returns error: ${this.statusError}` };
    return { ready: true, reason: '', message: '' };
  }

  current(): NetworkConfigList | undefined {
    return this.network;
  }

  private timeoutMs(): number {
    return this.settings().timeout_seconds * 1000;
  }

  private cacheFile(id: string): string {
    return path.join(this.cacheDir, `${id}.json`);
  }

  /** Ids of every cached attachment (for the start-up sweep of attachments without a sandbox). */
  async cachedIds(): Promise<string[]> {
    try {
      return (await fs.readdir(this.cacheDir)).filter((n) => n.endsWith('.json') && !n.startsWith('.')).map((n) => n.slice(0, -5));
    } catch {
      return [];
    }
  }

  /** The cached attachment of a sandbox, if any. */
  attachment(id: string): Promise<Attachment | undefined> {
    return readJson<Attachment>(this.cacheFile(id));
  }

  /**
   * ADD: brings up lo and runs the network's plugins in order. The attachment is cached *before* the
   * first plugin runs, so a DEL after a failed or interrupted ADD still has the config to undo it.
   */
  setUp(pod: PodRef, netns: string, runtimeConfig: RuntimeConfig): Promise<SetUpResult> {
    return this.observed('ADD', () => this.add(pod, netns, runtimeConfig));
  }

  private observed<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    return this.opts.observe ? this.opts.observe(operation, fn) : fn();
  }

  private async add(pod: PodRef, netns: string, runtimeConfig: RuntimeConfig): Promise<SetUpResult> {
    const config = this.network;
    if (!config) throw failedPrecondition(this.networkReady().message);
    const att: Attachment = { version: 1, containerId: pod.id, ifName: IFNAME, netns, pod, runtimeConfig, config };
    await writeJsonAtomic(this.cacheFile(pod.id), att);
    const dirs = this.settings().plugin_dirs;
    const inv: Invocation = { command: 'ADD', containerId: pod.id, netns, ifName: IFNAME, pod, pluginDirs: dirs };
    // lo is the runtime's job (as in cri-o and containerd) unless the network's own chain brings it up.
    const lo = config.plugins.some((p) => p.type === 'loopback')
      ? Promise.resolve(undefined)
      : execPlugin('loopback', { ...inv, ifName: 'lo' }, LOOPBACK_CONF, this.timeoutMs());
    lo.catch(() => undefined);
    let prev: unknown;
    for (const p of config.plugins) {
      prev = await execPlugin(p.type, inv, pluginStdin(config, p, runtimeConfig, prev), this.timeoutMs());
    }
    await lo;
    const result = (prev ?? {}) as CniResult;
    att.result = result;
    await writeJsonAtomic(this.cacheFile(pod.id), att);
    return { result, ips: resultIps(result), network: config.name };
  }

  /**
   * DEL with the cached config and result, plugins in reverse order. Idempotent: no cache entry means
   * nothing to undo; a netns that is gone is passed as "" (plugins then release what they can).
   */
  tearDown(id: string): Promise<void> {
    return this.observed('DEL', () => this.del(id));
  }

  private async del(id: string): Promise<void> {
    const att = await this.attachment(id);
    if (!att) return;
    let netns = att.netns;
    try {
      await fs.access(netns);
    } catch {
      netns = '';
    }
    const inv: Invocation = { command: 'DEL', containerId: id, netns, ifName: att.ifName, pod: att.pod, pluginDirs: this.settings().plugin_dirs };
    const prev = versionAtLeast(att.config.cniVersion, '0.4.0') ? att.result : undefined;
    for (const p of [...att.config.plugins].reverse()) {
      await execPlugin(p.type, inv, pluginStdin(att.config, p, att.runtimeConfig, prev), this.timeoutMs());
    }
    await fs.rm(this.cacheFile(id), { force: true });
  }

  /**
   * DEL that never blocks a pod's teardown: when the plugins fail, the cached attachment is kept and DEL is
   * retried in the background with backoff (and again at the next start, from the cache) until it
   * succeeds. Returns false when it was deferred.
   */
  async release(id: string): Promise<boolean> {
    this.cancelRetry(id);
    try {
      await this.tearDown(id);
      return true;
    } catch (e) {
      this.log.error('CNI DEL failed; retrying in the background from the cached result', { sandbox: id, error: errorMessage(e) });
      this.scheduleRetry(id, this.opts.delRetryBaseMs ?? 2000);
      return false;
    }
  }

  /** Whether a background DEL retry is pending for id. */
  delPending(id: string): boolean {
    return this.delRetries.has(id);
  }

  private cancelRetry(id: string): void {
    clearTimeout(this.delRetries.get(id));
    this.delRetries.delete(id);
  }

  private scheduleRetry(id: string, delayMs: number): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.delRetries.delete(id);
      this.tearDown(id).then(
        () => this.log.info('CNI DEL succeeded on retry', { sandbox: id }),
        (e) => {
          this.log.warn('CNI DEL retry failed', { sandbox: id, error: errorMessage(e), next_ms: Math.min(delayMs * 2, this.opts.delRetryMaxMs ?? 300_000) });
          this.scheduleRetry(id, Math.min(delayMs * 2, this.opts.delRetryMaxMs ?? 300_000));
        },
      );
    }, delayMs);
    t.unref();
    this.delRetries.set(id, t);
  }

  /** CHECK (cniVersion >= 0.4.0, unless disableCheck): throws when the attachment is broken. */
  check(id: string): Promise<void> {
    return this.observed('CHECK', () => this.checkNow(id));
  }

  private async checkNow(id: string): Promise<void> {
    const att = await this.attachment(id);
    if (!att?.result) throw failedPrecondition(`no network attachment for ${id}`);
    if (!versionAtLeast(att.config.cniVersion, '0.4.0') || att.config.disableCheck) return;
    const inv: Invocation = { command: 'CHECK', containerId: id, netns: att.netns, ifName: att.ifName, pod: att.pod, pluginDirs: this.settings().plugin_dirs };
    for (const p of att.config.plugins) {
      await execPlugin(p.type, inv, pluginStdin(att.config, p, att.runtimeConfig, att.result), this.timeoutMs());
    }
  }

  /** STATUS (cniVersion >= 1.1.0): each plugin reports whether it can serve ADDs. */
  async status(): Promise<void> {
    const config = this.network;
    if (!config || !versionAtLeast(config.cniVersion, '1.1.0')) return;
    const inv: Invocation = { command: 'STATUS', pluginDirs: this.settings().plugin_dirs };
    for (const p of config.plugins) await execPlugin(p.type, inv, pluginStdin(config, p, {}), this.timeoutMs());
  }

  /** GC (cniVersion >= 1.1.0, unless disableGC): plugins release everything not in the valid attachments. */
  async gc(validIds: readonly string[]): Promise<void> {
    const config = this.network;
    if (!config || !versionAtLeast(config.cniVersion, '1.1.0') || config.disableGC) return;
    const valid = validIds.map((id) => ({ containerID: id, ifname: IFNAME }));
    const inv: Invocation = { command: 'GC', pluginDirs: this.settings().plugin_dirs };
    for (const p of config.plugins) {
      await execPlugin(p.type, inv, pluginStdin(config, p, {}, undefined, { 'cni.dev/valid-attachments': valid }), this.timeoutMs());
    }
  }
}
