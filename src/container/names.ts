import { alreadyExists } from '../core/errors';

interface Reservation {
  id: string;
  hash: string;
  /** The creation, running or done (resolves with the id). */
  done: Promise<string>;
}

/**
 * Container names per pod, keyed by pod id + name + attempt. A synchronous check-and-set, so two
 * concurrent creates cannot both pass: a retry with the same configuration joins the earlier creation
 * (or gets its id), a different configuration is AlreadyExists. Failed creations free their name.
 */
export class NameRegistry {
  private readonly byKey = new Map<string, Reservation>();

  static key(sandboxId: string, name: string, attempt: number): string {
    return `${sandboxId}/${name}/${attempt}`;
  }

  /**
   * Returns the earlier creation's promise for a matching retry; otherwise reserves the key for `id`
   * and runs `create`. Throws AlreadyExists when the key is held with another configuration.
   */
  reserve(key: string, hash: string, id: string, create: () => Promise<string>): Promise<string> {
    const held = this.byKey.get(key);
    if (held) {
      if (held.hash !== hash) {
        throw alreadyExists(`container name ${JSON.stringify(key)} is already in use by ${held.id} with a different configuration`);
      }
      return held.done;
    }
    const r: Reservation = { id, hash, done: Promise.resolve(id) };
    this.byKey.set(key, r);
    r.done = create();
    r.done.catch(() => {
      if (this.byKey.get(key) === r) this.byKey.delete(key);
    });
    return r.done;
  }

  /** Records an existing container's name (recovery). */
  restore(key: string, hash: string, id: string): void {
    this.byKey.set(key, { id, hash, done: Promise.resolve(id) });
  }

  /** Frees the name held by id (on removal). */
  release(key: string, id: string): void {
    if (this.byKey.get(key)?.id === id) this.byKey.delete(key);
  }

  holder(key: string): string | undefined {
    return this.byKey.get(key)?.id;
  }
}
