import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Dispatcher } from 'undici';
import type { Registry } from 'prom-client';
import type { CorralConfig } from '../config/schema';
import { CorralError, canceled, deadlineExceeded, invalidArgument, isCorralError, notFound, unavailable } from '../core/errors';
import { faultPoint } from '../core/fault';
import { KeyedMutex } from '../core/keyed-mutex';
import { SingleFlight } from '../core/single-flight';
import { nowNs } from '../core/ids';
import { nullLogger, type Logger } from '../log/logger';
import { ContentStore } from './content/store';
import { ImageIndex, type ImageRecord, type LayerRecord } from './image-index';
import {
  isIndex,
  isManifest,
  layerCompression,
  type Descriptor,
  type ImageConfig,
  type Index,
  type Manifest,
} from './media-types';
import { PullMetrics } from './metrics';
import { isPinned } from './pinned';
import { formatPlatform, hostPlatform, platformScore } from './platform';
import { candidates, isDigest, isImageId, repoName, type Reference } from './reference';
import { credentialsKey, type Credentials } from './registry/auth';
import { RegistryClient, type RegistrySession } from './registry/client';
import { resolveEndpoints } from './registry/hosts';
import { bothSlots, Semaphore, type Slots } from './semaphore';
import { chainIds, SnapshotStore } from './snapshots';
import { ExtractorPool } from './unpack/worker-pool';

export interface ImageServiceOptions {
  /** Live config (reloadable settings are read at use). */
  config: CorralConfig;
  log?: Logger;
  metrics?: Registry;
  /** Overrides the HTTP dispatcher (tests). */
  dispatcher?: Dispatcher;
  /** Registry client retry tuning (tests). */
  retry?: { attempts?: number; backoffMs?: number };
}

/** An image as the service reports it. */
export interface ImageInfo extends ImageRecord {
  pinned: boolean;
}

export interface ImageFsUsage {
  mountpoint: string;
  usedBytes: bigint;
  inodesUsed: bigint;
  timestampNs: bigint;
}

export interface PullResult {
  image: ImageInfo;
  downloadedBytes: number;
  skippedBytes: number;
}

interface PullStats {
  downloaded: number;
  skipped: number;
}

/** Finds the mountpoint of the filesystem holding p (longest mount prefix in /proc/self/mounts). */
async function mountpointOf(p: string): Promise<string> {
  const real = await fs.realpath(p).catch(() => p);
  const text = await fs.readFile('/proc/self/mounts', 'utf8').catch(() => '');
  let best = '/';
  for (const line of text.split('\n')) {
    const mp = (line.split(' ')[1] ?? '').replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (!mp) continue;
    if ((real === mp || real.startsWith(mp.endsWith('/') ? mp : mp + '/')) && mp.length > best.length) best = mp;
  }
  return best;
}

/** Per-host download cap, as a multiple of the per-pull limit (see ImageService.limiter). */
const HOST_SLOTS_PER_DOWNLOAD = 4;

function errorReason(e: unknown): string {
  if (e instanceof CorralError) return e.message.startsWith('RegistryUnavailable') ? 'RegistryUnavailable' : e.code;
  return 'Internal';
}

/**
 * Pulls images from OCI registries into a content store and per-layer snapshots, and keeps the
 * image records. Layout under <root>: content/ (manifest, index and config blobs; ingest), snapshots/
 * (layer dirs by chain id), images/index.json (records and leases). Compressed layer blobs are not
 * kept: each layer streams from the registry through its digest verifier straight into a snapshot.
 */
export class ImageService {
  readonly root: string;
  readonly content: ContentStore;
  readonly snapshots: SnapshotStore;
  private readonly index: ImageIndex;
  private readonly client: RegistryClient;
  private readonly log: Logger;
  private readonly metrics: PullMetrics;
  private readonly extractors: ExtractorPool;
  private readonly pullFlight = new SingleFlight<ImageRecord>();
  private readonly layerFlight = new SingleFlight<void>();
  private readonly recordLock = new KeyedMutex();
  private readonly hostLimits = new Map<string, Semaphore>();
  private activePulls = 0;
  private gcPending = false;
  /** The running collection; a pull waits for it so no layer it found present is deleted under it. */
  private gcRunning?: Promise<void>;
  private fsMountpoint?: string;

  private constructor(private readonly opts: ImageServiceOptions) {
    this.root = opts.config.root;
    this.log = opts.log ?? nullLogger;
    this.content = new ContentStore(path.join(this.root, 'content'));
    this.snapshots = new SnapshotStore(path.join(this.root, 'snapshots'));
    this.index = new ImageIndex(path.join(this.root, 'images'));
    this.metrics = new PullMetrics(opts.metrics);
    this.extractors = new ExtractorPool({ log: this.log });
    const cfg = opts.config.image;
    this.client = new RegistryClient({
      dispatcher: opts.dispatcher,
      log: this.log,
      stallBytes: cfg.stall_bytes,
      stallWindowMs: cfg.stall_window_seconds * 1000,
      attempts: opts.retry?.attempts,
      backoffMs: opts.retry?.backoffMs,
    });
  }

  /** Opens the store: removes interrupted downloads and unpacks, loads the index, collects garbage. */
  static async open(opts: ImageServiceOptions): Promise<ImageService> {
    const s = new ImageService(opts);
    await fs.mkdir(s.root, { recursive: true, mode: 0o700 });
    const ingests = await s.content.init();
    if (ingests.length > 0) s.log.info('removed interrupted downloads', { count: ingests.length, paths: ingests });
    const snaps = await s.snapshots.init();
    if (snaps.length > 0) s.log.info('removed half-unpacked layer snapshots', { count: snaps.length, paths: snaps });
    await fs.mkdir(path.join(s.root, 'images'), { recursive: true, mode: 0o700 });
    await s.index.load();
    await s.dropBrokenImages();
    const { blobs, layers } = await s.collect();
    // At start-up nothing pulls: what is unreferenced was left by a pull interrupted before its record was written.
    if (blobs.length + layers.length > 0) s.log.info('repaired: removed blobs and layers no image references (an interrupted pull)', { blobs, layers });
    return s;
  }

  /** Boots the layer extraction workers (one per parallel download) so the first pull does not wait for them. */
  warmUp(): Promise<void> {
    return this.extractors.prewarm(this.cfg.image.max_concurrent_downloads);
  }

  async close(): Promise<void> {
    await this.client.close();
    await this.extractors.close();
  }

  private get cfg(): CorralConfig {
    return this.opts.config;
  }

  private info(r: ImageRecord): ImageInfo {
    const patterns = [...this.cfg.image.pinned_images];
    if (this.cfg.runtime.pause_image) patterns.push(this.cfg.runtime.pause_image);
    return { ...structuredClone(r), pinned: isPinned(patterns, r.repoTags, r.repoDigests) };
  }

  // ---- local lookups ----

  /** Finds a stored image by id (full, "sha256:"-prefixed, or a unique hex prefix ≥ 12), tag or digest reference. */
  resolveLocal(ref: string): ImageRecord | undefined {
    const all = this.index.all();
    if (isImageId(ref)) {
      const id = ref.startsWith('sha256:') ? ref : `sha256:${ref}`;
      const hit = this.index.get(id);
      if (hit) return hit;
    }
    const hex = ref.replace(/^sha256:/, '');
    if (/^[a-f0-9]{12,63}$/.test(hex)) {
      const hits = all.filter((r) => r.id.slice(7).startsWith(hex));
      if (hits.length === 1) return hits[0];
    }
    let cands: Reference[];
    try {
      cands = candidates(ref, this.cfg.registries.unqualified_search);
    } catch {
      return undefined;
    }
    for (const c of cands) {
      const name = repoName(c);
      if (c.digest) {
        const r = all.find((x) => x.repoDigests.includes(`${name}@${c.digest}`) || (x.manifestDigest === c.digest && x.repoDigests.some((d) => d.startsWith(name + '@'))));
        if (r) return r;
      } else if (c.tag) {
        const r = all.find((x) => x.repoTags.includes(`${name}:${c.tag}`));
        if (r) return r;
      }
    }
    return undefined;
  }

  status(ref: string): ImageInfo | undefined {
    const r = this.resolveLocal(ref);
    return r ? this.info(r) : undefined;
  }

  /** All images, or those matching filter (a reference or id, as resolveLocal understands). */
  list(filter?: string): ImageInfo[] {
    if (filter) {
      const r = this.resolveLocal(filter);
      return r ? [this.info(r)] : [];
    }
    return this.index.all().map((r) => this.info(r));
  }

  /** The image's config JSON as stored. */
  async imageConfig(imageId: string): Promise<ImageConfig> {
    const r = this.index.get(imageId);
    if (!r) throw notFound(`image ${imageId} not found`);
    return JSON.parse((await this.content.read(r.id)).toString('utf8')) as ImageConfig;
  }

  async manifestJson(imageId: string): Promise<unknown> {
    const r = this.index.get(imageId);
    if (!r) throw notFound(`image ${imageId} not found`);
    return JSON.parse((await this.content.read(r.manifestDigest)).toString('utf8'));
  }

  /** overlayfs lowerdirs for the image, top layer first. */
  layerDirs(imageId: string): string[] {
    const r = this.index.get(imageId);
    if (!r) throw notFound(`image ${imageId} not found`);
    return r.layers.map((l) => this.snapshots.fsDir(l.chainId)).reverse();
  }

  // ---- leases ----

  /** Keeps the image's layers while `holder` (e.g. a container id) uses them, even if the image is removed. */
  async acquire(imageId: string, holder: string): Promise<string[]> {
    return this.recordLock.run('index', async () => {
      const r = this.index.get(imageId);
      if (!r) throw notFound(`image ${imageId} not found`);
      await this.index.update((_imgs, leases) => {
        leases.set(holder, { imageId, chainIds: r.layers.map((l) => l.chainId) });
      });
      return this.layerDirs(imageId);
    });
  }

  /** Drops holder's lease (idempotent) and collects layers no longer used. */
  async release(holder: string): Promise<void> {
    await this.recordLock.run('index', async () => {
      if (!this.index.allLeases().has(holder)) return;
      await this.index.update((_imgs, leases) => void leases.delete(holder));
    });
    await this.gc();
  }

  /** Every lease holder, so the container area can drop leases of containers that no longer exist. */
  leaseHolders(): string[] {
    return [...this.index.allLeases().keys()];
  }

  holders(imageId: string): string[] {
    return [...this.index.allLeases()].filter(([, l]) => l.imageId === imageId).map(([h]) => h);
  }

  // ---- remove + gc ----

  /**
   * Removes by id, tag or digest. A tag of an image with other tags only untags it. An image in use
   * by a container disappears from listings but its layers stay until the lease is released.
   */
  async remove(ref: string): Promise<void> {
    const r = this.resolveLocal(ref);
    if (!r) return;
    await this.recordLock.run('index', async () => {
      const cur = this.index.get(r.id);
      if (!cur) return;
      let untagOnly = false;
      let tag: string | undefined;
      if (!isImageId(ref) && !/^(sha256:)?[a-f0-9]{12,63}$/.test(ref)) {
        const c = candidates(ref, this.cfg.registries.unqualified_search).find((x) => x.tag && !x.digest && cur.repoTags.includes(`${repoName(x)}:${x.tag}`));
        if (c) {
          tag = `${repoName(c)}:${c.tag}`;
          untagOnly = cur.repoTags.length > 1;
        }
      }
      await this.index.update((imgs) => {
        if (untagOnly) imgs.get(cur.id)!.repoTags = cur.repoTags.filter((t) => t !== tag);
        else imgs.delete(cur.id);
      });
      this.log.info(untagOnly ? 'image untagged' : 'image removed', { image: cur.id, tag });
    });
    await this.gc();
  }

  /** Deletes blobs and layer dirs no image or lease references. Deferred while pulls run. */
  async gc(): Promise<void> {
    if (this.activePulls > 0) {
      this.gcPending = true;
      return;
    }
    if (this.gcRunning) return this.gcRunning;
    this.gcRunning = this.collect().then(() => undefined).finally(() => (this.gcRunning = undefined));
    return this.gcRunning;
  }

  /**
   * Image records whose layer snapshots are gone (removed by hand or by `corral check --storage`) cannot
   * make a rootfs: drop them so kubelet pulls the image again. Leases keep their chain ids.
   */
  private async dropBrokenImages(): Promise<void> {
    const broken: { id: string; missing: string[] }[] = [];
    for (const r of this.index.all()) {
      const missing: string[] = [];
      for (const l of r.layers) if (!(await this.snapshots.has(l.chainId))) missing.push(l.chainId);
      for (const b of [r.id, r.manifestDigest]) if (!(await this.content.has(b))) missing.push(b);
      if (missing.length > 0) broken.push({ id: r.id, missing });
    }
    if (broken.length === 0) return;
    await this.index.update((imgs) => {
      for (const b of broken) imgs.delete(b.id);
    });
    for (const b of broken) this.log.warn('repaired: removed an image record whose content is missing (it will be pulled again)', { image: b.id, missing: b.missing });
  }

  /** Deletes unreferenced blobs and layers; returns what it deleted (digests, chain ids). */
  private async collect(): Promise<{ blobs: string[]; layers: string[] }> {
    this.gcPending = false;
    const removed = { blobs: [] as string[], layers: [] as string[] };
    const blobs = new Set<string>();
    const chains = new Set<string>();
    for (const r of this.index.all()) {
      blobs.add(r.id);
      blobs.add(r.manifestDigest);
      if (r.indexDigest) blobs.add(r.indexDigest);
      for (const l of r.layers) chains.add(l.chainId);
    }
    for (const l of this.index.allLeases().values()) for (const c of l.chainIds) chains.add(c);
    for (const b of await this.content.list()) {
      if (this.activePulls > 0) return (this.gcPending = true), removed;
      if (!blobs.has(b.digest)) {
        await this.content.delete(b.digest);
        removed.blobs.push(b.digest);
      }
    }
    for (const c of await this.snapshots.list()) {
      if (this.activePulls > 0) return (this.gcPending = true), removed;
      if (!chains.has(c)) {
        await this.snapshots.remove(c);
        removed.layers.push(c);
        this.log.debug('layer collected', { chainId: c });
      }
    }
    return removed;
  }

  // ---- fs info ----

  async fsInfo(): Promise<ImageFsUsage> {
    this.fsMountpoint ??= await mountpointOf(this.root);
    let bytes = 0;
    let inodes = 0;
    for (const b of await this.content.list()) {
      bytes += Math.ceil(b.size / 4096) * 4096;
      inodes++;
    }
    for (const c of await this.snapshots.list()) {
      const u = await this.snapshots.usage(c).catch(() => ({ bytes: 0, inodes: 0 }));
      bytes += u.bytes;
      inodes += u.inodes;
    }
    return { mountpoint: this.fsMountpoint, usedBytes: BigInt(bytes), inodesUsed: BigInt(inodes), timestampNs: nowNs() };
  }

  // ---- pull ----

  /**
   * Pulls an image and returns its record. Concurrent pulls of the same reference share one
   * transfer; a caller that gives up (signal) leaves the transfer running for the next retry.
   */
  async pull(ref: string, creds?: Credentials, signal?: AbortSignal): Promise<PullResult> {
    const cands = candidates(ref, this.cfg.registries.unqualified_search);
    const key = `${cands.map((c) => `${repoName(c)}:${c.tag ?? ''}@${c.digest ?? ''}`).join(',')}|${credentialsKey(creds)}`;
    const stats: PullStats = { downloaded: 0, skipped: 0 };
    const started = Date.now();
    const shared = this.pullFlight.do(key, () => this.pullCandidates(cands, creds, stats));
    try {
      const rec = await raceSignal(shared, signal);
      this.metrics.pulls.inc({ outcome: 'success', reason: '' });
      this.metrics.duration.observe({ outcome: 'success' }, (Date.now() - started) / 1000);
      return { image: this.info(rec), downloadedBytes: stats.downloaded, skippedBytes: stats.skipped };
    } catch (e) {
      this.metrics.pulls.inc({ outcome: 'failure', reason: errorReason(e) });
      this.metrics.duration.observe({ outcome: 'failure' }, (Date.now() - started) / 1000);
      throw e;
    }
  }

  private async pullCandidates(cands: Reference[], creds: Credentials | undefined, stats: PullStats): Promise<ImageRecord> {
    const timeout = this.cfg.image.pull_timeout_seconds;
    const signal = timeout > 0 ? AbortSignal.timeout(timeout * 1000) : new AbortController().signal;
    this.activePulls++;
    try {
      // A collection already deleting stops at its next step; wait so nothing we see present vanishes.
      await this.gcRunning?.catch(() => {});
      let last: unknown;
      for (const c of cands) {
        try {
          return await this.pullOne(c, creds, signal, stats);
        } catch (e) {
          last = e;
          if (!isCorralError(e, 'NotFound')) break;
        }
      }
      if (signal.aborted && !isCorralError(last)) throw deadlineExceeded(`pull timed out after ${timeout} s`);
      throw last;
    } catch (e) {
      if (signal.aborted && (isCorralError(e, 'Canceled') || !isCorralError(e))) throw deadlineExceeded(`pull of ${cands.map(repoName).join(', ')} exceeded image.pull_timeout_seconds (${timeout} s)`);
      throw e;
    } finally {
      this.activePulls--;
      if (this.activePulls === 0 && this.gcPending) void this.gc().catch((e) => this.log.warn('image gc failed', { error: (e as Error).message }));
    }
  }

  /**
   * Download slots: each pull runs at most image.max_concurrent_downloads layers at once, and a
   * registry host serves at most HOST_SLOTS_PER_DOWNLOAD times that across all pulls. A slow pull
   * therefore never holds every slot of a registry another image's pull needs.
   */
  private limiter(host: string): Slots {
    const perPull = new Semaphore(() => this.cfg.image.max_concurrent_downloads);
    let h = this.hostLimits.get(host);
    if (!h) {
      h = new Semaphore(() => this.cfg.image.max_concurrent_downloads * HOST_SLOTS_PER_DOWNLOAD);
      this.hostLimits.set(host, h);
    }
    return bothSlots(perPull, h);
  }

  /** Resolves the manifest through the endpoints (mirrors first), returning the session that answered. */
  private async resolve(ref: Reference, creds: Credentials | undefined, signal: AbortSignal) {
    const endpoints = resolveEndpoints(ref, this.cfg.registries);
    let last: unknown;
    for (const ep of endpoints) {
      const session = this.client.session(ep, creds);
      try {
        const top = await session.getManifest(ref.digest ?? ref.tag ?? 'latest', signal);
        return { session, top };
      } catch (e) {
        last = e;
        if (signal.aborted) throw e;
        if (ep.mirror) {
          this.log.info('mirror failed, trying next endpoint', { mirror: ep.host, error: (e as Error).message });
          continue;
        }
        throw e;
      }
    }
    if (last instanceof CorralError && last.code === 'NotFound') throw last;
    throw unavailable(`RegistryUnavailable: no mirror of ${repoName(ref)} answered (mirror_only): ${(last as Error | undefined)?.message ?? 'no locations'}`);
  }

  private async pullOne(ref: Reference, creds: Credentials | undefined, signal: AbortSignal, stats: PullStats): Promise<ImageRecord> {
    const name = repoName(ref);
    const { session, top } = await this.resolve(ref, creds, signal);
    let manifestBlob = top;
    let indexDigest: string | undefined;
    const platform = hostPlatform();
    if (isIndex(top.mediaType)) {
      indexDigest = top.digest;
      const idx = JSON.parse(top.data.toString('utf8')) as Index;
      if (!Array.isArray(idx.manifests)) throw unavailable(`RegistryUnavailable: index ${top.digest} of ${name} has no manifests`);
      const ranked = idx.manifests
        .map((d) => ({ d, score: platformScore(platform, d.platform) }))
        .filter((x) => x.score >= 0 && isManifest(x.d.mediaType))
        .sort((a, b) => b.score - a.score);
      if (ranked.length === 0) {
        const have = idx.manifests.map((d) => (d.platform ? formatPlatform(d.platform) : '?')).join(', ');
        throw notFound(`image ${name}: no manifest for platform ${formatPlatform(platform)} (index has: ${have || 'none'})`);
      }
      manifestBlob = await session.getManifest(ranked[0].d.digest, signal);
      if (!isManifest(manifestBlob.mediaType)) throw invalidArgument(`image ${name}: index entry ${ranked[0].d.digest} is not an image manifest`);
    }
    const manifest = JSON.parse(manifestBlob.data.toString('utf8')) as Manifest;
    if (!manifest.config?.digest || !Array.isArray(manifest.layers)) throw invalidArgument(`image ${name}: manifest ${manifestBlob.digest} lacks config or layers`);
    for (const l of manifest.layers) {
      if (!layerCompression(l.mediaType)) throw invalidArgument(`image ${name}: unsupported layer media type "${l.mediaType}"`);
      if (!isDigest(l.digest) || !Number.isSafeInteger(l.size) || l.size < 0) throw invalidArgument(`image ${name}: bad layer descriptor ${JSON.stringify(l).slice(0, 200)}`);
    }

    // Config.
    let configData: Buffer;
    if (await this.content.has(manifest.config.digest, manifest.config.size)) {
      configData = await this.content.read(manifest.config.digest);
      stats.skipped += manifest.config.size;
      this.metrics.skippedBytes.inc(manifest.config.size);
    } else {
      configData = await session.getBlobBuffer(manifest.config, signal);
      stats.downloaded += configData.length;
      this.metrics.bytes.inc(configData.length);
      await this.content.put(manifest.config.digest, configData);
    }
    faultPoint('image.pull.after-config-stored');
    let config: ImageConfig;
    try {
      config = JSON.parse(configData.toString('utf8')) as ImageConfig;
    } catch {
      throw invalidArgument(`image ${name}: config ${manifest.config.digest} is not JSON`);
    }
    const diffIds = config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== manifest.layers.length) {
      throw invalidArgument(`image ${name}: config lists ${diffIds.length} diff ids for ${manifest.layers.length} layers`);
    }
    const chains = chainIds(diffIds);

    // Layers, in parallel (bounded per registry host), each unpacked while it streams in.
    const limiter = this.limiter(session.host);
    const layers: LayerRecord[] = manifest.layers.map((l, i) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size, diffId: diffIds[i], chainId: chains[i] }));
    const results = await Promise.allSettled(layers.map((l) => this.ensureLayer(session, l, limiter, signal, stats)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;

    await this.content.put(manifestBlob.digest, manifestBlob.data);
    if (indexDigest) await this.content.put(indexDigest, top.data);
    faultPoint('image.pull.after-manifest-stored');

    // Record: tags move to this image; digests accumulate.
    const id = manifest.config.digest;
    const topDigest = indexDigest ?? manifestBlob.digest;
    return this.recordLock.run('index', async () => {
      faultPoint('image.pull.before-record');
      await this.index.update((imgs) => {
        const tag = ref.tag ? `${name}:${ref.tag}` : undefined;
        if (tag) for (const other of imgs.values()) if (other.id !== id) other.repoTags = other.repoTags.filter((t) => t !== tag);
        const prev = imgs.get(id);
        const digestRef = `${name}@${topDigest}`;
        const rec: ImageRecord = {
          id,
          repoTags: [...new Set([...(prev?.repoTags ?? []), ...(tag ? [tag] : [])])],
          repoDigests: [...new Set([...(prev?.repoDigests ?? []), digestRef])],
          size: manifestBlob.data.length + manifest.config.size + manifest.layers.reduce((a, l) => a + l.size, 0),
          manifestDigest: manifestBlob.digest,
          manifestMediaType: manifestBlob.mediaType,
          indexDigest,
          layers,
          user: config.config?.User ?? '',
          platform: formatPlatform({ os: config.os ?? 'linux', architecture: config.architecture ?? platform.architecture, variant: config.variant }),
          pulledAt: prev?.pulledAt ?? new Date().toISOString(),
        };
        imgs.set(id, rec);
      });
      this.log.info('image pulled', { image: name, id, downloaded: stats.downloaded, skipped: stats.skipped });
      return this.index.get(id)!;
    });
  }

  /**
   * Makes sure the layer's snapshot is committed, once per chain id at a time. A chain id already
   * unpacked downloads nothing. Compressed layer blobs are never stored (as containers-storage does):
   * only the unpacked snapshot and the layer's digest/size/diffId/chainId in the image record.
   */
  private ensureLayer(session: RegistrySession, l: LayerRecord, limiter: Slots, signal: AbortSignal, stats: PullStats): Promise<void> {
    return this.layerFlight.do(l.chainId, async () => {
      if (await this.snapshots.has(l.chainId)) {
        stats.skipped += l.size;
        this.metrics.skippedBytes.inc(l.size);
        return;
      }
      await limiter.run(() => this.download(session, l, signal, stats));
    });
  }

  /**
   * Streams a layer from the registry straight into a temp snapshot: body → sha256 + size verifier
   * (in fetchBlob) → decompress → untar. A resumed transfer (HTTP Range) feeds the same verifier and
   * extractor from the byte offset reached. Any failure, including a digest mismatch found at the
   * end, discards the temp snapshot.
   */
  private async download(session: RegistrySession, l: LayerRecord, signal: AbortSignal, stats: PullStats): Promise<void> {
    const snap = await this.snapshots.prepare();
    const ex = this.extractors.create(snap.fs, layerCompression(l.mediaType)!, `layer ${l.digest}`, l.size);
    try {
      const desc: Descriptor = { mediaType: l.mediaType, digest: l.digest, size: l.size };
      await session.fetchBlob(
        desc,
        (chunk) => {
          stats.downloaded += chunk.length;
          this.metrics.bytes.inc(chunk.length);
          // Mid-unpack: the temp snapshot dir exists and the extractor is writing into it.
          return ex.write(chunk).then(() => faultPoint('image.pull.mid-layer'));
        },
        signal,
      );
      const res = await ex.finish();
      if (res.diffId !== l.diffId) throw unavailable(`RegistryUnavailable: layer ${l.digest}: uncompressed digest ${res.diffId} does not match the config's diff id ${l.diffId}`);
      await this.snapshots.commit(snap, l.chainId);
      faultPoint('image.pull.after-snapshot-commit');
    } catch (e) {
      await ex.abort();
      await this.snapshots.discard(snap);
      throw e;
    }
  }
}

/** Waits for p, or rejects when signal aborts first (p keeps running for others). */
function raceSignal<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(canceled('pull cancelled by the caller'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(canceled('pull cancelled by the caller; it continues in the background'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

