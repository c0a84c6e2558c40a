import { invalidArgument } from '../../core/errors';
import { CAPABILITIES } from '../../sys/caps';
import { DEFAULT_CAPABILITIES } from './defaults';
import type { SpecOpt } from './opts';

const KNOWN = new Set<string>(CAPABILITIES);

/** "chown", "CAP_CHOWN", "Chown" → "CAP_CHOWN"; "all" → "ALL"; unknown names are InvalidArgument. */
export function normalizeCapability(name: string): string {
  const up = name.trim().toUpperCase();
  if (up === 'ALL') return 'ALL';
  const full = up.startsWith('CAP_') ? up : `CAP_${up}`;
  if (!KNOWN.has(full)) throw invalidArgument(`unknown capability ${JSON.stringify(name)}`);
  return full;
}

/**
 * containerd's order: "ALL" in add starts from every capability, "ALL" in drop from none, then the
 * individual adds, then the individual drops (so add ALL + drop CHOWN = everything but CHOWN).
 */
export function computeCapabilities(base: readonly string[], add: readonly string[] = [], drop: readonly string[] = []): string[] {
  const a = add.map(normalizeCapability);
  const d = drop.map(normalizeCapability);
  let caps = [...base];
  if (a.includes('ALL')) caps = [...CAPABILITIES];
  if (d.includes('ALL')) caps = [];
  for (const c of a) if (c !== 'ALL' && !caps.includes(c)) caps.push(c);
  const dropped = new Set(d);
  return caps.filter((c) => !dropped.has(c));
}

/** Sets bounding/effective/permitted (and ambient, a subset of them) for an unprivileged container. */
export const withCapabilities: SpecOpt = (s, ctx) => {
  const sec = ctx.input.security ?? {};
  const caps = sec.privileged
    ? [...CAPABILITIES]
    : computeCapabilities(DEFAULT_CAPABILITIES, sec.capabilities?.add, sec.capabilities?.drop);
  const ambient = (sec.capabilities?.addAmbient ?? []).map(normalizeCapability).filter((c) => c !== 'ALL');
  for (const c of ambient) if (!caps.includes(c)) caps.push(c);
  s.process.capabilities = { bounding: [...caps], effective: [...caps], permitted: [...caps], inheritable: [...ambient], ambient };
};

/**
 * Leaves out capabilities the daemon itself does not hold (runc cannot grant them and would fail the start),
 * recording a warning. Runs after every option that adds capabilities.
 */
export const withGrantableCapabilities: SpecOpt = (s, ctx) => {
  const c = s.process.capabilities;
  if (!c) return;
  const held = ctx.host.daemonCaps.effective;
  const missing = new Set<string>();
  const keep = (list: string[]) => list.filter((x) => (held.has(x) ? true : (missing.add(x), false)));
  c.bounding = keep(c.bounding);
  c.effective = keep(c.effective);
  c.permitted = keep(c.permitted);
  c.inheritable = keep(c.inheritable);
  c.ambient = keep(c.ambient);
  if (missing.size > 0) ctx.warnings.push(`capabilities the daemon lacks were left out: ${[...missing].sort().join(', ')}`);
};
