import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { isCorralError } from '../../../src/core/errors';
import { buildContainerSpec, loadUserDb, readImageFile, resolveUser, userString } from '../../../src/container/spec';
import { baseInput, fullHost, GROUP, PASSWD, tempDir, writeUserDb } from './fixture';

test('user resolution table against the image passwd/group', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  writeUserDb(dir, PASSWD, GROUP);
  const db = loadUserDb(dir);
  const cases: [string, string, bigint[], 'Merge' | 'Strict', { uid: number; gid: number; supplementalGroups: number[] }][] = [
    ['empty = root', '', [], 'Merge', { uid: 0, gid: 0, supplementalGroups: [0, 10] }],
    ['name', 'app', [], 'Merge', { uid: 1000, gid: 1000, supplementalGroups: [1000, 10, 29] }],
    ['numeric uid in passwd', '1001', [], 'Merge', { uid: 1001, gid: 1002, supplementalGroups: [1002, 29, 44] }],
    ['numeric uid not in passwd → gid 0', '4242', [], 'Merge', { uid: 4242, gid: 0, supplementalGroups: [0] }],
    ['uid:gid', '1000:5', [], 'Merge', { uid: 1000, gid: 5, supplementalGroups: [5, 10, 29] }],
    ['name:group', 'app:video', [], 'Merge', { uid: 1000, gid: 44, supplementalGroups: [44, 10, 29] }],
    ['uid:group', '7:audio', [], 'Merge', { uid: 7, gid: 29, supplementalGroups: [29] }],
    ['request groups appended, deduplicated', 'app', [3000n, 29n, 3000n], 'Merge', { uid: 1000, gid: 1000, supplementalGroups: [1000, 10, 29, 3000] }],
    ['Strict: only primary + request', 'app', [3000n], 'Strict', { uid: 1000, gid: 1000, supplementalGroups: [1000, 3000] }],
  ];
  for (const [name, userstr, supp, policy, want] of cases) assert.deepEqual(resolveUser(userstr, db, supp, policy), want, name);
});

test('user resolution errors', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  writeUserDb(dir, PASSWD, GROUP);
  const db = loadUserDb(dir);
  for (const bad of ['nobody', 'app:nogroup', 'a:b:c', '99999999999', ':5', 'app:']) {
    assert.throws(() => resolveUser(bad, db), (e) => isCorralError(e, 'InvalidArgument'), bad);
  }
  // No passwd at all: names fail, numbers work.
  assert.throws(() => resolveUser('app', {}), (e) => isCorralError(e, 'InvalidArgument') && /not found/.test(e.message));
  assert.deepEqual(resolveUser('5:6', {}), { uid: 5, gid: 6, supplementalGroups: [6] });
});

test('userString: request overrides image; run_as_group needs a user', () => {
  assert.equal(userString({}, 'app:video'), 'app:video');
  assert.equal(userString({}, undefined), '');
  assert.equal(userString({ runAsUser: 33n }, 'app'), '33');
  assert.equal(userString({ runAsUser: 33n, runAsGroup: 44n }, 'app'), '33:44');
  assert.equal(userString({ runAsUsername: 'web', runAsUser: 33n }, 'app'), 'web');
  assert.equal(userString({ runAsUsername: 'web', runAsGroup: 0n }, undefined), 'web:0');
  assert.throws(() => userString({ runAsGroup: 5n }, 'app'), (e) => isCorralError(e, 'InvalidArgument') && /run_as_group/.test(e.message));
  assert.throws(() => userString({ runAsUser: -1n }, undefined), (e) => isCorralError(e, 'InvalidArgument'));
  assert.throws(() => userString({ runAsUser: 2n ** 31n }, undefined), (e) => isCorralError(e, 'InvalidArgument'));
});

test('layered image roots: first layer with the file wins, whiteouts hide lower ones, symlinks are not followed', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  const [top, mid, low] = ['top', 'mid', 'low'].map((n) => path.join(dir, n));
  writeUserDb(low, 'low:x:1:1::/:/bin/sh\n', 'g:x:1:\n');
  writeUserDb(mid, 'mid:x:2:2::/:/bin/sh\n', undefined);
  mkdirSync(path.join(top, 'etc'), { recursive: true });
  assert.match(readImageFile([top, mid, low], 'etc/passwd') ?? '', /^mid:/);
  assert.match(readImageFile([top, mid, low], 'etc/group') ?? '', /^g:/);
  // AUFS-style whiteout in the top layer hides the lower passwd.
  writeFileSync(path.join(top, 'etc/.wh.passwd'), '');
  assert.equal(readImageFile([top, mid, low], 'etc/passwd'), undefined);
  // Overlay-style whiteout (0/0 char device) in mid hides low's group.
  execFileSync('mknod', [path.join(mid, 'etc/group'), 'c', '0', '0']);
  assert.equal(readImageFile([top, mid, low], 'etc/group'), undefined);
  // A symlink to the host's passwd is not followed.
  const s = path.join(dir, 'sym');
  mkdirSync(path.join(s, 'etc'), { recursive: true });
  execFileSync('ln', ['-s', '/etc/passwd', path.join(s, 'etc/passwd')]);
  assert.equal(readImageFile(s, 'etc/passwd'), undefined);
  // Opaque dir in top hides everything below.
  const o = path.join(dir, 'opq');
  mkdirSync(path.join(o, 'etc'), { recursive: true });
  writeFileSync(path.join(o, 'etc/.wh..wh..opq'), '');
  assert.equal(readImageFile([o, low], 'etc/passwd'), undefined);
});

test('spec user and ContainerStatus user from buildContainerSpec', (t) => {
  const { dir, cleanup } = tempDir();
  t.after(cleanup);
  writeUserDb(dir, PASSWD, GROUP);
  const imgUser = buildContainerSpec(baseInput(dir, { image: { Cmd: ['sh'], User: 'web' } }), fullHost());
  assert.deepEqual(imgUser.spec.process.user, { uid: 1001, gid: 1002, additionalGids: [1002, 29, 44] });
  assert.deepEqual(imgUser.user, { uid: 1001, gid: 1002, supplementalGroups: [1002, 29, 44] });
  const r = buildContainerSpec(
    baseInput(dir, { image: { Cmd: ['sh'], User: 'web' }, security: { runAsUsername: 'app', runAsGroup: 44n, supplementalGroups: [5n], supplementalGroupsPolicy: 'Strict' } }),
    fullHost(),
  );
  assert.deepEqual(r.user, { uid: 1000, gid: 44, supplementalGroups: [44, 5] });
  assert.throws(
    () => buildContainerSpec(baseInput(dir, { image: { Cmd: ['sh'], User: 'ghost' } }), fullHost()),
    (e) => isCorralError(e, 'InvalidArgument') && /ghost/.test(e.message),
  );
});
