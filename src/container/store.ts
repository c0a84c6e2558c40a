import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../log/logger';
import { errorMessage } from '../core/errors';
import { readJson, removeStaleTemps, writeJsonAtomic } from '../store/atomic';
import type { ContainerRecord } from './types';

export const RECORD_VERSION = 1;

/** Container records, one versioned JSON file each: <root>/containers/<id>.json. */
export class RecordStore {
  constructor(readonly dir: string, private readonly log: Logger) {}

  file(id: string): string {
    return path.join(this.dir, `${id}.json`);
  }

  async init(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
    await removeStaleTemps(this.dir);
  }

  save(r: ContainerRecord): Promise<void> {
    return writeJsonAtomic(this.file(r.id), r);
  }

  async remove(id: string): Promise<void> {
    await fs.rm(this.file(id), { force: true });
  }

  /** Every readable record of a known version; others are logged and skipped. */
  async loadAll(): Promise<ContainerRecord[]> {
    let names: string[];
    try {
      names = (await fs.readdir(this.dir)).filter((n) => n.endsWith('.json') && !n.startsWith('.'));
    } catch {
      return [];
    }
    const out: ContainerRecord[] = [];
    for (const n of names) {
      try {
        const r = await readJson<ContainerRecord>(path.join(this.dir, n));
        if (r && r.version === RECORD_VERSION) out.push(r);
        else if (r) this.log.error('container record of an unknown version skipped', { file: n, version: (r as { version?: unknown }).version });
      } catch (e) {
        this.log.error('unreadable container record skipped', { file: n, error: errorMessage(e) });
      }
    }
    return out;
  }
}
