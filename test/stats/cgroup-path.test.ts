import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cgroupDirPath, expandSlice, podCgroupDirPath } from '../../src/stats/cgroup-path';
import { isCorralError } from '../../src/core/errors';

test('cgroupfs paths are used as they are (normalised)', () => {
  assert.equal(cgroupDirPath('/kubepods/besteffort/pod1/corral-abc'), '/kubepods/besteffort/pod1/corral-abc');
  assert.equal(cgroupDirPath('/corral-abc'), '/corral-abc');
  assert.equal(cgroupDirPath('kubepods//x/'), '/kubepods/x');
  assert.throws(() => cgroupDirPath('/../etc'), (e) => isCorralError(e, 'InvalidArgument') || /escapes/.test(String(e)));
});

test('systemd slice:prefix:name maps to the expanded slice plus a scope', () => {
  assert.equal(
    cgroupDirPath('kubepods-burstable-pod123.slice:corral:abc'),
    '/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod123.slice/corral-abc.scope',
  );
  assert.equal(cgroupDirPath('system.slice:corral:abc'), '/system.slice/corral-abc.scope');
  assert.equal(cgroupDirPath('-.slice:corral:abc'), '/corral-abc.scope');
  assert.equal(cgroupDirPath('machine.slice::x.slice'), '/machine.slice/x.slice');
  assert.throws(() => cgroupDirPath('a.slice:corral'), /slice:prefix:name/);
  assert.throws(() => cgroupDirPath('bad:corral:abc'), /invalid systemd slice/);
});

test('expandSlice follows systemd nesting and rejects malformed names', () => {
  assert.equal(expandSlice('a-b-c.slice'), '/a.slice/a-b.slice/a-b-c.slice');
  assert.equal(expandSlice('-.slice'), '/');
  for (const bad of ['a--b.slice', '-a.slice', 'a-.slice', 'a/b.slice', 'a.scope']) {
    assert.throws(() => expandSlice(bad), /invalid systemd slice/, bad);
  }
});

test('pod cgroup path per driver', () => {
  assert.equal(podCgroupDirPath('cgroupfs', 'kubepods/burstable/pod1'), '/kubepods/burstable/pod1');
  assert.equal(podCgroupDirPath('cgroupfs', ''), undefined);
  assert.equal(podCgroupDirPath('systemd', '/kubepods.slice/kubepods-besteffort-pod9.slice'), '/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod9.slice');
});
