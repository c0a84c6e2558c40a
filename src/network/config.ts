import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** One plugin entry of a network configuration list. */
export interface PluginConf {
  type: string;
  capabilities?: Record<string, boolean>;
  [k: string]: unknown;
}

/** A network configuration list (a single .conf is turned into a list of one). */
export interface NetworkConfigList {
  cniVersion: string;
  name: string;
  disableCheck?: boolean;
  disableGC?: boolean;
  plugins: PluginConf[];
  /** File it was loaded from. */
  source: string;
}

const EXTS = ['.conf', '.conflist', '.json'];

/** Parses and validates one config file's text; throws with a reason when invalid. */
export function parseNetworkConfig(text: string, source: string): NetworkConfigList {
  const raw = JSON.parse(text) as Record<string, unknown>;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error('not a JSON object');
  const cniVersion = typeof raw.cniVersion === 'string' && raw.cniVersion ? raw.cniVersion : '0.2.0';
  if (typeof raw.name !== 'string' || !raw.name) throw new Error('missing network name');
  let plugins: PluginConf[];
  if (source.endsWith('.conflist') || Array.isArray(raw.plugins)) {
    if (!Array.isArray(raw.plugins) || raw.plugins.length === 0) throw new Error('conflist has no plugins');
    plugins = raw.plugins as PluginConf[];
  } else {
    plugins = [raw as unknown as PluginConf];
  }
  for (const [i, p] of plugins.entries()) {
    if (typeof p !== 'object' || p === null || typeof p.type !== 'string' || !p.type) throw new Error(`plugin ${i} has no type`);
    if (p.type.includes('/')) throw new Error(`plugin ${i} type must be a plain name`);
  }
  return {
    cniVersion,
    name: raw.name,
    disableCheck: raw.disableCheck === true,
    disableGC: raw.disableGC === true,
    plugins,
    source,
  };
}

/** Config file names of a directory that CNI considers, in lexical order. */
export function configFileNames(names: readonly string[]): string[] {
  return names.filter((n) => EXTS.includes(path.extname(n)) && !n.startsWith('.')).sort();
}

/**
 * The lexically first valid config across dirs (dirs in order, files sorted within each dir), and
 * why the others were skipped.
 */
export async function loadFirstNetwork(dirs: readonly string[]): Promise<{ config?: NetworkConfigList; problems: string[] }> {
  const problems: string[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = configFileNames(await fs.readdir(dir));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') problems.push(`${dir}: ${(e as Error).message}`);
      continue;
    }
    for (const n of names) {
      const file = path.join(dir, n);
      try {
        return { config: parseNetworkConfig(await fs.readFile(file, 'utf8'), file), problems };
      } catch (e) {
        problems.push(`${file}: ${(e as Error).message}`);
      }
    }
  }
  return { problems };
}

/** Compares dotted versions ("1.0.0" vs "0.4.0"). */
export function versionAtLeast(v: string, min: string): boolean {
  const a = v.split('.').map((x) => Number(x) || 0);
  const b = min.split('.').map((x) => Number(x) || 0);
  for (let i = 0; i < 3; i++) {
    if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) > (b[i] ?? 0);
  }
  return true;
}
