import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FsSyncer } from '../../src/image/snapshots';

test('FsSyncer: callers arriving during a sync share the next one; each caller is covered by a sync started after it asked', async () => {
  const started: number[] = [];
  const finish: (() => void)[] = [];
  let asked = 0;
  const syncer = new FsSyncer('/', () => {
    started.push(asked);
    return new Promise<void>((r) => finish.push(r));
  });
  asked = 1;
  const a = syncer.sync();
  asked = 3;
  const b = syncer.sync();
  const c = syncer.sync();
  assert.equal(started.length, 1, 'b and c wait for the running sync, which may predate their writes');
  finish[0]();
  await a;
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, [1, 3], 'one more sync serves b and c together');
  finish[1]();
  await Promise.all([b, c]);
  const d = syncer.sync();
  assert.equal(started.length, 3);
  finish[2]();
  await d;
});
