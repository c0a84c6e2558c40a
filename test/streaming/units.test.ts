import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isCorralError } from '../../src/core/errors';
import { TokenCache } from '../../src/streaming/token-cache';
import { ResizeDecoder, TerminalSizeQueue } from '../../src/streaming/resize';

test('token cache: single use, 1 minute expiry, bounded in-flight', () => {
  let now = 0;
  const c = new TokenCache<string>({ now: () => now, maxInFlight: 3 });
  const t = c.insert('a');
  assert.match(t, /^[A-Za-z0-9_-]{22}$/);
  assert.equal(c.consume(t), 'a');
  assert.equal(c.consume(t), undefined);
  const t2 = c.insert('b');
  now = 60_000;
  assert.equal(c.consume(t2), 'b', 'valid for the full minute');
  const t3 = c.insert('c');
  now += 60_001;
  assert.equal(c.consume(t3), undefined);
  c.insert('x');
  c.insert('y');
  c.insert('z');
  assert.throws(() => c.insert('w'), (e) => isCorralError(e, 'ResourceExhausted'));
  now += 60_001; // expired entries free their slots
  assert.doesNotThrow(() => c.insert('w'));
});

test('resize decoder: concatenated and split JSON, case-insensitive keys, stops on garbage', () => {
  const d = new ResizeDecoder();
  assert.deepEqual(d.write('{"Width":80,"Height":24}\n{"wid'), [{ width: 80, height: 24 }]);
  assert.deepEqual(d.write('th":100,"height":40}'), [{ width: 100, height: 40 }]);
  assert.deepEqual(d.write(' {"Width":1,"Height":2}{"Width":3,"Height":4}'), [
    { width: 1, height: 2 },
    { width: 3, height: 4 },
  ]);
  assert.deepEqual(d.write('nonsense {"Width":5,"Height":6}'), []);
  assert.deepEqual(d.write('{"Width":7,"Height":8}'), [], 'a broken stream stays broken, like Go\'s decoder');
});

test('terminal size queue: events, latest, async iteration until end', async () => {
  const q = new TerminalSizeQueue();
  const seen: unknown[] = [];
  const it = (async () => {
    for await (const s of q) seen.push(s);
  })();
  q.push({ width: 1, height: 2 });
  await new Promise((r) => setImmediate(r));
  q.push({ width: 3, height: 4 });
  q.end();
  await it;
  assert.deepEqual(seen, [{ width: 1, height: 2 }, { width: 3, height: 4 }]);
  assert.deepEqual(q.latest, { width: 3, height: 4 });
});
