import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { isCorralError } from '../../src/core/errors';
import { waitFor } from '../../src/core/wait';
import { collect, spdyExec, spdyUpgrade } from './clients';
import { execReq, startServer } from './harness';

const exitCodeOf = (r: { status?: { reason?: string; details?: { causes: { reason?: string; message: string }[] } } }) =>
  r.status?.reason === 'NonZeroExitCode' ? Number(r.status.details!.causes.find((c) => c.reason === 'ExitCode')!.message) : 0;

test('SPDY exec: stdin echoed through stdout, separate stderr, success status', async () => {
  const h = await startServer();
  try {
    const url = h.server.prepareExec(execReq(['sh', '-c', 'cat; echo oops >&2'], { stdin: true }));
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/exec\/[A-Za-z0-9_-]{16,}$/);
    const r = await spdyExec(url, { stdin: 'hello\nworld\n', stderr: true });
    assert.equal(r.protocol, 'v4.channel.k8s.io');
    assert.equal(r.stdout, 'hello\nworld\n');
    assert.equal(r.stderr, 'oops\n');
    assert.deepEqual(r.status, { metadata: {}, status: 'Success' });
  } finally {
    await h.close();
  }
});

test('SPDY exec: non-zero exit code is reported as NonZeroExitCode with an ExitCode cause', async () => {
  const h = await startServer();
  try {
    const r = await spdyExec(h.server.prepareExec(execReq(['sh', '-c', 'echo out; exit 7'])), { stderr: true });
    assert.equal(r.stdout, 'out\n');
    assert.equal(r.status?.status, 'Failure');
    assert.equal(exitCodeOf(r), 7);
  } finally {
    await h.close();
  }
});

test('SPDY exec: backend failure becomes an InternalError status', async () => {
  const h = await startServer();
  try {
    const r = await spdyExec(h.server.prepareExec(execReq(['/nonexistent/binary'])), { stderr: true });
    assert.equal(r.status?.status, 'Failure');
    assert.equal((r.status as { reason?: string }).reason, 'InternalError');
  } finally {
    await h.close();
  }
});

test('SPDY exec on older protocols: v3/v2/v1 negotiate, errors are plain text, success writes nothing', async () => {
  const h = await startServer();
  try {
    for (const protocol of ['v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io']) {
      const ok = await spdyExec(h.server.prepareExec(execReq(['echo', 'x'])), { protocol, stderr: true });
      assert.equal(ok.protocol, protocol);
      assert.equal(ok.stdout, 'x\n');
      assert.equal(ok.error, '');
      const bad = await spdyExec(h.server.prepareExec(execReq(['sh', '-c', 'exit 2'])), { protocol, stderr: true });
      assert.match(bad.error, /non-zero exit code: exit status 2/);
    }
  } finally {
    await h.close();
  }
});

test('SPDY exec: resize events reach the backend; TTY exec sees them via stty size', async () => {
  const h = await startServer();
  try {
    const url = h.server.prepareExec(execReq(['sh', '-c', 'while read l; do stty size; done'], { tty: true, stdin: true, stderr: false }));
    let seen = '';
    await spdyExec(url, {
      tty: true,
      holdStdin: true,
      onStreams: async ({ stdin, stdout, resize }) => {
        stdout!.on('data', (d: Buffer) => (seen += d.toString()));
        resize!.write(JSON.stringify({ Width: 100, Height: 40 }) + '\n');
        try {
          await waitFor(
            () => {
              stdin!.write('\n');
              return seen.includes('40 100');
            },
            { timeoutMs: 10_000, intervalMs: 100, what: 'stty size to show the new size' },
          );
        } finally {
          stdin!.end(); // EOF ends the read loop, so the command exits
        }
      },
    });
    assert.match(seen, /40 100/);
    assert.deepEqual(h.backend.resizes.at(-1), { width: 100, height: 40 });
  } finally {
    await h.close();
  }
});

test('SPDY exec: 20 parallel sessions', async () => {
  const h = await startServer();
  try {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        spdyExec(h.server.prepareExec(execReq(['sh', '-c', `cat; exit ${i % 3}`], { stdin: true })), { stdin: `session-${i}\n`, stderr: true }),
      ),
    );
    results.forEach((r, i) => {
      assert.equal(r.stdout, `session-${i}\n`);
      assert.equal(exitCodeOf(r), i % 3);
    });
    await waitFor(() => h.server.activeSessions === 0 && h.backend.live.size === 0, { what: 'sessions and processes gone' });
  } finally {
    await h.close();
  }
});

test('tokens: reused, unknown, expired and wrong-kind tokens get 404; non-upgrade requests 400', async () => {
  let now = 1_000_000;
  const h = await startServer({ now: () => now });
  try {
    const url = h.server.prepareExec(execReq(['true']));
    const first = await spdyExec(url, { stderr: true });
    assert.equal(first.status?.status, 'Success');
    const reuse = await spdyUpgrade(url, ['v4.channel.k8s.io']);
    assert.equal(reuse.status, 404);

    const expiring = h.server.prepareExec(execReq(['true']));
    now += 60_001;
    assert.equal((await spdyUpgrade(expiring, ['v4.channel.k8s.io'])).status, 404);

    assert.equal((await spdyUpgrade(`${h.server.url}/exec/doesnotexist`, ['v4.channel.k8s.io'])).status, 404);
    const pf = h.server.preparePortForward({ podSandboxId: 'p', ports: [] });
    assert.equal((await spdyUpgrade(pf.replace('/portforward/', '/exec/'), ['v4.channel.k8s.io'])).status, 404);

    const plain = await new Promise<number>((resolve) => {
      http.get(h.server.prepareExec(execReq(['true'])), (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
    });
    assert.equal(plain, 400);
  } finally {
    await h.close();
  }
});

test('protocol negotiation: none offered → 400, none supported → 403 with accepted list', async () => {
  const h = await startServer();
  try {
    const none = await spdyUpgrade(h.server.prepareExec(execReq(['true'])), []);
    assert.equal(none.status, 400);
    assert.match(none.body, /X-Stream-Protocol-Version is required/);
    const bad = await spdyUpgrade(h.server.prepareExec(execReq(['true'])), ['v9.channel.k8s.io']);
    assert.equal(bad.status, 403);
    assert.match(String(bad.headers['x-accepted-stream-protocol-versions']), /v4\.channel\.k8s\.io/);
  } finally {
    await h.close();
  }
});

test('prepare validation: stdio all false, tty with stderr, missing ids are InvalidArgument', async () => {
  const h = await startServer();
  try {
    assert.throws(() => h.server.prepareExec(execReq(['true'], { stdout: false, stderr: false })), (e) => isCorralError(e, 'InvalidArgument'));
    assert.throws(() => h.server.prepareExec(execReq(['true'], { tty: true, stderr: true })), (e) => isCorralError(e, 'InvalidArgument'));
    assert.throws(() => h.server.prepareExec(execReq([])), (e) => isCorralError(e, 'InvalidArgument'));
    assert.throws(() => h.server.prepareAttach({ containerId: '', tty: false, stdin: true, stdout: false, stderr: false }), (e) => isCorralError(e, 'InvalidArgument'));
    assert.throws(() => h.server.preparePortForward({ podSandboxId: '', ports: [] }), (e) => isCorralError(e, 'InvalidArgument'));
    assert.throws(() => h.server.preparePortForward({ podSandboxId: 'p', ports: [70000] }), (e) => isCorralError(e, 'InvalidArgument'));
  } finally {
    await h.close();
  }
});

test('client going away kills the backend process and frees the session', async () => {
  const h = await startServer();
  try {
    const url = h.server.prepareExec(execReq(['sleep', '600'], { stdin: true }));
    const up = await spdyUpgrade(url, ['v4.channel.k8s.io']);
    const s = up.session!;
    await s.openStream({ streamtype: 'error' });
    await s.openStream({ streamtype: 'stdin' });
    await s.openStream({ streamtype: 'stdout' });
    await s.openStream({ streamtype: 'stderr' });
    await waitFor(() => h.backend.live.size === 1, { what: 'process started' });
    s.destroy(); // TCP close without any goodbye
    await waitFor(() => h.backend.live.size === 0, { what: 'process killed' });
    assert.deepEqual(h.backend.aborted, ['sleep 600']);
    await waitFor(() => h.server.activeSessions === 0, { what: 'session gone' });
  } finally {
    await h.close();
  }
});

test('attach: stdin reaches a running process, output comes back, detaching leaves it running', async () => {
  const h = await startServer();
  try {
    const child = h.backend.startContainer('ctr', ['sh', '-c', 'while read l; do echo "got $l"; done']);
    const url = h.server.prepareAttach({ containerId: 'ctr', tty: false, stdin: true, stdout: true, stderr: false });
    const up = await spdyUpgrade(url, ['v4.channel.k8s.io']);
    const s = up.session!;
    await s.openStream({ streamtype: 'error' });
    const stdin = await s.openStream({ streamtype: 'stdin' });
    const stdout = await s.openStream({ streamtype: 'stdout' });
    let out = '';
    stdout.on('data', (d: Buffer) => (out += d));
    stdin.write('ping\n');
    await waitFor(() => out.includes('got ping'), { what: 'attach output' });
    s.destroy();
    await waitFor(() => h.server.activeSessions === 0, { what: 'session gone' });
    assert.equal(child.exitCode, null, 'detach must not stop the container');
    // a second attach still works
    const again = h.server.prepareAttach({ containerId: 'ctr', tty: false, stdin: true, stdout: true, stderr: false });
    const r = await spdyExec(again, { stdin: 'again\n', holdStdin: true, onStreams: ({ stdout: so, stdin: si }) => {
      so!.on('data', (d: Buffer) => {
        if (d.toString().includes('got again')) child.kill('SIGKILL');
      });
      void si;
    } });
    assert.match(r.stdout, /got again/);
    assert.equal(r.status?.status, 'Success');
  } finally {
    await h.close();
  }
});

test('an upgraded session outlives the HTTP request timeout', async () => {
  const h = await startServer({ requestTimeoutMs: 300, connectionsCheckingIntervalMs: 100 });
  try {
    const url = h.server.prepareExec(execReq(['sh', '-c', 'sleep 2; echo late'], { stdin: false }));
    const r = await spdyExec(url, { stderr: true });
    assert.equal(r.stdout, 'late\n');
    assert.equal(r.status?.status, 'Success');
  } finally {
    await h.close();
  }
});

test('collect helper sanity (stream that ends immediately)', async () => {
  const { Readable } = await import('node:stream');
  assert.equal((await collect(Readable.from([]))).length, 0);
});
