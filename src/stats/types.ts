/**
 * Domain stats types. All counters and byte values are bigint (they exceed 2^53 and map to CRI uint64);
 * a field is undefined when the kernel does not expose it for this cgroup (missing file, no limit).
 */

export interface CpuSample {
  /** Cumulative CPU time in nanoseconds. */
  usageNs: bigint;
}

export interface MemorySample {
  /** Total usage, including page cache (v1 memory.usage_in_bytes, v2 memory.current). */
  usageBytes: bigint;
  /** usage − inactive_file, floored at 0: what kubelet evicts on. */
  workingSetBytes: bigint;
  /** Anonymous memory (v1 total_rss, v2 anon). */
  rssBytes?: bigint;
  /** Page cache (v1 total_cache, v2 file). */
  cacheBytes?: bigint;
  inactiveFileBytes?: bigint;
  pageFaults?: bigint;
  majorPageFaults?: bigint;
  /** Undefined when unlimited. */
  limitBytes?: bigint;
  /** limit − working set (floored at 0) when a limit is set. */
  availableBytes?: bigint;
  /** Swap in use (v1 memsw.usage − usage; v2 memory.swap.current). */
  swapUsageBytes?: bigint;
  /** Undefined when swap is unlimited or not accounted. */
  swapLimitBytes?: bigint;
  /** swap limit − swap usage when a swap limit is set. */
  swapAvailableBytes?: bigint;
  /** OOM kills in this cgroup (v1 memory.oom_control oom_kill, v2 memory.events oom_kill). */
  oomKills?: bigint;
}

export interface PidsSample {
  current: bigint;
  /** Undefined when unlimited. */
  limit?: bigint;
}

/** One read of one cgroup. */
export interface CgroupSample {
  /** Wall clock, ns since the epoch (CRI timestamps). */
  timestampNs: bigint;
  /** Monotonic clock (process.hrtime), for rates. */
  monotonicNs: bigint;
  cpu?: CpuSample;
  memory?: MemorySample;
  pids?: PidsSample;
}

export interface InterfaceStats {
  name: string;
  rxBytes: bigint;
  rxPackets: bigint;
  rxErrors: bigint;
  rxDropped: bigint;
  txBytes: bigint;
  txPackets: bigint;
  txErrors: bigint;
  txDropped: bigint;
}

export interface NetworkSample {
  timestampNs: bigint;
  /** eth0 if present, else the first interface. */
  defaultInterface?: InterfaceStats;
  /** All interfaces except lo. */
  interfaces: InterfaceStats[];
}

export interface DiskUsageSample {
  timestampNs: bigint;
  usedBytes: bigint;
  inodesUsed: bigint;
}
