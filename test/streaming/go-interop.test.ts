import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import * as net from 'node:net';
import { once } from 'node:events';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { run } from '../../src/sys/exec';
import { waitFor } from '../../src/core/wait';
import { execReq, startServer } from './harness';

/**
 * Interop with Go's SPDY client stack (moby/spdystream, as vendored by client-go for kubelet and
 * crictl). The client is compiled from test/streaming/go with Debian's golang-go and
 * golang-github-docker-spdystream-dev (GOPATH mode, no network). Skipped when they are absent.
 */
const GOPATH = '/usr/share/gocode';
const SRC = resolve(__dirname, '../../../test/streaming/go');
const haveGo = existsSync('/usr/bin/go') && existsSync(join(GOPATH, 'src/github.com/moby/spdystream/connection.go'));
const skip = haveGo ? false : 'needs Debian packages golang-go and golang-github-docker-spdystream-dev';

let binDir: string | undefined;
async function goClient(): Promise<string> {
  if (!binDir) {
    binDir = mkdtempSync(join(tmpdir(), 'corral-spdyclient-'));
    await run('go', ['build', '-o', join(binDir, 'spdyclient'), '.'], {
      timeoutMs: 300_000,
      cwd: SRC,
      env: { ...process.env, GO111MODULE: 'off', GOPATH, GOFLAGS: '', GOCACHE: process.env.GOCACHE ?? join(homedir(), '.cache', 'go-build') },
    });
  }
  return join(binDir, 'spdyclient');
}

after(() => {
  if (binDir) rmSync(binDir, { recursive: true, force: true });
});

async function goRun(args: string[]): Promise<any> {
  const r = await run(await goClient(), args, { timeoutMs: 60_000 });
  return JSON.parse(r.stdout);
}

test('Go spdystream client: exec with stdin/stdout/stderr, exit code, ping', { skip, timeout: 360_000 }, async () => {
  const h = await startServer();
  try {
    const url = h.server.prepareExec(execReq(['sh', '-c', 'cat; echo to-stderr >&2; exit 3'], { stdin: true }));
    const r = await goRun(['-url', url, '-stdin', 'hello from go\n']);
    assert.equal(r.protocol, 'v4.channel.k8s.io');
    assert.equal(r.stdout, 'hello from go\n');
    assert.equal(r.stderr, 'to-stderr\n');
    assert.equal(r.status.reason, 'NonZeroExitCode');
    assert.equal(r.status.details.causes[0].message, '3');
    const ok = await goRun(['-url', h.server.prepareExec(execReq(['true'], { stdin: true }))]);
    assert.deepEqual(ok.status, { metadata: {}, status: 'Success' });
  } finally {
    await h.close();
  }
});

test('Go spdystream client: 5 MB stdin echoed byte for byte (no 64 KiB window stall)', { skip, timeout: 360_000 }, async () => {
  const h = await startServer();
  try {
    const n = 5 * 1024 * 1024;
    const url = h.server.prepareExec(execReq(['cat'], { stdin: true }));
    const r = await goRun(['-url', url, '-stdin-bytes', String(n)]);
    // same xorshift stream as the Go client
    const data = Buffer.alloc(n);
    let x = 2463534242;
    for (let i = 0; i < n; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      data[i] = x & 0xff;
    }
    assert.equal(r.stdoutLen, n);
    assert.equal(r.stdoutSha256, createHash('sha256').update(data).digest('hex'));
  } finally {
    await h.close();
  }
});

test('Go spdystream client: TTY exec sees the resize', { skip, timeout: 360_000 }, async () => {
  const h = await startServer();
  try {
    const url = h.server.prepareExec(
      execReq(['sh', '-c', 'i=0; while [ $i -lt 50 ]; do s=$(stty size); [ "$s" = "40 100" ] && break; sleep 0.1; i=$((i+1)); done; echo "$s"'], {
        tty: true,
        stderr: false,
      }),
    );
    const r = await goRun(['-url', url, '-tty', '-no-stdin', '-resize', '100x40']);
    assert.match(r.stdout, /40 100/);
    assert.equal(r.status.status, 'Success');
  } finally {
    await h.close();
  }
});

test('Go spdystream client: port-forward, 8 concurrent connections', { skip, timeout: 360_000 }, async () => {
  const h = await startServer();
  const conns = new Set<net.Socket>();
  const echo = net.createServer((c) => {
    conns.add(c);
    c.on('close', () => conns.delete(c));
    c.pipe(c);
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  try {
    const port = (echo.address() as net.AddressInfo).port;
    const url = h.server.preparePortForward({ podSandboxId: 'pod', ports: [] });
    const r = await goRun(['-mode', 'portforward', '-url', url, '-port', String(port), '-n', '8']);
    r.replies.forEach((reply: string, i: number) => assert.equal(reply, `conn-${i};`.repeat(1000)));
    assert.deepEqual(r.errors, Array(8).fill(''));
    await waitFor(() => conns.size === 0 && h.server.activeSessions === 0, { what: 'connections and session closed' });
  } finally {
    echo.close();
    await h.close();
  }
});
