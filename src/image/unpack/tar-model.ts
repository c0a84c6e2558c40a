import { invalidArgument } from '../../core/errors';

/**
 * What one layer's extraction has created so far, by relative path. Each layer unpacks into a fresh
 * empty directory, so this model is the whole truth about that directory: no lstat races with
 * pending writes, and a later entry can never be written through a symlink or file an earlier one made.
 */
export type Kind = 'dir' | 'file' | 'symlink' | 'other';

export class TarModel {
  private readonly kinds = new Map<string, Kind>();

  constructor(private readonly what: string) {}

  /**
   * Normalises an entry name: strips leading "/" and "./", drops empty and "." parts.
   * Refuses "..": nothing in a layer may name a path outside it. Returns "" for the root.
   */
  normalize(name: string, field = 'path'): string {
    const parts: string[] = [];
    for (const p of name.split('/')) {
      if (p === '' || p === '.') continue;
      if (p === '..') throw this.hostile(name, `${field} contains ".."`);
      if (p.includes('\0')) throw this.hostile(name, `${field} contains NUL`);
      parts.push(p);
    }
    return parts.join('/');
  }

  hostile(name: string, why: string): Error {
    return invalidArgument(`${this.what}: refusing unsafe tar entry "${name.slice(0, 200)}": ${why}`);
  }

  get(rel: string): Kind | undefined {
    return this.kinds.get(rel);
  }

  /**
   * Checks every parent of rel is a directory this layer made, or absent (then it will be made
   * as one). Returns the parents to create, outermost first.
   */
  parentsToCreate(rel: string, name: string): string[] {
    const parts = rel.split('/');
    const missing: string[] = [];
    for (let i = 1; i < parts.length; i++) {
      const prefix = parts.slice(0, i).join('/');
      const k = this.kinds.get(prefix);
      if (k === undefined) missing.push(prefix);
      else if (k !== 'dir') throw this.hostile(name, `parent "${prefix}" is a ${k}, not a directory (write through a link refused)`);
    }
    return missing;
  }

  set(rel: string, kind: Kind): void {
    this.kinds.set(rel, kind);
  }

  /** Forgets rel and everything below it (the entry was replaced). */
  removeTree(rel: string): void {
    this.kinds.delete(rel);
    const prefix = rel + '/';
    for (const k of this.kinds.keys()) if (k.startsWith(prefix)) this.kinds.delete(k);
  }
}
