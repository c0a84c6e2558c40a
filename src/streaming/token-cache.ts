import { randomBytes } from 'node:crypto';
import { resourceExhausted } from '../core/errors';

/**
 * Single-use tokens for prepared streaming requests, as kubelet's request cache: a token is valid
 * once, for ttlMs after it was issued; at most maxInFlight tokens are outstanding.
 */
export class TokenCache<T> {
  private readonly entries = new Map<string, { value: T; expires: number }>();
  private readonly ttlMs: number;
  private readonly maxInFlight: number;
  private readonly now: () => number;

  constructor(opts: { ttlMs?: number; maxInFlight?: number; now?: () => number } = {}) {
    this.ttlMs = opts.ttlMs ?? 60_000;
    this.maxInFlight = opts.maxInFlight ?? 1000;
    this.now = opts.now ?? Date.now;
  }

  insert(value: T): string {
    this.gc();
    if (this.entries.size >= this.maxInFlight) {
      throw resourceExhausted(`too many in-flight streaming requests (max ${this.maxInFlight})`);
    }
    let token: string;
    do token = randomBytes(16).toString('base64url');
    while (this.entries.has(token));
    this.entries.set(token, { value, expires: this.now() + this.ttlMs });
    return token;
  }

  /** Removes and returns the request for token; undefined when unknown, used or expired. */
  consume(token: string): T | undefined {
    const e = this.entries.get(token);
    if (!e) return undefined;
    this.entries.delete(token);
    return this.now() > e.expires ? undefined : e.value;
  }

  get size(): number {
    this.gc();
    return this.entries.size;
  }

  private gc(): void {
    const now = this.now();
    // Map iteration is insertion order, which is expiry order.
    for (const [k, e] of this.entries) {
      if (now <= e.expires) break;
      this.entries.delete(k);
    }
  }
}
