import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** Every path under dir whose name contains one of the ids (a matching directory is listed, not entered). */
export async function filesNaming(dir: string, ids: string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (at: string) => {
    let entries;
    try {
      entries = await fs.readdir(at, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(at, e.name);
      if (ids.some((id) => e.name.includes(id))) out.push(p);
      else if (e.isDirectory() && !e.isSymbolicLink()) await walk(p);
    }
  };
  await walk(dir);
  return out;
}
