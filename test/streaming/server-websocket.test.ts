import { test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from '../../src/core/wait';
import { wsOpen } from './clients';
import { execReq, startServer } from './harness';

const ALL = ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'channel.k8s.io'];

test('WebSocket v5: stdin echo, stdin EOF via the close channel, stderr, JSON status, server closes', async () => {
  const h = await startServer();
  try {
    const url = h.server.prepareExec(execReq(['sh', '-c', 'cat; echo bye >&2; exit 4'], { stdin: true }));
    const { ws, done } = await wsOpen(url, ALL);
    assert.equal(ws.protocol, 'v5.channel.k8s.io');

    ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('over websocket\n')]));
    ws.send(Buffer.from([255, 0])); // close stdin
    const r = await done;
    assert.equal(r.messages[0].channel, 1, 'first message is the empty ready message on stdout');
    assert.equal(r.messages[0].data.length, 0);
    assert.equal(r.channels.get(1)?.toString(), 'over websocket\n');
    assert.equal(r.channels.get(2)?.toString(), 'bye\n');
    const status = JSON.parse(r.channels.get(3)!.toString());
    assert.equal(status.reason, 'NonZeroExitCode');
    assert.equal(status.details.causes[0].message, '4');
    assert.equal(r.closeCode, 1000);
  } finally {
    await h.close();
  }
});

test('WebSocket v4: status JSON, resize channel delivers sizes', async () => {
  const h = await startServer();
  try {
    const url = h.server.prepareExec(execReq(['sh', '-c', 'sleep 0.3; echo done'], { tty: true, stderr: false }));
    const { ws, done } = await wsOpen(url, ['v4.channel.k8s.io']);
    assert.equal(ws.protocol, 'v4.channel.k8s.io');

    ws.send(Buffer.concat([Buffer.from([4]), Buffer.from(JSON.stringify({ width: 120, height: 50 }))]));
    const r = await done;
    assert.match(r.channels.get(1)!.toString(), /done/);
    assert.deepEqual(JSON.parse(r.channels.get(3)!.toString()), { metadata: {}, status: 'Success' });
    assert.deepEqual(h.backend.resizes, [{ width: 120, height: 50 }]);
  } finally {
    await h.close();
  }
});

test('WebSocket base64.channel.k8s.io: text frames, digit channel, base64 payload; failure as text', async () => {
  const h = await startServer();
  try {
    const url = h.server.prepareExec(execReq(['sh', '-c', 'head -c 6; exit 1'], { stdin: true }));
    const { ws, done } = await wsOpen(url, ['base64.channel.k8s.io'], true);
    
    ws.send('0' + Buffer.from('abcdef').toString('base64'));
    const r = await done;
    assert.equal(r.channels.get(1)?.toString(), 'abcdef');
    assert.match(r.channels.get(3)!.toString(), /non-zero exit code: exit status 1/);
  } finally {
    await h.close();
  }
});

test('WebSocket: unsupported subprotocol is rejected; client closing kills the process', async () => {
  const h = await startServer();
  try {
    await assert.rejects(wsOpen(h.server.prepareExec(execReq(['true'])), ['v9.nope']), /unexpected response 400/);
    const { ws } = await wsOpen(h.server.prepareExec(execReq(['sleep', '600'], { stdin: true })), ALL);
    await waitFor(() => h.backend.live.size === 1, { what: 'process started' });
    ws.terminate();
    await waitFor(() => h.backend.live.size === 0, { what: 'process killed' });
    await waitFor(() => h.server.activeSessions === 0, { what: 'session gone' });
  } finally {
    await h.close();
  }
});
