import type { SandboxFilter, SandboxRecord } from './types';

/** Whether every key=value of the selector is among the labels. */
export function matchesLabels(labels: Record<string, string>, selector: Record<string, string> | undefined): boolean {
  if (!selector) return true;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

export function matchesFilter(r: SandboxRecord, f: SandboxFilter | undefined): boolean {
  if (!f) return true;
  if (f.id && !r.id.startsWith(f.id)) return false;
  if (f.state && (r.state === 'ready' ? 'ready' : 'notready') !== f.state) return false;
  return matchesLabels(r.spec.labels, f.labelSelector);
}

export function filterSandboxes(all: Iterable<SandboxRecord>, f: SandboxFilter | undefined): SandboxRecord[] {
  const out: SandboxRecord[] = [];
  for (const r of all) if (r.state !== 'creating' && matchesFilter(r, f)) out.push(r);
  return out;
}
