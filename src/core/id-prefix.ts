import { invalidArgument } from './errors';

/**
 * The record whose id is `id` or starts with it (crictl accepts unique id prefixes); undefined when none,
 * InvalidArgument when the prefix names more than one. `what` names the kind in the error ("container").
 */
export function findByIdPrefix<T extends { id: string }>(view: ReadonlyMap<string, T>, id: string, what: string): T | undefined {
  if (!id) return undefined;
  const exact = view.get(id);
  if (exact) return exact;
  let found: T | undefined;
  for (const r of view.values()) {
    if (r.id.startsWith(id)) {
      if (found) throw invalidArgument(`${what} id prefix ${JSON.stringify(id)} is ambiguous`);
      found = r;
    }
  }
  return found;
}
