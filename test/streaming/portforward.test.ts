import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { once } from 'node:events';
import { waitFor } from '../../src/core/wait';
import { collect, spdyUpgrade, wsOpen } from './clients';
import { startServer } from './harness';

async function echoServer() {
  const conns = new Set<net.Socket>();
  const srv = net.createServer((c) => {
    conns.add(c);
    c.on('close', () => conns.delete(c));
    c.pipe(c);
  });
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  return { port: (srv.address() as net.AddressInfo).port, conns, close: () => new Promise<void>((r) => srv.close(() => r())) };
}

test('SPDY port-forward: several concurrent connections through one session, half-close propagates', async () => {
  const h = await startServer();
  const echo = await echoServer();
  try {
    const up = await spdyUpgrade(h.server.preparePortForward({ podSandboxId: 'pod', ports: [] }), ['portforward.k8s.io']);
    assert.equal(up.status, 101);
    assert.equal(up.headers['x-stream-protocol-version'], 'portforward.k8s.io');
    const s = up.session!;
    const replies = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const hdr = { port: String(echo.port), requestid: String(i) };
        const err = await s.openStream({ ...hdr, streamtype: 'error' });
        err.end();
        const errText = collect(err);
        const data = await s.openStream({ ...hdr, streamtype: 'data' });
        const got = collect(data);
        data.end(`connection ${i} `.repeat(5000));
        return { reply: (await got).toString(), err: (await errText).toString(), i };
      }),
    );
    for (const r of replies) {
      assert.equal(r.reply, `connection ${r.i} `.repeat(5000));
      assert.equal(r.err, '');
    }
    s.destroy();
    await waitFor(() => h.server.activeSessions === 0 && echo.conns.size === 0, { what: 'all connections closed' });
  } finally {
    await h.close();
    await echo.close();
  }
});

test('SPDY port-forward: dial failure is written to the error stream; bad headers are refused', async () => {
  const h = await startServer();
  const echo = await echoServer();
  const closedPort = echo.port;
  await echo.close();
  try {
    const up = await spdyUpgrade(h.server.preparePortForward({ podSandboxId: 'pod', ports: [] }), ['portforward.k8s.io']);
    const s = up.session!;
    const err = await s.openStream({ port: String(closedPort), requestid: '1', streamtype: 'error' });
    err.end();
    const data = await s.openStream({ port: String(closedPort), requestid: '1', streamtype: 'data' });
    data.resume();
    assert.match((await collect(err)).toString(), new RegExp(`error forwarding port ${closedPort} to pod pod: .*ECONNREFUSED`));
    await assert.rejects(s.openStream({ port: '0', requestid: '2', streamtype: 'data' }), /refused/);
    await assert.rejects(s.openStream({ port: '80', requestid: '2', streamtype: 'bogus' }), /refused/);
    s.destroy();
  } finally {
    await h.close();
  }
});

test('WebSocket port-forward: channel pairs per port with the little-endian port prefix', async () => {
  const h = await startServer();
  const a = await echoServer();
  const b = await echoServer();
  try {
    const url = h.server.preparePortForward({ podSandboxId: 'pod', ports: [a.port, b.port] });
    const { ws, done } = await wsOpen(url, ['v4.channel.k8s.io']);
    assert.equal(ws.protocol, 'v4.channel.k8s.io');

    const seen: Buffer[] = [];
    ws.on('message', (m: Buffer) => {
      seen.push(m);
      // once each data channel has echoed, close the connection
      const text = (ch: number) => Buffer.concat(seen.filter((x) => x[0] === ch).map((x) => x.subarray(1))).toString('latin1');
      if (text(0).endsWith('to-a') && text(2).endsWith('to-b')) ws.close();
    });
    ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('to-a')]));
    ws.send(Buffer.concat([Buffer.from([2]), Buffer.from('to-b')]));
    const r = await done;
    // first message on channels 0..3 is the port, uint16 LE
    for (const [ch, port] of [[0, a.port], [1, a.port], [2, b.port], [3, b.port]]) {
      const first = r.messages.find((m) => m.channel === ch)!;
      assert.equal(first.data.length, 2);
      assert.equal(first.data.readUInt16LE(0), port);
    }
    assert.equal(r.channels.get(0)!.subarray(2).toString(), 'to-a');
    assert.equal(r.channels.get(2)!.subarray(2).toString(), 'to-b');
    await waitFor(() => a.conns.size === 0 && b.conns.size === 0 && h.server.activeSessions === 0, { what: 'forwarded connections closed' });
  } finally {
    await h.close();
    await a.close();
    await b.close();
  }
});
