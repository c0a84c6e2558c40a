import { matchesLabels } from '../core/labels';
import type { SandboxFilter, SandboxRecord } from './types';

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
