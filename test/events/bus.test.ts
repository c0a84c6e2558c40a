import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventBus, type RuntimeEvent } from '../../src/events/bus';
import { isCorralError } from '../../src/core/errors';

const ev = (i: number): RuntimeEvent => ({ type: 'CONTAINER_STARTED_EVENT', containerId: `c${i}`, podSandboxId: 'p', createdAtNs: BigInt(i) });

test('every subscriber gets every event in order', async () => {
  const bus = new EventBus();
  const ac = new AbortController();
  const a = bus.subscribe(ac.signal);
  const b = bus.subscribe(ac.signal);
  const firstA = a.next();
  const firstB = b.next();
  await new Promise((r) => setImmediate(r));
  assert.equal(bus.subscribers, 2);
  for (let i = 0; i < 3; i++) bus.publish(ev(i));
  assert.equal((await firstA).value.containerId, 'c0');
  assert.equal((await firstB).value.containerId, 'c0');
  assert.equal((await a.next()).value.containerId, 'c1');
  assert.equal((await a.next()).value.containerId, 'c2');
  ac.abort();
  assert.equal((await a.next()).done, true);
  assert.equal((await b.next()).done, true);
  assert.equal(bus.subscribers, 0);
});

test('a slow subscriber is dropped with ResourceExhausted; publish never blocks', async () => {
  const bus = new EventBus(5);
  const ac = new AbortController();
  const slow = bus.subscribe(ac.signal);
  const first = slow.next();
  await new Promise((r) => setImmediate(r));
  for (let i = 0; i < 100; i++) bus.publish(ev(i));
  assert.equal(bus.subscribers, 0, 'dropped at once');
  const got: string[] = [(await first).value.containerId];
  await assert.rejects(
    (async () => {
      for (;;) {
        const n = await slow.next();
        if (n.done) break;
        got.push(n.value.containerId);
      }
    })(),
    (e) => isCorralError(e, 'ResourceExhausted'),
  );
  assert.deepEqual(got, ['c0', 'c1', 'c2', 'c3', 'c4'], 'what was queued before the drop is still delivered');
  ac.abort();
});
