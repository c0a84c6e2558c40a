/**
 * The cgroup readers against real cgroups on this machine (cgroup v1: cpuacct, memory and pids hierarchies).
 * Creates /corral-test-<rand> in each hierarchy, moves real processes in, and removes everything afterwards.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { waitFor } from '../../src/core/wait';
import { CgroupReader, detectCgroupLayout, type CgroupLayout } from '../../src/stats/cgroup';
import { StatsService } from '../../src/stats/service';

let layout: CgroupLayout | undefined;
let skip: string | false = false;
const created: string[] = [];
const children: ChildProcess[] = [];

async function makeCgroup(name: string): Promise<string[]> {
  if (layout?.version !== 1) throw new Error('v1 only');
  const dirs = [layout.cpuacct, layout.memory, layout.pids].filter((d): d is string => !!d).map((d) => path.join(d, name));
  for (const d of dirs) {
    await fs.mkdir(d);
    created.push(d);
  }
  return dirs;
}

async function moveInto(dirs: string[], pid: number): Promise<void> {
  for (const d of dirs) await fs.writeFile(path.join(d, 'cgroup.procs'), String(pid));
}

function start(file: string, args: string[]): ChildProcess {
  const c = spawn(file, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(c);
  return c;
}

async function kill(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise((r) => c.once('exit', r));
  c.kill('SIGKILL');
  await exited;
}

before(async () => {
  if (process.getuid?.() !== 0) {
    skip = 'needs root';
    return;
  }
  layout = await detectCgroupLayout();
  if (layout.version !== 1 || !layout.cpuacct || !layout.memory) skip = 'needs cgroup v1 cpuacct and memory hierarchies';
});

after(async () => {
  await Promise.all(children.map(kill));
  // A cgroup can be removed once its last task is reaped; allow the kernel a moment.
  for (const d of created.reverse()) {
    await waitFor(
      async () => {
        await fs.rmdir(d).catch((e: NodeJS.ErrnoException) => {
          if (e.code !== 'ENOENT') throw e;
        });
        return true;
      },
      { timeoutMs: 5000, what: `rmdir ${d}` },
    );
  }
});

test('a CPU loop in a v1 cgroup: usage rises and nano-cores > 0', async (t) => {
  if (skip) return t.skip(skip);
  const name = `corral-test-${randomBytes(4).toString('hex')}`;
  const dirs = await makeCgroup(name);
  const loop = start('/bin/sh', ['-c', 'while :; do :; done']);
  await moveInto(dirs, loop.pid!);
  const reader = new CgroupReader({ layout });
  const s1 = await reader.read(`/${name}`);
  assert.ok(s1?.cpu, 'cpuacct.usage read');
  assert.equal(s1.pids?.current, layout?.version === 1 && layout.pids ? 1n : undefined);
  await waitFor(async () => (await reader.read(`/${name}`))!.cpu!.usageNs > s1.cpu!.usageNs + 50_000_000n, { timeoutMs: 10_000, what: 'cpu usage to rise by 50 ms' });

  const svc = new StatsService({ reader });
  const target = { id: name, podSandboxId: 'p', cgroupsPath: `/${name}`, name: 'loop', image: 'sh', podName: 'p', podNamespace: 'ns' };
  assert.equal((await svc.containerStats(target)).cpu?.usageNanoCores, undefined, 'first sample has no rate');
  const withRate = await waitFor(
    async () => {
      const s = await svc.containerStats(target);
      return s.cpu?.usageNanoCores !== undefined ? s : undefined;
    },
    { timeoutMs: 5000, intervalMs: 150, what: 'a nano-cores figure' },
  );
  // A busy loop uses most of one core (the machine may be shared, so leave room).
  assert.ok(withRate.cpu!.usageNanoCores! > 100_000_000n, `nano-cores ${withRate.cpu!.usageNanoCores}`);
  assert.ok(withRate.cpu!.usageNanoCores! < 1_200_000_000n, `one thread cannot use more than a core: ${withRate.cpu!.usageNanoCores}`);
  await kill(loop);
});

test('a process allocating 64 MiB in a v1 cgroup shows working set and rss above the allocation', async (t) => {
  if (skip) return t.skip(skip);
  const name = `corral-test-${randomBytes(4).toString('hex')}`;
  const dirs = await makeCgroup(name);
  const memDir = path.join((layout as Extract<CgroupLayout, { version: 1 }>).memory!, name);
  assert.ok(dirs.includes(memDir));
  await fs.writeFile(path.join(memDir, 'memory.limit_in_bytes'), String(512 * 1024 * 1024));
  const MiB64 = 64n * 1024n * 1024n;
  // Allocates (and touches) 64 MiB only after it was moved into the cgroup, so the pages are charged there.
  const hog = start(process.execPath, [
    '-e',
    "process.stdin.once('data', () => { globalThis.b = Buffer.alloc(64 * 1024 * 1024, 1); process.stdout.write('allocated\\n'); }); setInterval(() => {}, 1000);",
  ]);
  await moveInto(dirs, hog.pid!);
  const allocated = new Promise<void>((r) => hog.stdout!.on('data', (b: Buffer) => b.toString().includes('allocated') && r()));
  hog.stdin!.write('go\n');
  await allocated;
  const s = await new CgroupReader({ layout }).read(`/${name}`);
  assert.ok(s?.memory);
  const m = s.memory;
  assert.ok(m.workingSetBytes > MiB64, `working set ${m.workingSetBytes}`);
  assert.ok(m.rssBytes !== undefined && m.rssBytes > MiB64, `rss ${m.rssBytes}`);
  assert.ok(m.usageBytes >= m.workingSetBytes);
  assert.equal(m.limitBytes, 512n * 1024n * 1024n);
  assert.equal(m.availableBytes, 512n * 1024n * 1024n - m.workingSetBytes);
  assert.ok(m.pageFaults !== undefined && m.pageFaults > 16_000n, `page faults ${m.pageFaults} (64 MiB is 16384 pages)`);
  assert.equal(m.oomKills, 0n);
  await kill(hog);
});
