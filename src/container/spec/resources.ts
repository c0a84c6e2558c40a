import { invalidArgument } from '../../core/errors';
import { clampOomScoreAdj } from '../../sys/caps';
import type { LinuxResourcesInput } from './input';
import type { OciCpu, OciHugepageLimit, OciMemory, OciResources } from '../../oci/types';
import type { SpecOpt } from './opts';

export const MAX_CPU_SHARES = 262144n;
export const MIN_CPU_PERIOD = 1000n;
export const MAX_CPU_PERIOD = 1000000n;
export const MIN_CPU_QUOTA = 1000n;

const CPUSET = /^\d+(-\d+)?(,\d+(-\d+)?)*$/;
const PAGE_SIZE = /^\d+(KB|MB|GB|TB|PB)$/i;

/** Throws InvalidArgument for a negative or absurd value; 0 and '' mean "not set" as in CRI. */
export function validateResources(r: LinuxResourcesInput): void {
  const bad = (msg: string) => {
    throw invalidArgument(`invalid resources: ${msg}`);
  };
  const period = r.cpuPeriod ?? 0n;
  if (period !== 0n && (period < MIN_CPU_PERIOD || period > MAX_CPU_PERIOD)) bad(`cpu_period ${period} is outside ${MIN_CPU_PERIOD}..${MAX_CPU_PERIOD} (microseconds)`);
  const quota = r.cpuQuota ?? 0n;
  if (quota !== 0n && quota !== -1n && quota < MIN_CPU_QUOTA) bad(`cpu_quota ${quota} must be -1 (unlimited) or at least ${MIN_CPU_QUOTA}`);
  const shares = r.cpuShares ?? 0n;
  if (shares < 0n || shares > MAX_CPU_SHARES) bad(`cpu_shares ${shares} is outside 0..${MAX_CPU_SHARES}`);
  const mem = r.memoryLimitInBytes ?? 0n;
  if (mem < 0n) bad(`memory_limit_in_bytes ${mem} is negative`);
  const swap = r.memorySwapLimitInBytes ?? 0n;
  if (swap < -1n) bad(`memory_swap_limit_in_bytes ${swap} must be -1 (unlimited), 0 (unset) or a size`);
  if (swap > 0n && mem > 0n && swap < mem) bad(`memory_swap_limit_in_bytes ${swap} is below memory_limit_in_bytes ${mem} (it counts memory plus swap)`);
  if (swap > 0n && mem === 0n) bad('memory_swap_limit_in_bytes needs memory_limit_in_bytes');
  const oom = r.oomScoreAdj ?? 0n;
  if (oom < -1000n || oom > 1000n) bad(`oom_score_adj ${oom} is outside -1000..1000`);
  if (r.cpusetCpus && !CPUSET.test(r.cpusetCpus)) bad(`cpuset_cpus ${JSON.stringify(r.cpusetCpus)} is not a CPU list like "0-2,4"`);
  if (r.cpusetMems && !CPUSET.test(r.cpusetMems)) bad(`cpuset_mems ${JSON.stringify(r.cpusetMems)} is not a node list like "0-1"`);
  const sizes = new Set<string>();
  for (const h of r.hugepageLimits ?? []) {
    if (!PAGE_SIZE.test(h.pageSize)) bad(`hugepage size ${JSON.stringify(h.pageSize)} is not like "2MB" or "1GB"`);
    if (sizes.has(h.pageSize.toUpperCase())) bad(`hugepage size ${h.pageSize} given twice`);
    sizes.add(h.pageSize.toUpperCase());
    if (h.limit < 0n || h.limit >= 2n ** 64n) bad(`hugepage limit ${h.limit} for ${h.pageSize} is out of range`);
  }
  for (const k of Object.keys(r.unified ?? {})) {
    if (!k || k.includes('/') || k.startsWith('.') || k.includes('..')) bad(`unified key ${JSON.stringify(k)} is not a cgroup file name`);
  }
}

export interface ResourceFacts {
  swapAccounting: boolean;
}

/** LinuxContainerResources → OCI linux.resources (without devices); returns warnings for values not applied. */
export function toOciResources(r: LinuxResourcesInput, facts: ResourceFacts): { resources: OciResources; warnings: string[] } {
  validateResources(r);
  const warnings: string[] = [];
  const out: OciResources = {};
  const cpu: OciCpu = {};
  if (r.cpuShares) cpu.shares = r.cpuShares;
  if (r.cpuQuota) cpu.quota = r.cpuQuota;
  if (r.cpuPeriod) cpu.period = r.cpuPeriod;
  if (r.cpusetCpus) cpu.cpus = r.cpusetCpus;
  if (r.cpusetMems) cpu.mems = r.cpusetMems;
  if (Object.keys(cpu).length > 0) out.cpu = cpu;

  const memory: OciMemory = {};
  const limit = r.memoryLimitInBytes ?? 0n;
  const swap = r.memorySwapLimitInBytes ?? 0n;
  if (limit > 0n) memory.limit = limit;
  if (facts.swapAccounting) {
    // Without an explicit swap limit the container gets no swap (memory+swap = memory), as containerd does.
    if (swap !== 0n) memory.swap = swap;
    else if (limit > 0n) memory.swap = limit;
  } else if (swap !== 0n) {
    warnings.push('memory_swap_limit_in_bytes ignored: swap accounting is not available on this host');
  }
  if (Object.keys(memory).length > 0) out.memory = memory;

  if (r.hugepageLimits && r.hugepageLimits.length > 0) {
    out.hugepageLimits = r.hugepageLimits.map((h): OciHugepageLimit => ({ pageSize: h.pageSize, limit: h.limit }));
  }
  if (r.unified && Object.keys(r.unified).length > 0) out.unified = { ...r.unified };
  return { resources: out, warnings };
}

export const withResources: SpecOpt = (s, ctx) => {
  const r = ctx.input.resources;
  if (!r) return;
  const { resources, warnings } = toOciResources(r, { swapAccounting: ctx.host.swapAccounting });
  ctx.warnings.push(...warnings);
  s.linux.resources = { ...s.linux.resources, ...resources };
};

/**
 * oom_score_adj from the request; clamped to [daemon's own value, 1000] when the daemon cannot lower it
 * (no CAP_SYS_RESOURCE: the kernel refuses values below its own).
 */
export const withOomScoreAdj: SpecOpt = (s, ctx) => {
  const req = ctx.input.resources?.oomScoreAdj;
  if (req === undefined) return;
  let v = Number(req);
  if (ctx.host.restrictOomScoreAdj) {
    const clamped = clampOomScoreAdj(v, ctx.host.daemonCaps);
    if (clamped !== v) ctx.warnings.push(`oom_score_adj ${v} clamped to ${clamped}: the daemon cannot set lower values`);
    v = clamped;
  }
  s.process.oomScoreAdj = v;
};

/** Without CAP_SYS_RESOURCE no rlimit can be raised above the daemon's own hard limit: clamp RLIMIT_NOFILE. */
export const withRlimitClamp: SpecOpt = (s, ctx) => {
  const max = ctx.host.nofileHardLimit;
  if (max === undefined || ctx.host.daemonCaps.effective.has('CAP_SYS_RESOURCE')) return;
  for (const r of s.process.rlimits ?? []) {
    if (r.type !== 'RLIMIT_NOFILE') continue;
    r.hard = Math.min(r.hard, max);
    r.soft = Math.min(r.soft, r.hard);
  }
};
