import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNetDev, readNetworkStats } from '../../src/stats/netdev';
import { fakeTree } from './fixtures';

const SAMPLE = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:    1234      10    0    0    0     0          0         0     1234      10    0    0    0     0       0          0
  eth0: 98765432101 5000    3    4    0     0          0         0 12345   600    1    2    0     0       0          0
 net1:18446744073709551615 1 0 0 0 0 0 0 7 1 0 0 0 0 0 0
`;

test('parseNetDev: skips lo and headers, reads rx/tx bytes, packets, errors, drops', () => {
  const ifs = parseNetDev(SAMPLE);
  assert.deepEqual(ifs.map((i) => i.name), ['eth0', 'net1']);
  const eth0 = ifs[0];
  assert.equal(eth0.rxBytes, 98765432101n);
  assert.equal(eth0.rxPackets, 5000n);
  assert.equal(eth0.rxErrors, 3n);
  assert.equal(eth0.rxDropped, 4n);
  assert.equal(eth0.txBytes, 12345n);
  assert.equal(eth0.txPackets, 600n);
  assert.equal(eth0.txErrors, 1n);
  assert.equal(eth0.txDropped, 2n);
  assert.equal(ifs[1].rxBytes, 18446744073709551615n, 'no space after the colon, uint64 max exact');
});

test('readNetworkStats: reads /proc/<pid>/net/dev, picks eth0 as default; gone process → undefined', async (t) => {
  const tree = fakeTree({ '42/net/dev': SAMPLE });
  t.after(() => tree.remove());
  const s = await readNetworkStats(42, tree.dir);
  assert.equal(s?.defaultInterface?.name, 'eth0');
  assert.equal(s?.interfaces.length, 2);
  assert.equal(await readNetworkStats(43, tree.dir), undefined);
  assert.equal(await readNetworkStats(0, tree.dir), undefined);
});

test('readNetworkStats on this process (real /proc): never reports lo', async () => {
  const s = await readNetworkStats(process.pid);
  assert.ok(s);
  assert.ok(s.interfaces.every((i) => i.name !== 'lo'));
});
