import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** A temp dir tree built from { "rel/path": "content" }; remove() deletes it. */
export function fakeTree(files: Record<string, string>): { dir: string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'corral-stats-'));
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(dir, rel);
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, content);
  }
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** cgroup v2 files of one cgroup at <root>/<rel>. */
export function v2Files(rel: string, o: { usageUsec?: number; current?: number; inactiveFile?: number; max?: string; swap?: number; pids?: number } = {}): Record<string, string> {
  const p = (f: string) => path.join(rel, f);
  return {
    [p('cpu.stat')]: `usage_usec ${o.usageUsec ?? 1500}\nuser_usec 1000\nsystem_usec 500\nnr_periods 0\n`,
    [p('memory.current')]: `${o.current ?? 10_000_000}\n`,
    [p('memory.stat')]: `anon 6000000\nfile 4000000\nkernel 100\ninactive_file ${o.inactiveFile ?? 3_000_000}\nactive_file 1000000\npgfault 777\npgmajfault 7\n`,
    [p('memory.max')]: `${o.max ?? 'max'}\n`,
    [p('memory.swap.current')]: `${o.swap ?? 0}\n`,
    [p('memory.swap.max')]: 'max\n',
    [p('memory.events')]: 'low 0\nhigh 0\nmax 3\noom 2\noom_kill 1\n',
    [p('pids.current')]: `${o.pids ?? 3}\n`,
    [p('pids.max')]: 'max\n',
  };
}
