import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CpuRateTracker } from '../../src/stats/cpu-rate';

const S = 1_000_000_000n;

test('first sample gives no rate; the next gives usage delta / wall delta in nano-cores', () => {
  const t = new CpuRateTracker();
  assert.equal(t.update('a', 0n, 10n * S), undefined);
  assert.equal(t.update('a', S / 2n, 11n * S), 500_000_000n, 'half a core');
  assert.equal(t.update('a', S / 2n + 4n * S, 13n * S), 2_000_000_000n, 'two cores');
});

test('samples closer than the minimum interval keep the baseline and return the last rate', () => {
  const t = new CpuRateTracker({ minIntervalNs: 100_000_000n });
  t.update('a', 0n, 0n);
  assert.equal(t.update('a', S, S), S);
  assert.equal(t.update('a', S + 1000n, S + 1_000_000n), S, 'too close: previous rate');
  assert.equal(t.update('a', S + S / 4n, S + S / 2n), S / 2n, 'rate from the kept baseline');
});

test('a counter going backwards resets the baseline', () => {
  const t = new CpuRateTracker();
  t.update('a', 10n * S, 0n);
  assert.equal(t.update('a', S, S), undefined);
  assert.equal(t.update('a', 2n * S, 2n * S), S);
});

test('ids are independent and dropped by retain/delete', () => {
  const t = new CpuRateTracker();
  t.update('a', 0n, 0n);
  t.update('b', 0n, 0n);
  t.update('c', 0n, 0n);
  t.retain(['a', 'c']);
  assert.equal(t.size, 2);
  assert.equal(t.update('b', S, S), undefined, 'b was forgotten');
  t.delete('a');
  assert.equal(t.update('a', S, S), undefined);
  assert.equal(t.update('c', S, S), S);
});
