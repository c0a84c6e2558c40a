import type { LinuxResourcesInput } from './spec';
import type { StoredResources } from './types';

const s = (v: bigint | undefined) => (v ?? 0n).toString();
const b = (v: string) => (v ? BigInt(v) : 0n);

/** Domain resources → the persisted/reported form (int64 as decimal strings, 0/'' for unset). */
export function storeResources(r: LinuxResourcesInput | undefined): StoredResources {
  return {
    cpuPeriod: s(r?.cpuPeriod),
    cpuQuota: s(r?.cpuQuota),
    cpuShares: s(r?.cpuShares),
    memoryLimitInBytes: s(r?.memoryLimitInBytes),
    memorySwapLimitInBytes: s(r?.memorySwapLimitInBytes),
    oomScoreAdj: s(r?.oomScoreAdj),
    cpusetCpus: r?.cpusetCpus ?? '',
    cpusetMems: r?.cpusetMems ?? '',
    hugepageLimits: (r?.hugepageLimits ?? []).map((h) => ({ pageSize: h.pageSize, limit: h.limit.toString() })),
    unified: { ...(r?.unified ?? {}) },
  };
}

export function loadResources(r: StoredResources): LinuxResourcesInput {
  return {
    cpuPeriod: b(r.cpuPeriod),
    cpuQuota: b(r.cpuQuota),
    cpuShares: b(r.cpuShares),
    memoryLimitInBytes: b(r.memoryLimitInBytes),
    memorySwapLimitInBytes: b(r.memorySwapLimitInBytes),
    oomScoreAdj: b(r.oomScoreAdj),
    cpusetCpus: r.cpusetCpus,
    cpusetMems: r.cpusetMems,
    hugepageLimits: r.hugepageLimits.map((h) => ({ pageSize: h.pageSize, limit: b(h.limit) })),
    unified: { ...r.unified },
  };
}

/** A canonical JSON text of any value (sorted keys, bigint as "<n>n"), for configuration hashes. */
export function canonicalJson(v: unknown): string {
  if (typeof v === 'bigint') return JSON.stringify(`${v}n`);
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}
