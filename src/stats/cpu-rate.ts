/**
 * Nano-cores (CPU time per wall time, × 1e9) from the previous sample of the same id. Only computed when
 * someone asks for stats: nothing here polls. The cache holds one sample per id; callers drop ids that
 * disappear (retain() after a list, or delete() on removal), so it never outgrows the live set.
 */
export interface CpuRateOptions {
  /**
   * Samples closer than this to the cached baseline do not replace it: the previous rate is returned, so two
   * stats calls a few ms apart do not produce a noisy rate. Default 100 ms.
   */
  minIntervalNs?: bigint;
}

interface Entry {
  usageNs: bigint;
  monotonicNs: bigint;
  lastRate?: bigint;
}

export class CpuRateTracker {
  private readonly last = new Map<string, Entry>();
  private readonly minIntervalNs: bigint;

  constructor(opts: CpuRateOptions = {}) {
    this.minIntervalNs = opts.minIntervalNs ?? 100_000_000n;
  }

  /**
   * Records a sample (cumulative usage and monotonic time, both ns) and returns nano-cores since the previous
   * one; undefined for the first sample of an id or after the counter went backwards (cgroup recreated).
   */
  update(id: string, usageNs: bigint, monotonicNs: bigint): bigint | undefined {
    const prev = this.last.get(id);
    if (prev) {
      const wall = monotonicNs - prev.monotonicNs;
      if (wall >= 0n && wall < this.minIntervalNs && usageNs >= prev.usageNs) return prev.lastRate;
      if (wall > 0n && usageNs >= prev.usageNs) {
        const rate = ((usageNs - prev.usageNs) * 1_000_000_000n) / wall;
        this.last.set(id, { usageNs, monotonicNs, lastRate: rate });
        return rate;
      }
    }
    this.last.set(id, { usageNs, monotonicNs });
    return undefined;
  }

  /** Forgets every id not in `live` (call after listing all containers/pods). */
  retain(live: Iterable<string>): void {
    const keep = new Set(live);
    for (const id of this.last.keys()) if (!keep.has(id)) this.last.delete(id);
  }

  delete(id: string): void {
    this.last.delete(id);
  }

  get size(): number {
    return this.last.size;
  }
}
