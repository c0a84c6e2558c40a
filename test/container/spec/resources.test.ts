import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isCorralError } from '../../../src/core/errors';
import { buildContainerSpec, ociSpecJson, parseNofileHard, stringifyJson, toOciResources, validateResources } from '../../../src/container/spec';
import type { LinuxResourcesInput } from '../../../src/container/spec';
import { CAPABILITIES } from '../../../src/sys/caps';
import { baseInput, fullHost, tempDir } from './fixture';

const BIG = 2n ** 62n + 12345n; // beyond 2^53: a JS number would round it

test('resources conversion', () => {
  const { resources, warnings } = toOciResources(
    {
      cpuPeriod: 100000n, cpuQuota: 50000n, cpuShares: 512n, cpusetCpus: '0-1,3', cpusetMems: '0',
      memoryLimitInBytes: 64n << 20n, oomScoreAdj: 500n,
      hugepageLimits: [{ pageSize: '2MB', limit: BIG }], unified: { 'memory.high': '1000000' },
    },
    { swapAccounting: true },
  );
  assert.deepEqual(resources, {
    cpu: { shares: 512n, quota: 50000n, period: 100000n, cpus: '0-1,3', mems: '0' },
    memory: { limit: 64n << 20n, swap: 64n << 20n },
    hugepageLimits: [{ pageSize: '2MB', limit: BIG }],
    unified: { 'memory.high': '1000000' },
  });
  assert.deepEqual(warnings, []);
  // Zero values mean unset; explicit swap wins; -1 quota = unlimited.
  assert.deepEqual(toOciResources({ cpuQuota: -1n, memoryLimitInBytes: 100n, memorySwapLimitInBytes: -1n }, { swapAccounting: true }).resources, {
    cpu: { quota: -1n }, memory: { limit: 100n, swap: -1n },
  });
  assert.deepEqual(toOciResources({}, { swapAccounting: true }).resources, {});
  const noSwap = toOciResources({ memoryLimitInBytes: 100n, memorySwapLimitInBytes: 200n }, { swapAccounting: false });
  assert.deepEqual(noSwap.resources, { memory: { limit: 100n } });
  assert.equal(noSwap.warnings.length, 1);
});

test('negative or absurd resource values are InvalidArgument', () => {
  const bad: [string, LinuxResourcesInput][] = [
    ['negative memory', { memoryLimitInBytes: -1n }],
    ['shares too big', { cpuShares: 262145n }],
    ['negative shares', { cpuShares: -2n }],
    ['quota below 1000', { cpuQuota: 999n }],
    ['quota negative', { cpuQuota: -2n }],
    ['period too small', { cpuPeriod: 999n }],
    ['period too big', { cpuPeriod: 1000001n }],
    ['oom out of range', { oomScoreAdj: -1001n }],
    ['swap below memory', { memoryLimitInBytes: 200n, memorySwapLimitInBytes: 100n }],
    ['swap negative', { memorySwapLimitInBytes: -5n }],
    ['bad cpuset', { cpusetCpus: '0-a' }],
    ['bad hugepage size', { hugepageLimits: [{ pageSize: '2XB', limit: 1n }] }],
    ['negative hugepage', { hugepageLimits: [{ pageSize: '2MB', limit: -1n }] }],
    ['unified path key', { unified: { '../memory.max': '1' } }],
  ];
  for (const [name, r] of bad) assert.throws(() => validateResources(r), (e) => isCorralError(e, 'InvalidArgument') && /invalid resources/.test(e.message), name);
  for (const ok of [{ cpuQuota: 0n }, { cpuQuota: -1n }, { cpuQuota: 1000n }, { cpuPeriod: 1000n }, { cpuPeriod: 1000000n }, { cpuShares: 262144n }, { cpuShares: 2n }]) {
    assert.doesNotThrow(() => validateResources(ok), JSON.stringify(ok, (_k, v) => (typeof v === 'bigint' ? String(v) : v)));
  }
});

test('bigint resources serialize as exact JSON numbers', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const { spec } = buildContainerSpec(baseInput(dir, { resources: { memoryLimitInBytes: BIG, cpuShares: 1024n } }), fullHost());
  const json = ociSpecJson(spec);
  assert.ok(json.includes(`"limit": ${BIG}`), 'raw number in output');
  assert.ok(!json.includes(`"${BIG}"`), 'not a string');
  // A JSON parser that keeps big integers exact (source text) sees the same digits.
  const limitText = /"memory": \{\s*"limit": (\d+)/.exec(json)![1];
  assert.equal(BigInt(limitText), BIG);
  const parsed = JSON.parse(json);
  assert.equal(parsed.linux.resources.cpu.shares, 1024);
  assert.equal(parsed.process.args[0], '/bin/sh');
});

test('stringifyJson matches JSON.stringify for plain values', () => {
  const v = { a: 1, b: 'x"\n\u2028', c: [1, null, undefined, true], d: undefined, e: {}, f: [], g: { h: -0.5, i: Infinity } };
  assert.equal(stringifyJson(v), JSON.stringify(v));
  assert.equal(stringifyJson(v, 2), JSON.stringify(v, null, 2));
  assert.equal(stringifyJson({ n: 2n ** 64n - 1n, m: -(2n ** 63n) }), '{"n":18446744073709551615,"m":-9223372036854775808}');
  assert.equal(stringifyJson([1n]), '[1]');
});

test('oom_score_adj: clamped to the daemon value when restricted, passed through otherwise', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const held = new Set<string>(CAPABILITIES.filter((c) => c !== 'CAP_SYS_RESOURCE'));
  const restricted = fullHost({ restrictOomScoreAdj: true, daemonCaps: { effective: held, ownOomScoreAdj: -500 } });
  const r1 = buildContainerSpec(baseInput(dir, { resources: { oomScoreAdj: -998n } }), restricted);
  assert.equal(r1.spec.process.oomScoreAdj, -500);
  assert.match(r1.warnings.join('\n'), /oom_score_adj -998 clamped to -500/);
  assert.equal(buildContainerSpec(baseInput(dir, { resources: { oomScoreAdj: 1000n } }), restricted).spec.process.oomScoreAdj, 1000);
  assert.equal(buildContainerSpec(baseInput(dir, { resources: { oomScoreAdj: -998n } }), fullHost()).spec.process.oomScoreAdj, -998);
  assert.equal(buildContainerSpec(baseInput(dir), restricted).spec.process.oomScoreAdj, undefined);
});

test('RLIMIT_NOFILE is clamped to the daemon hard limit without CAP_SYS_RESOURCE', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const held = new Set<string>(CAPABILITIES.filter((c) => c !== 'CAP_SYS_RESOURCE'));
  const r = buildContainerSpec(baseInput(dir), fullHost({ nofileHardLimit: 20000, daemonCaps: { effective: held, ownOomScoreAdj: 0 } }));
  assert.deepEqual(r.spec.process.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 20000, soft: 20000 }]);
  const full = buildContainerSpec(baseInput(dir), fullHost({ nofileHardLimit: 20000 }));
  assert.deepEqual(full.spec.process.rlimits, [{ type: 'RLIMIT_NOFILE', hard: 1048576, soft: 1048576 }]);
  assert.equal(parseNofileHard('Max cpu time   unlimited  unlimited  seconds\nMax open files            1024                 524288               files\n'), 524288);
  assert.equal(parseNofileHard('Max open files  unlimited unlimited files\n'), undefined);
});

test('resources in the spec keep the default device rules', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const { spec } = buildContainerSpec(baseInput(dir, { resources: { cpuShares: 2n } }), fullHost());
  assert.equal(spec.linux.resources!.cpu!.shares, 2n);
  assert.deepEqual(spec.linux.resources!.devices![0], { allow: false, access: 'rwm' });
});

test('detectHostContext reads caps, limits, swap accounting and AppArmor from the given roots', async (t) => {
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const path = await import('node:path');
  const { detectHostContext } = await import('../../../src/container/spec');
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const proc = path.join(dir, 'proc');
  const sys = path.join(dir, 'sys');
  mkdirSync(proc);
  mkdirSync(path.join(sys, 'fs/cgroup/memory'), { recursive: true });
  mkdirSync(path.join(sys, 'module/apparmor/parameters'), { recursive: true });
  writeFileSync(path.join(proc, 'status'), 'Name:\tnode\nCapEff:\t000001fffeffffff\n');
  writeFileSync(path.join(proc, 'oom_score_adj'), '-100\n');
  writeFileSync(path.join(proc, 'limits'), 'Max open files            20000                20000                files     \n');
  writeFileSync(path.join(sys, 'fs/cgroup/memory/memory.memsw.limit_in_bytes'), '');
  writeFileSync(path.join(sys, 'module/apparmor/parameters/enabled'), 'Y\n');
  const h = detectHostContext({ cgroupManager: 'systemd', restrictOomScoreAdj: 'auto', procSelf: proc, sysRoot: sys });
  assert.equal(h.restrictOomScoreAdj, true, 'CAP_SYS_RESOURCE (bit 24) is missing');
  assert.equal(h.daemonCaps.ownOomScoreAdj, -100);
  assert.equal(h.nofileHardLimit, 20000);
  assert.equal(h.swapAccounting, true);
  assert.equal(h.apparmorEnabled, true);
  assert.equal(h.selinuxEnabled, false);
  assert.equal(h.cgroupManager, 'systemd');
  assert.equal(detectHostContext({ cgroupManager: 'cgroupfs', restrictOomScoreAdj: 'false', procSelf: proc, sysRoot: path.join(dir, 'none') }).swapAccounting, false);
});
