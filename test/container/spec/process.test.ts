import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isCorralError } from '../../../src/core/errors';
import { mergeCommand, mergeEnv, normalizeSignal, resolveStopSignal, resolveWorkingDir } from '../../../src/container/spec';

test('command/args merge like Docker', () => {
  const img = { Entrypoint: ['/ep', 'x'], Cmd: ['c1', 'c2'] };
  const cases: [string, { Entrypoint?: string[] | null; Cmd?: string[] | null }, string[], string[], string[]][] = [
    ['image only', img, [], [], ['/ep', 'x', 'c1', 'c2']],
    ['args replace Cmd', img, [], ['a1'], ['/ep', 'x', 'a1']],
    ['command replaces Entrypoint and drops Cmd', img, ['/cmd'], [], ['/cmd']],
    ['command and args', img, ['/cmd', '-v'], ['a1', 'a2'], ['/cmd', '-v', 'a1', 'a2']],
    ['no entrypoint: Cmd alone', { Cmd: ['sh'] }, [], [], ['sh']],
    ['no entrypoint: args alone', { Entrypoint: null, Cmd: ['sh'] }, [], ['echo', 'hi'], ['echo', 'hi']],
    ['entrypoint only', { Entrypoint: ['/ep'] }, [], [], ['/ep']],
  ];
  for (const [name, image, command, args, want] of cases) assert.deepEqual(mergeCommand(image, command, args), want, name);
});

test('empty command → InvalidArgument', () => {
  assert.throws(() => mergeCommand({}, [], []), (e) => isCorralError(e, 'InvalidArgument') && /no command/.test(e.message));
  assert.throws(() => mergeCommand({ Entrypoint: null, Cmd: null }), (e) => isCorralError(e, 'InvalidArgument'));
});

test('env: default PATH, image env, HOSTNAME, request overrides by key in place', () => {
  assert.deepEqual(mergeEnv({}, '', []), ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin']);
  assert.deepEqual(
    mergeEnv({ Env: ['PATH=/bin', 'A=1', 'B=2'] }, 'pod-0', [{ key: 'A', value: 'x=y' }, { key: 'C', value: '' }, { key: 'HOSTNAME', value: 'h' }]),
    ['PATH=/bin', 'A=x=y', 'B=2', 'HOSTNAME=h', 'C='],
  );
  assert.deepEqual(mergeEnv({ Env: ['A=1'] }, 'p', [{ key: 'PATH', value: '/opt' }]), ['PATH=/opt', 'A=1', 'HOSTNAME=p']);
});

test('env: bad names are InvalidArgument', () => {
  for (const key of ['', 'A=B']) {
    assert.throws(() => mergeEnv({}, '', [{ key, value: 'v' }]), (e) => isCorralError(e, 'InvalidArgument'), key);
  }
});

test('working dir: request, image, "/" default; relative refused', () => {
  assert.equal(resolveWorkingDir({}, undefined), '/');
  assert.equal(resolveWorkingDir({ WorkingDir: '/srv/' }, ''), '/srv');
  assert.equal(resolveWorkingDir({ WorkingDir: '/srv' }, '/tmp/x'), '/tmp/x');
  assert.throws(() => resolveWorkingDir({}, 'rel/dir'), (e) => isCorralError(e, 'InvalidArgument'));
});

test('stop signal: request, image (any spelling), SIGTERM', () => {
  assert.equal(resolveStopSignal({}, undefined), 'SIGTERM');
  assert.equal(resolveStopSignal({ StopSignal: 'SIGQUIT' }, 'RUNTIME_DEFAULT'), 'SIGQUIT');
  assert.equal(resolveStopSignal({ StopSignal: 'INT' }), 'SIGINT');
  assert.equal(resolveStopSignal({ StopSignal: '9' }), 'SIGKILL');
  assert.equal(resolveStopSignal({ StopSignal: 'SIGQUIT' }, 'SIGUSR1'), 'SIGUSR1');
  assert.equal(normalizeSignal('nope'), undefined);
  assert.throws(() => resolveStopSignal({}, 'SIGNOPE'), (e) => isCorralError(e, 'InvalidArgument'));
});
