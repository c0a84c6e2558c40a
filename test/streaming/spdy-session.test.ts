import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { once } from 'node:events';
import { SpdySession, SpdyStream } from '../../src/streaming/spdy/session';
import { FrameDecoder, encodeData, encodePing } from '../../src/streaming/spdy/frames';
import { waitFor } from '../../src/core/wait';
import { collect } from './clients';

async function pair(onServer?: (s: SpdySession, sock: net.Socket) => void) {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  const [sock] = (await accepted) as [net.Socket];
  const srv = new SpdySession(sock, { role: 'server' });
  onServer?.(srv, sock);
  const cli = new SpdySession(client, { role: 'client' });
  return {
    srv,
    cli,
    client,
    sock,
    close: async () => {
      cli.destroy();
      srv.destroy();
      server.close();
    },
  };
}

test('stream open, reply, data both ways, half-close each way', async () => {
  const p = await pair((srv) =>
    srv.on('stream', (s) => {
      s.accept();
      // echo server: uppercase until the client's FIN, then FIN back
      s.on('data', (d: Buffer) => s.write(d.toString().toUpperCase()));
      s.on('end', () => s.end());
    }),
  );
  try {
    const s = await p.cli.openStream({ streamtype: 'stdin', other: 'x' });
    const got = collect(s);
    s.write('hello ');
    s.end('world');
    assert.equal((await got).toString(), 'HELLO WORLD');
    await waitFor(() => p.srv.openStreams === 0 && p.cli.openStreams === 0, { what: 'streams forgotten' });
  } finally {
    await p.close();
  }
});

test('server sees lowercased headers; refused streams reject openStream', async () => {
  const seen: Record<string, string>[] = [];
  const p = await pair((srv) =>
    srv.on('stream', (s) => {
      seen.push(s.headers);
      if (s.headers['streamtype'] === 'bad') s.refuse();
      else s.accept();
    }),
  );
  try {
    await p.cli.openStream({ StreamType: 'ok' });
    await assert.rejects(p.cli.openStream({ streamtype: 'bad' }), /refused/);
    assert.deepEqual(seen[0], { streamtype: 'ok' });
  } finally {
    await p.close();
  }
});

test('many streams interleave over one connection with one zlib context per direction', async () => {
  const p = await pair((srv) =>
    srv.on('stream', (s) => {
      s.accept();
      s.pipe(s);
    }),
  );
  try {
    const results = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const s = await p.cli.openStream({ streamtype: 'data', requestid: String(i), port: String(1000 + i) });
        const got = collect(s);
        s.end(`payload-${i}-`.repeat(100));
        return (await got).toString() === `payload-${i}-`.repeat(100);
      }),
    );
    assert.ok(results.every(Boolean));
  } finally {
    await p.close();
  }
});

test('peer PING is echoed; our PING gets a round trip', async () => {
  const p = await pair((srv) => srv.on('stream', (s) => s.accept()));
  try {
    const rtt = await p.cli.ping();
    assert.ok(rtt >= 0);
    const rtt2 = await p.srv.ping();
    assert.ok(rtt2 >= 0);
  } finally {
    await p.close();
  }
});

test('RST_STREAM from the peer ends the readable side and discards later writes', async () => {
  let serverStream: SpdyStream | undefined;
  const p = await pair((srv) =>
    srv.on('stream', (s) => {
      s.accept();
      serverStream = s;
    }),
  );
  try {
    const s = await p.cli.openStream({ streamtype: 'stdout' });
    await waitFor(() => serverStream);
    const ended = collect(serverStream!);
    const reset = once(serverStream!, 'reset');
    s.reset();
    await reset;
    await ended;
    assert.equal(serverStream!.resetStatus, 5);
    // writing after reset neither throws nor errors
    await new Promise<void>((r) => serverStream!.write('ignored', () => r()));
  } finally {
    await p.close();
  }
});

test('GOAWAY is reported and graceful end() closes both sides', async () => {
  const p = await pair((srv) => srv.on('stream', (s) => s.accept()));
  try {
    const s = await p.cli.openStream({ streamtype: 'stdout' });
    const got = collect(s);
    const goaway = once(p.cli, 'goaway');
    const closed = once(p.cli, 'close');
    p.srv.end();
    const [g] = (await goaway) as [{ lastStreamId: number; status: number }];
    assert.equal(g.lastStreamId, 1);
    await got; // server's FIN reached the stream before the session closed
    await closed;
    assert.ok(p.srv.isClosed || (await once(p.srv, 'close')));
  } finally {
    await p.close();
  }
});

test('a reader that does not read pauses the socket: memory stays bounded, writer is held back', async () => {
  let serverStream: SpdyStream | undefined;
  const p = await pair((srv) =>
    srv.on('stream', (s) => {
      s.accept();
      serverStream = s; // never read
    }),
  );
  try {
    const s = await p.cli.openStream({ streamtype: 'stdin' });
    await waitFor(() => serverStream);
    const chunk = Buffer.alloc(64 * 1024, 1);
    let written = 0;
    let stalled = false;
    // Write until the client's own stream reports backpressure for a while.
    for (let i = 0; i < 400 && !stalled; i++) {
      if (!s.write(chunk)) {
        const drained = await Promise.race([once(s, 'drain').then(() => true), new Promise((r) => setTimeout(() => r(false), 300))]);
        if (!drained) stalled = true;
      }
      written += chunk.length;
    }
    assert.ok(stalled, 'writer should stall when the reader does not read');
    // The server holds at most its stream's buffer plus a socket read's worth of frames.
    assert.ok(serverStream!.readableLength < 1024 * 1024, `server buffered ${serverStream!.readableLength}`);
    assert.ok(written < 400 * chunk.length);
    // Reading releases the flow.
    const total = written;
    let read = 0;
    serverStream!.on('data', (d: Buffer) => (read += d.length));
    await waitFor(() => read >= total - chunk.length, { timeoutMs: 10_000, what: 'data to flow after reading' });
  } finally {
    await p.close();
  }
});

test('server side writes wait for socket drain (no unbounded buffering toward a slow client)', async () => {
  let serverStream: SpdyStream | undefined;
  const p = await pair((srv) =>
    srv.on('stream', (s) => {
      s.accept();
      serverStream = s;
    }),
  );
  try {
    const s = await p.cli.openStream({ streamtype: 'stdout' });
    await waitFor(() => serverStream);
    p.client.pause(); // client stops reading the TCP socket entirely
    const chunk = Buffer.alloc(64 * 1024, 2);
    let pendingCallbacks = 0;
    for (let i = 0; i < 200; i++) {
      pendingCallbacks++;
      serverStream!.write(chunk, () => pendingCallbacks--);
    }
    await new Promise((r) => setTimeout(r, 300));
    // the writable's own buffer holds the rest; the socket is not stuffed with all of it
    assert.ok(p.sock.writableLength < 8 * 1024 * 1024, `socket buffered ${p.sock.writableLength}`);
    assert.ok(pendingCallbacks > 0);
    p.client.resume();
    let got = 0;
    s.on('data', (d: Buffer) => (got += d.length));
    await waitFor(() => got === 200 * chunk.length, { timeoutMs: 10_000, what: 'all data delivered' });
  } finally {
    await p.close();
  }
});

test('protocol errors (bad frames, bad header compression) close the session', async () => {
  const p = await pair((srv) => srv.on('stream', (s) => s.accept()));
  try {
    const closed = once(p.srv, 'close');
    // a SYN_STREAM whose header block is not zlib at all
    p.client.write(Buffer.from([0x80, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0f, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0x01]));
    const [err] = (await closed) as [Error];
    assert.match(err.message, /decompression|too short/);
  } finally {
    await p.close();
  }
});

test('frame-level: DATA for unknown streams is dropped; a peer PING frame is echoed byte-exact', async () => {
  const server = net.createServer((sock) => {
    const s = new SpdySession(sock, { role: 'server' });
    s.on('stream', (st) => st.accept());
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const c = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await once(c, 'connect');
  try {
    c.write(encodeData(99, Buffer.from('nobody'), false));
    c.write(encodePing(1));
    const [chunk] = (await once(c, 'data')) as [Buffer];
    const d = new FrameDecoder();
    d.push(chunk);
    const f = d.next() as any;
    assert.equal(f.kind, 'ping');
    assert.equal(f.id, 1);
  } finally {
    c.destroy();
    server.close();
  }
});
