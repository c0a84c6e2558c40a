/** cgroup file parsing on fixture trees (v2 and v1 layouts), no real cgroups needed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { CgroupReader, detectCgroupLayout, memorySample, parseCounter, parseFlatKeyed, parseLimit, readText } from '../../src/stats/cgroup';
import { fakeTree, v2Files } from './fixtures';

test('parsers: counters, limits and flat keyed files', () => {
  assert.equal(parseCounter('123\n'), 123n);
  assert.equal(parseCounter('max'), undefined);
  assert.equal(parseCounter(undefined), undefined);
  assert.equal(parseLimit('max\n'), undefined);
  assert.equal(parseLimit('9223372036854771712\n'), undefined, 'v1 unlimited');
  assert.equal(parseLimit('67108864'), 67108864n);
  const m = parseFlatKeyed('a 1\nb 18446744073709551615\nbroken\nc x\n');
  assert.equal(m.get('a'), 1n);
  assert.equal(m.get('b'), 18446744073709551615n, 'values above 2^53 stay exact');
  assert.equal(m.has('c'), false);
});

test('working set = usage − inactive_file floored at 0; available = limit − working set', () => {
  const a = memorySample({ usage: 100n, inactiveFile: 30n, limit: 1000n });
  assert.equal(a.workingSetBytes, 70n);
  assert.equal(a.availableBytes, 930n);
  const b = memorySample({ usage: 10n, inactiveFile: 30n });
  assert.equal(b.workingSetBytes, 0n);
  assert.equal(b.availableBytes, undefined, 'no limit, no available');
  const c = memorySample({ usage: 100n, limit: 50n });
  assert.equal(c.availableBytes, 0n);
});

test('v2: detected from cgroup.controllers; every field read from one dir', async (t) => {
  const tree = fakeTree({ 'cgroup.controllers': 'cpu memory pids\n', ...v2Files('kubepods/pod1/corral-abc', { usageUsec: 2500, current: 50_000_000, inactiveFile: 20_000_000, max: '104857600', swap: 4096, pids: 5 }) });
  t.after(() => tree.remove());
  assert.deepEqual(await detectCgroupLayout(tree.dir), { version: 2, root: tree.dir });
  const r = new CgroupReader({ root: tree.dir });
  const s = await r.read('/kubepods/pod1/corral-abc');
  assert.ok(s);
  assert.equal(s.cpu?.usageNs, 2_500_000n);
  assert.equal(s.memory?.usageBytes, 50_000_000n);
  assert.equal(s.memory?.workingSetBytes, 30_000_000n);
  assert.equal(s.memory?.rssBytes, 6_000_000n);
  assert.equal(s.memory?.cacheBytes, 4_000_000n);
  assert.equal(s.memory?.pageFaults, 777n);
  assert.equal(s.memory?.majorPageFaults, 7n);
  assert.equal(s.memory?.limitBytes, 104_857_600n);
  assert.equal(s.memory?.availableBytes, 104_857_600n - 30_000_000n);
  assert.equal(s.memory?.swapUsageBytes, 4096n);
  assert.equal(s.memory?.swapLimitBytes, undefined);
  assert.equal(s.memory?.oomKills, 1n);
  assert.deepEqual(s.pids, { current: 5n });
  assert.ok(s.timestampNs > 1_600_000_000_000_000_000n, 'wall clock ns');
});

test('v2: systemd path form resolves to the scope dir', async (t) => {
  const tree = fakeTree({ 'cgroup.controllers': '', ...v2Files('kubepods.slice/kubepods-pod1.slice/corral-abc.scope', { usageUsec: 7 }) });
  t.after(() => tree.remove());
  const s = await new CgroupReader({ root: tree.dir }).read('kubepods-pod1.slice:corral:abc');
  assert.equal(s?.cpu?.usageNs, 7000n);
});

test('v2: missing files are tolerated; a missing cgroup reads as undefined', async (t) => {
  const tree = fakeTree({ 'cgroup.controllers': '', 'only-cpu/cpu.stat': 'usage_usec 10\n', 'only-mem/memory.current': '4096\n' });
  t.after(() => tree.remove());
  const r = new CgroupReader({ root: tree.dir });
  const cpuOnly = await r.read('/only-cpu');
  assert.equal(cpuOnly?.cpu?.usageNs, 10_000n);
  assert.equal(cpuOnly?.memory, undefined);
  assert.equal(cpuOnly?.pids, undefined);
  const memOnly = await r.read('/only-mem');
  assert.equal(memOnly?.cpu, undefined);
  assert.equal(memOnly?.memory?.usageBytes, 4096n);
  assert.equal(memOnly?.memory?.workingSetBytes, 4096n, 'no memory.stat: working set = usage');
  assert.equal(await r.read('/nope'), undefined);
});

test('v1: controllers from the mount table (joint cpu,cpuacct mount), hierarchical total_* keys, memsw swap', async (t) => {
  const rel = 'kubepods/corral-abc';
  const tree = fakeTree({
    [`cpu,cpuacct/${rel}/cpuacct.usage`]: '123456789\n',
    [`memory/${rel}/memory.usage_in_bytes`]: '80000000\n',
    [`memory/${rel}/memory.stat`]: 'cache 1\nrss 2\ninactive_file 3\ntotal_cache 30000000\ntotal_rss 50000000\ntotal_inactive_file 25000000\ntotal_pgfault 900\ntotal_pgmajfault 9\n',
    [`memory/${rel}/memory.limit_in_bytes`]: '209715200\n',
    [`memory/${rel}/memory.memsw.usage_in_bytes`]: '80004096\n',
    [`memory/${rel}/memory.memsw.limit_in_bytes`]: '9223372036854771712\n',
    [`memory/${rel}/memory.oom_control`]: 'oom_kill_disable 0\nunder_oom 0\noom_kill 2\n',
    [`pids/${rel}/pids.current`]: '4\n',
    [`pids/${rel}/pids.max`]: '100\n',
  });
  t.after(() => tree.remove());
  const mounts = [
    `cgroup ${path.join(tree.dir, 'cpu,cpuacct')} cgroup rw,nosuid,cpu,cpuacct 0 0`,
    `cgroup ${path.join(tree.dir, 'memory')} cgroup rw,memory 0 0`,
    `cgroup ${path.join(tree.dir, 'pids')} cgroup rw,pids 0 0`,
    'proc /proc proc rw 0 0',
  ].join('\n');
  const mountsTree = fakeTree({ mounts });
  t.after(() => mountsTree.remove());
  const layout = await detectCgroupLayout(tree.dir, path.join(mountsTree.dir, 'mounts'));
  assert.deepEqual(layout, { version: 1, cpuacct: path.join(tree.dir, 'cpu,cpuacct'), memory: path.join(tree.dir, 'memory'), pids: path.join(tree.dir, 'pids') });
  const s = await new CgroupReader({ layout }).read(`/${rel}`);
  assert.ok(s);
  assert.equal(s.cpu?.usageNs, 123456789n);
  assert.equal(s.memory?.usageBytes, 80_000_000n);
  assert.equal(s.memory?.workingSetBytes, 55_000_000n, 'usage − total_inactive_file');
  assert.equal(s.memory?.rssBytes, 50_000_000n);
  assert.equal(s.memory?.pageFaults, 900n);
  assert.equal(s.memory?.majorPageFaults, 9n);
  assert.equal(s.memory?.limitBytes, 209_715_200n);
  assert.equal(s.memory?.availableBytes, 209_715_200n - 55_000_000n);
  assert.equal(s.memory?.swapUsageBytes, 4096n, 'memsw − usage');
  assert.equal(s.memory?.swapLimitBytes, undefined, 'memsw unlimited');
  assert.equal(s.memory?.oomKills, 2n);
  assert.deepEqual(s.pids, { current: 4n, limit: 100n });
});

test('v1: falls back to <root>/<controller> when the mount table has no cgroup entries', async (t) => {
  const tree = fakeTree({ 'memory/x/memory.usage_in_bytes': '1\n', 'mounts': '' });
  t.after(() => tree.remove());
  const layout = await detectCgroupLayout(tree.dir, path.join(tree.dir, 'mounts'));
  assert.deepEqual(layout, { version: 1, memory: path.join(tree.dir, 'memory') });
  const s = await new CgroupReader({ layout }).read('/x');
  assert.equal(s?.memory?.usageBytes, 1n);
  assert.equal(s?.cpu, undefined);
});

test('readText: whole file past the single-read buffer; missing file → undefined', async (t) => {
  const big = 'k 1\n'.repeat(40_000);
  const tree = fakeTree({ big, small: 'x\n' });
  t.after(() => tree.remove());
  assert.equal(await readText(path.join(tree.dir, 'big')), big);
  assert.equal(await readText(path.join(tree.dir, 'small')), 'x\n');
  assert.equal(await readText(path.join(tree.dir, 'none')), undefined);
  assert.equal(await readText(tree.dir), undefined, 'a directory');
});
