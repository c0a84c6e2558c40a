import { createHash } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import * as path from 'node:path';
import { errorMessage } from '../core/errors';
import { lockHolder } from '../daemon/lock';
import { ContentStore } from '../image/content/store';
import type { ImageRecord, Lease } from '../image/image-index';
import type { Index, Manifest } from '../image/media-types';
import { chainIds, SnapshotStore, treeUsage, type Usage } from '../image/snapshots';
import { readJson, writeJsonAtomic } from '../store/atomic';

/** What `corral check --storage` found and did. */
export interface StorageCheckResult {
  /** 0 healthy or repaired, 1 could not check or repair. */
  code: 0 | 1;
  checked: { images: number; blobs: number; layers: number };
  /** One line per repair made. */
  repaired: string[];
  /** One line per problem left unrepaired. */
  failed: string[];
}

interface IndexFile {
  version: 1;
  images: ImageRecord[];
  leases: Record<string, Lease>;
}

/** sha256 and size of a file, streamed. */
async function hashFile(file: string): Promise<{ digest: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(file)) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${h.digest('hex')}`, size };
}

/** Why a committed layer snapshot is not usable, or undefined when it is. */
async function snapshotProblem(snaps: SnapshotStore, chainId: string): Promise<string | undefined> {
  const st = await fs.stat(snaps.fsDir(chainId)).catch(() => undefined);
  if (!st?.isDirectory()) return 'its fs/ directory is missing (half-written)';
  let recorded: Usage | undefined;
  try {
    recorded = await readJson<Usage>(path.join(snaps.dir(chainId), 'usage.json'));
  } catch {
    return 'its usage.json is unreadable (half-written)';
  }
  if (!recorded || !Number.isInteger(recorded.inodes)) return 'its usage.json is missing (half-written)';
  // Layers are read-only lowerdirs: their inode count never changes after the commit, so a difference means lost files.
  const now = await treeUsage(snaps.fsDir(chainId));
  if (now.inodes !== recorded.inodes) return `it holds ${now.inodes} files where ${recorded.inodes} were unpacked`;
  return undefined;
}

function isRecord(r: unknown): r is ImageRecord {
  const x = r as ImageRecord;
  return !!x && typeof x.id === 'string' && typeof x.manifestDigest === 'string' && Array.isArray(x.layers) && Array.isArray(x.repoTags) && Array.isArray(x.repoDigests);
}

/**
 * Verifies the image store under root and repairs only what is corrupt: every blob (manifest, config, index)
 * against its digest and the sizes its parents record, every layer snapshot against what its commit recorded,
 * and every image record against its blobs and layers. Corrupt blobs and snapshots are removed, with the image
 * records that depend on them (kubelet pulls those again); healthy data is never touched. Refuses while a
 * daemon holds the root's lock.
 */
export async function checkStorage(root: string, out: (line: string) => void): Promise<StorageCheckResult> {
  const res: StorageCheckResult = { code: 0, checked: { images: 0, blobs: 0, layers: 0 }, repaired: [], failed: [] };
  const holder = await lockHolder(root);
  if (holder !== undefined) {
    res.failed.push(`the corral daemon (pid ${holder}) is running on ${root}: stop it first`);
    res.code = 1;
    return res;
  }
  const content = new ContentStore(path.join(root, 'content'));
  const snaps = new SnapshotStore(path.join(root, 'snapshots'));
  const indexFile = path.join(root, 'images', 'index.json');
  const repair = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
      res.repaired.push(what);
      out(`repaired: ${what}`);
    } catch (e) {
      res.failed.push(`${what}: ${errorMessage(e)}`);
      out(`FAILED:   ${what}: ${errorMessage(e)}`);
    }
  };
  out(`storage check of ${root}`);

  // Image records.
  let index: IndexFile = { version: 1, images: [], leases: {} };
  try {
    index = (await readJson<IndexFile>(indexFile)) ?? index;
    if (!Array.isArray(index.images)) throw new Error('no images list');
  } catch (e) {
    const aside = `${indexFile}.corrupt-${Date.now()}`;
    await repair(`image records ${indexFile} unreadable (${errorMessage(e)}): moved to ${aside}; every image will be pulled again`, () => fs.rename(indexFile, aside));
    index = { version: 1, images: [], leases: {} };
  }
  const bad = new Map<string, string>(); // image id → why it is removed
  const records = index.images.filter((r, i) => {
    if (isRecord(r)) return true;
    bad.set(`#${i}`, 'the record is malformed');
    return false;
  });
  res.checked.images = records.length;

  // Blobs: content must hash to its name.
  const corruptBlobs = new Map<string, string>();
  let blobNames: string[] = [];
  try {
    blobNames = (await fs.readdir(content.blobsDir)).filter((n) => /^[a-f0-9]{64}$/.test(n));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') res.failed.push(`cannot list ${content.blobsDir}: ${errorMessage(e)}`);
  }
  for (const n of blobNames) {
    const digest = `sha256:${n}`;
    res.checked.blobs++;
    try {
      const got = await hashFile(content.path(digest));
      if (got.digest !== digest) corruptBlobs.set(digest, `its ${got.size} bytes hash to ${got.digest}`);
    } catch (e) {
      corruptBlobs.set(digest, `unreadable: ${errorMessage(e)}`);
    }
  }

  // Layer snapshots: committed dirs must be complete; .tmp-* are interrupted unpacks.
  const corruptLayers = new Map<string, string>();
  let snapNames: string[] = [];
  try {
    snapNames = await fs.readdir(snaps.root);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') res.failed.push(`cannot list ${snaps.root}: ${errorMessage(e)}`);
  }
  for (const n of snapNames) {
    if (n.startsWith('.tmp-')) {
      await repair(`removed ${path.join(snaps.root, n)} (an interrupted unpack)`, () => fs.rm(path.join(snaps.root, n), { recursive: true, force: true }));
    } else if (/^[a-f0-9]{64}$/.test(n)) {
      res.checked.layers++;
      const why = await snapshotProblem(snaps, `sha256:${n}`).catch((e) => `unreadable: ${errorMessage(e)}`);
      if (why) corruptLayers.set(`sha256:${n}`, why);
    }
  }

  // Each record against its blobs (present, uncorrupted, sizes as their parents say) and its layers.
  for (const r of records) {
    const why = await recordProblem(r, content, snaps, corruptBlobs, corruptLayers);
    if (why) bad.set(r.id, why);
  }

  for (const [digest, why] of corruptBlobs) await repair(`removed blob ${digest}: ${why}`, () => content.delete(digest));
  for (const [chain, why] of corruptLayers) {
    const users = Object.entries(index.leases ?? {}).filter(([, l]) => l.chainIds?.includes(chain)).map(([h]) => h);
    await repair(`removed layer ${chain}: ${why}${users.length ? ` (used by ${users.join(', ')}: recreate them)` : ''}`, () => snaps.remove(chain));
  }
  if (bad.size > 0) {
    const keep = records.filter((r) => !bad.has(r.id));
    const names = [...bad].map(([id, why]) => {
      const r = records.find((x) => x.id === id);
      return `${id}${r?.repoTags.length ? ` (${r.repoTags.join(', ')})` : ''}: ${why}`;
    });
    await repair(`removed image records, to be pulled again: ${names.join('; ')}`, () => writeJsonAtomic(indexFile, { ...index, images: keep }, 0o600));
  }

  const c = res.checked;
  out(`checked ${c.images} image records, ${c.blobs} blobs, ${c.layers} layer snapshots`);
  if (res.failed.length > 0) {
    for (const f of res.failed) out(`could not repair: ${f}`);
    res.code = 1;
  } else if (res.repaired.length > 0) {
    out(`storage repaired (${res.repaired.length} repairs); content no image uses any more is collected when the daemon starts`);
  } else {
    out('storage healthy');
  }
  return res;
}

/** Why an image record cannot be used, or undefined. */
async function recordProblem(
  r: ImageRecord,
  content: ContentStore,
  snaps: SnapshotStore,
  corruptBlobs: Map<string, string>,
  corruptLayers: Map<string, string>,
): Promise<string | undefined> {
  const blob = async (digest: string, size: number | undefined, what: string): Promise<Buffer | string> => {
    if (corruptBlobs.has(digest)) return `its ${what} ${digest} is corrupt`;
    let data: Buffer;
    try {
      data = await content.read(digest);
    } catch {
      return `its ${what} ${digest} is missing`;
    }
    if (size !== undefined && data.length !== size) return `its ${what} ${digest} has ${data.length} bytes, ${size} recorded`;
    return data;
  };
  let manifestSize: number | undefined;
  if (r.indexDigest) {
    const idx = await blob(r.indexDigest, undefined, 'index');
    if (typeof idx === 'string') return idx;
    try {
      manifestSize = (JSON.parse(idx.toString('utf8')) as Index).manifests?.find((m) => m.digest === r.manifestDigest)?.size;
    } catch {
      return `its index ${r.indexDigest} is not JSON`;
    }
  }
  const mdata = await blob(r.manifestDigest, manifestSize, 'manifest');
  if (typeof mdata === 'string') return mdata;
  let manifest: Manifest;
  try {
    manifest = JSON.parse(mdata.toString('utf8')) as Manifest;
  } catch {
    return `its manifest ${r.manifestDigest} is not JSON`;
  }
  if (manifest.config?.digest !== r.id) return `its manifest names config ${manifest.config?.digest}, not ${r.id}`;
  const cdata = await blob(r.id, manifest.config.size, 'config');
  if (typeof cdata === 'string') return cdata;
  let diffIds: string[];
  try {
    diffIds = (JSON.parse(cdata.toString('utf8')) as { rootfs?: { diff_ids?: string[] } }).rootfs?.diff_ids ?? [];
  } catch {
    return `its config ${r.id} is not JSON`;
  }
  const chains = chainIds(diffIds);
  if (chains.length !== r.layers.length || r.layers.some((l, i) => l.chainId !== chains[i])) return 'its layers do not match its config';
  for (const l of r.layers) {
    if (corruptLayers.has(l.chainId)) return `its layer ${l.chainId} is corrupt`;
    if (!(await snaps.has(l.chainId))) return `its layer ${l.chainId} is missing`;
  }
  return undefined;
}
