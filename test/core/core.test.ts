import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedMutex } from '../../src/core/keyed-mutex';
import { Rollback } from '../../src/core/rollback';
import { SingleFlight } from '../../src/core/single-flight';
import { newId, nowNs } from '../../src/core/ids';
import { waitFor } from '../../src/core/wait';

test('rollback unwinds in reverse order and rethrows the original error', async () => {
  const done: string[] = [];
  await assert.rejects(
    new Rollback().run(async (rb) => {
      rb.push('a', () => void done.push('undo a'));
      rb.push('b', async () => {
        done.push('undo b');
        throw new Error('undo b failed');
      });
      rb.push('c', () => void done.push('undo c'));
      throw new Error('step d failed');
    }),
    /step d failed/,
  );
  assert.deepEqual(done, ['undo c', 'undo b', 'undo a']);
});

test('rollback does nothing after success', async () => {
  let undone = false;
  const v = await new Rollback().run(async (rb) => {
    rb.push('x', () => void (undone = true));
    return 42;
  });
  assert.equal(v, 42);
  assert.equal(undone, false);
});

test('keyed mutex serialises one key and not others', async () => {
  const m = new KeyedMutex();
  const order: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const a1 = m.run('a', async () => {
    order.push('a1 start');
    await gate;
    order.push('a1 end');
  });
  const a2 = m.run('a', async () => void order.push('a2'));
  const b = m.run('b', async () => void order.push('b'));
  await b;
  assert.deepEqual(order, ['a1 start', 'b']);
  assert.ok(m.isLocked('a'));
  release();
  await Promise.all([a1, a2]);
  assert.deepEqual(order, ['a1 start', 'b', 'a1 end', 'a2']);
  assert.equal(m.isLocked('a'), false);
});

test('single flight runs once per key while in flight', async () => {
  const sf = new SingleFlight<number>();
  let calls = 0;
  const fn = async () => {
    calls++;
    await new Promise((r) => setImmediate(r));
    return 7;
  };
  const [x, y] = await Promise.all([sf.do('k', fn), sf.do('k', fn)]);
  assert.deepEqual([x, y, calls], [7, 7, 1]);
  await sf.do('k', fn);
  assert.equal(calls, 2);
});

test('ids are 64 hex chars; nowNs is ns since epoch beyond 2^53', () => {
  assert.match(newId(), /^[0-9a-f]{64}$/);
  const ns = nowNs();
  assert.ok(ns > 2n ** 53n);
  assert.ok(ns / 1_000_000n - BigInt(Date.now()) < 1000n);
});

test('waitFor times out with the condition name', async () => {
  await assert.rejects(waitFor(() => false, { timeoutMs: 50, intervalMs: 5, what: 'never' }), /timed out waiting for never/);
  assert.equal(await waitFor(() => 5), 5);
});
