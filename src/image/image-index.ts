import * as path from 'node:path';
import { readJson, writeJsonAtomic } from '../store/atomic';

export interface LayerRecord {
  digest: string;
  mediaType: string;
  size: number;
  diffId: string;
  chainId: string;
}

/** One stored image. id is the config digest. */
export interface ImageRecord {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  /** Bytes of manifest + config + compressed layers. */
  size: number;
  manifestDigest: string;
  manifestMediaType: string;
  /** The index (manifest list) the manifest was chosen from, when pulled through one. */
  indexDigest?: string;
  layers: LayerRecord[];
  /** User from the image config ("" when unset). */
  user: string;
  platform: string;
  pulledAt: string;
}

export interface Lease {
  imageId: string;
  chainIds: string[];
}

interface IndexFile {
  version: 1;
  images: ImageRecord[];
  leases: Record<string, Lease>;
}

/**
 * The image records and leases in <root>/images/index.json, written atomically (disk first, then
 * memory). Small: one entry per image.
 */
export class ImageIndex {
  private images = new Map<string, ImageRecord>();
  private leases = new Map<string, Lease>();
  readonly file: string;

  constructor(dir: string) {
    this.file = path.join(dir, 'index.json');
  }

  async load(): Promise<void> {
    const f = await readJson<IndexFile>(this.file);
    this.images = new Map((f?.images ?? []).map((r) => [r.id, r]));
    this.leases = new Map(Object.entries(f?.leases ?? {}));
  }

  private async save(images: Map<string, ImageRecord>, leases: Map<string, Lease>): Promise<void> {
    const f: IndexFile = { version: 1, images: [...images.values()], leases: Object.fromEntries(leases) };
    await writeJsonAtomic(this.file, f, 0o600);
    this.images = images;
    this.leases = leases;
  }

  all(): ImageRecord[] {
    return [...this.images.values()];
  }

  get(id: string): ImageRecord | undefined {
    return this.images.get(id);
  }

  allLeases(): Map<string, Lease> {
    return this.leases;
  }

  /** Applies a change to copies, persists, then swaps the copies in. */
  async update(fn: (images: Map<string, ImageRecord>, leases: Map<string, Lease>) => void): Promise<void> {
    const images = new Map([...this.images].map(([k, v]) => [k, structuredClone(v)]));
    const leases = new Map([...this.leases].map(([k, v]) => [k, structuredClone(v)]));
    fn(images, leases);
    await this.save(images, leases);
  }
}
