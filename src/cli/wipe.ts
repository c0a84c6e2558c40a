import { promises as fs, readFileSync } from 'node:fs';
import { handlerRoot } from '../config/load';
import type { CorralConfig } from '../config/schema';
import { lockHolder } from '../daemon/lock';
import { run } from '../sys/exec';

export interface WipeResult {
  ok: boolean;
  message: string;
}

/** Containers runc still knows about, per handler, as "handler/id (status)". */
async function liveContainers(c: CorralConfig): Promise<{ handler: string; id: string; status: string }[]> {
  const out: { handler: string; id: string; status: string }[] = [];
  for (const [name, h] of Object.entries(c.runtime.handlers)) {
    const root = handlerRoot(c, name);
    try {
      await fs.access(root);
    } catch {
      continue;
    }
    const r = await run(h.path, ['--root', root, 'list', '--format', 'json'], { timeoutMs: 30_000, allowFailure: true });
    if (r.code !== 0) continue;
    const list = JSON.parse(r.stdout.trim() || 'null') as { id: string; status: string }[] | null;
    for (const e of list ?? []) out.push({ handler: name, id: e.id, status: e.status });
  }
  return out;
}

/** Mount points at or below dir, deepest first. */
function mountsUnder(dir: string): string[] {
  const unescape = (s: string) => s.replace(/\\(\d{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
  const lines = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean);
  const points = lines.map((l) => unescape(l.split(' ')[4])).filter((p) => p === dir || p.startsWith(dir + '/'));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/**
 * Removes all corral state (root and run root). Refuses while the daemon runs or containers are alive,
 * unless force, which kills the containers first.
 */
export async function wipe(c: CorralConfig, force: boolean, say: (line: string) => void): Promise<WipeResult> {
  const pid = await lockHolder(c.root);
  if (pid !== undefined) return { ok: false, message: `the corral daemon (pid ${pid}) is running on ${c.root}; stop it first` };
  const live = (await liveContainers(c)).filter((x) => x.status !== 'stopped');
  if (live.length > 0 && !force) {
    return { ok: false, message: `${live.length} container(s) still running (${live.slice(0, 3).map((x) => x.id.slice(0, 12)).join(', ')}${live.length > 3 ? ', ...' : ''}); stop them, or use --force to kill them` };
  }
  for (const ctr of await liveContainers(c)) {
    const h = c.runtime.handlers[ctr.handler];
    const root = handlerRoot(c, ctr.handler);
    if (ctr.status !== 'stopped') {
      say(`killing container ${ctr.id}`);
      await run(h.path, ['--root', root, 'kill', ctr.id, 'KILL'], { timeoutMs: 30_000, allowFailure: true });
    }
    await run(h.path, ['--root', root, 'delete', '--force', ctr.id], { timeoutMs: 30_000, allowFailure: true });
  }
  for (const dir of [c.run_root, c.root]) {
    for (const m of mountsUnder(dir)) {
      say(`unmounting ${m}`);
      await run('umount', ['-l', m], { timeoutMs: 30_000, allowFailure: true });
    }
  }
  for (const dir of [c.run_root, c.root]) {
    say(`removing ${dir}`);
    await fs.rm(dir, { recursive: true, force: true, maxRetries: 3 });
  }
  return { ok: true, message: 'all corral state removed' };
}
