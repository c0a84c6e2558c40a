import { schema, type CorralConfig, type Section } from './schema';

type Obj = Record<string, unknown>;

export interface ReloadResult {
  /** Reloadable settings that changed and were applied, as "key: old → new". */
  applied: string[];
  /** Settings that changed but only take effect after a restart. */
  needRestart: string[];
}

/** Copies the reloadable settings of `next` into `current` in place and reports what changed. */
export function applyReload(current: CorralConfig, next: CorralConfig): ReloadResult {
  const res: ReloadResult = { applied: [], needRestart: [] };
  const walk = (sec: Section, cur: Obj, nxt: Obj, at: string[]) => {
    for (const [k, s] of Object.entries(sec)) {
      if (s.kind === 'section') {
        walk(s.section, cur[k] as Obj, nxt[k] as Obj, [...at, k]);
        continue;
      }
      const a = JSON.stringify(cur[k]);
      const b = JSON.stringify(nxt[k]);
      if (a === b) continue;
      const key = [...at, k].join('.');
      if (s.reload) {
        cur[k] = structuredClone(nxt[k]);
        res.applied.push(`${key}: ${a} → ${b}`);
      } else {
        res.needRestart.push(key);
      }
    }
  };
  walk(schema, current as unknown as Obj, next as unknown as Obj, []);
  return res;
}
