import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NameRegistry } from '../../src/container/names';
import { filterContainers } from '../../src/container/filter';
import { cannotRun, checkStartable, cleanRuntimeMessage, exited, exitReason, isCannotRunError, started } from '../../src/container/state';
import { BoundedSink, execProcess } from '../../src/container/exec-sync';
import { canonicalJson, loadResources, storeResources } from '../../src/container/resources';
import { parseOomKills } from '../../src/container/cgroup';
import { isCorralError } from '../../src/core/errors';
import { record } from './fixtures';

test('NameRegistry: a retry with the same config joins; another config is AlreadyExists; failures free the name', async () => {
  const n = new NameRegistry();
  const key = NameRegistry.key('pod', 'web', 0);
  let release!: (id: string) => void;
  let runs = 0;
  const first = n.reserve(key, 'h1', 'id1', () => {
    runs++;
    return new Promise<string>((r) => (release = r));
  });
  const retry = n.reserve(key, 'h1', 'id2', async () => {
    runs++;
    return 'id2';
  });
  assert.throws(() => n.reserve(key, 'h2', 'id3', async () => 'id3'), (e) => isCorralError(e, 'AlreadyExists'));
  release('id1');
  assert.equal(await first, 'id1');
  assert.equal(await retry, 'id1', 'the retry gets the first creation');
  assert.equal(runs, 1);
  assert.equal(n.holder(key), 'id1');
  n.release(key, 'other');
  assert.equal(n.holder(key), 'id1', 'only the holder releases');
  n.release(key, 'id1');
  assert.equal(n.holder(key), undefined);

  const failing = n.reserve(key, 'h3', 'id4', async () => {
    throw new Error('boom');
  });
  await assert.rejects(failing, /boom/);
  assert.equal(n.holder(key), undefined, 'a failed creation frees the name');
  assert.equal(await n.reserve(key, 'h4', 'id5', async () => 'id5'), 'id5');
  assert.notEqual(NameRegistry.key('pod', 'web', 1), key, 'attempt is part of the key');
});

test('filterContainers: id prefix, pod, state, labels; creations in progress hidden', () => {
  const a = record({ id: 'aa11', sandboxId: 'p1', state: 'running', config: { ...record().config, labels: { app: 'x', tier: 'web' } } });
  const b = record({ id: 'aa22', sandboxId: 'p2', state: 'exited', config: { ...record().config, labels: { app: 'x' } } });
  const c = record({ id: 'bb33', sandboxId: 'p1', state: 'creating' });
  const all = [a, b, c];
  const ids = (f?: Parameters<typeof filterContainers>[1]) => filterContainers(all, f).map((r) => r.id);
  assert.deepEqual(ids(), ['aa11', 'aa22']);
  assert.deepEqual(ids({ id: 'aa' }), ['aa11', 'aa22']);
  assert.deepEqual(ids({ id: 'aa2' }), ['aa22']);
  assert.deepEqual(ids({ sandboxId: 'p1' }), ['aa11']);
  assert.deepEqual(ids({ state: 'exited' }), ['aa22']);
  assert.deepEqual(ids({ state: 'unknown' }), []);
  assert.deepEqual(ids({ labelSelector: { app: 'x', tier: 'web' } }), ['aa11']);
  assert.deepEqual(ids({ labelSelector: { app: 'y' } }), []);
});

test('state machine: start only from created; exits keep the first one; reasons', () => {
  const r = record();
  checkStartable(r);
  const s = started(r, 5n);
  assert.equal(s.state, 'running');
  assert.equal(s.startedAtNs, '5');
  assert.throws(() => checkStartable(s), (e) => isCorralError(e, 'FailedPrecondition'));
  const e = exited(s, { exitCode: 0, finishedAtNs: 9n, oomKilled: false });
  assert.deepEqual([e.state, e.exitCode, e.reason, e.finishedAtNs, e.pid], ['exited', 0, 'Completed', '9', 0]);
  assert.equal(exited(e, { exitCode: 3, finishedAtNs: 10n, oomKilled: false }), e, 'a second exit changes nothing');
  assert.equal(exitReason(2, false), 'Error');
  assert.equal(exitReason(137, true), 'OOMKilled');
  const oom = exited(s, { exitCode: 137, finishedAtNs: 9n, oomKilled: true });
  assert.equal(oom.reason, 'OOMKilled');
  assert.match(oom.message, /memory/);
  const cr = cannotRun(r, 'exec: "nope": executable file not found in $PATH', 7n);
  assert.deepEqual([cr.state, cr.reason, cr.exitCode], ['exited', 'ContainerCannotRun', 128]);
  assert.throws(() => checkStartable(cr), /cannot run: exec: "nope"/);
});

test('runtime errors: which mean "cannot run", and their short message', () => {
  const msg = 'container create failed: time="2024-01-01T00:00:00Z" level=error msg="runc create failed: unable to start container process: exec: \\"/no/such\\": stat /no/such: no such file or directory"';
  assert.equal(isCannotRunError(msg), true);
  assert.equal(cleanRuntimeMessage(msg), 'exec: "/no/such": stat /no/such: no such file or directory');
  assert.equal(isCannotRunError('unable to start container process: exec: "x": executable file not found in $PATH'), true);
  assert.equal(isCannotRunError('runc create failed: cgroup: permission denied writing cpu.shares'), false);
  assert.equal(isCannotRunError('conmon exited 1 before reporting a pid'), false);
});

test('BoundedSink keeps at most max bytes and counts the rest', () => {
  const s = new BoundedSink(10);
  s.push(Buffer.from('hello'));
  s.push(Buffer.from('world!!'));
  s.push(Buffer.from('more'));
  assert.equal(s.buffer().toString(), 'helloworld');
  assert.equal(s.total, 16);
  assert.equal(s.truncated, true);
});

test('execProcess: the container process with new args, no tty, no oom_score_adj', () => {
  const base = { terminal: true, user: { uid: 1, gid: 2 }, args: ['sleep'], env: ['A=1'], cwd: '/w', oomScoreAdj: 5, noNewPrivileges: true };
  const p = execProcess(base, ['ls', '-l']);
  assert.deepEqual(p.args, ['ls', '-l']);
  assert.equal(p.terminal, false);
  assert.equal(p.oomScoreAdj, undefined);
  assert.deepEqual([p.env, p.cwd, p.user, p.noNewPrivileges], [['A=1'], '/w', { uid: 1, gid: 2 }, true]);
  assert.deepEqual(base.args, ['sleep'], 'the base is not modified');
});

test('resources round-trip through the stored form; canonicalJson is order-independent', () => {
  const r = { memoryLimitInBytes: 2n ** 62n, cpuQuota: -1n, cpusetCpus: '0-1', hugepageLimits: [{ pageSize: '2MB', limit: 4n }], unified: { 'memory.high': '1' } };
  const stored = storeResources(r);
  assert.equal(stored.memoryLimitInBytes, (2n ** 62n).toString());
  assert.equal(stored.cpuShares, '0');
  const back = loadResources(stored);
  assert.equal(back.memoryLimitInBytes, 2n ** 62n);
  assert.equal(back.cpuQuota, -1n);
  assert.deepEqual(back.hugepageLimits, [{ pageSize: '2MB', limit: 4n }]);
  assert.equal(canonicalJson({ b: 1n, a: [1, { d: 2, c: 'x' }] }), canonicalJson({ a: [1, { c: 'x', d: 2 }], b: 1n }));
  assert.notEqual(canonicalJson({ a: 1n }), canonicalJson({ a: 1 }));
});

test('parseOomKills reads v1 memory.oom_control and v2 memory.events', () => {
  assert.equal(parseOomKills('oom_kill_disable 0\nunder_oom 0\noom_kill 2\n'), 2);
  assert.equal(parseOomKills('low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n'), 1);
  assert.equal(parseOomKills('oom_kill_disable 0\n'), 0);
});
