import { matchesLabels } from '../core/labels';
import type { ContainerFilter, ContainerRecord } from './types';

export function matchesFilter(r: ContainerRecord, f: ContainerFilter | undefined): boolean {
  if (!f) return true;
  if (f.id && !r.id.startsWith(f.id)) return false;
  if (f.sandboxId && !r.sandboxId.startsWith(f.sandboxId)) return false;
  if (f.state && r.state !== f.state) return false;
  return matchesLabels(r.config.labels, f.labelSelector);
}

/** The containers a ListContainers filter selects; creations in progress are not listed. */
export function filterContainers(all: Iterable<ContainerRecord>, f: ContainerFilter | undefined): ContainerRecord[] {
  const out: ContainerRecord[] = [];
  for (const r of all) if (r.state !== 'creating' && matchesFilter(r, f)) out.push(r);
  return out;
}
