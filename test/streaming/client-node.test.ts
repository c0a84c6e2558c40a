import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { waitFor } from '../../src/core/wait';
import { execReq, startServer } from './harness';

/**
 * @kubernetes/client-node (a real third-party WebSocket client) against the streaming server. It
 * builds `${cluster.server}/api/v1/namespaces/.../exec?...`; ending the cluster URL with `?_=` makes
 * the token URL the path and the rest a query parameter, which the server ignores (as kubelet's does).
 */
function kubeConfigFor(url: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: `${url}?_=`, skipTLSVerify: true }],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

function sink() {
  const s = new PassThrough();
  let text = '';
  s.on('data', (d: Buffer) => (text += d.toString()));
  return { s, text: () => text };
}

test('client-node Exec (v5): stdin echo, stderr, exit code in the status callback', async () => {
  const h = await startServer();
  try {
    const url = h.server.prepareExec(execReq(['sh', '-c', 'cat; echo e >&2; exit 5'], { stdin: true }));
    const out = sink();
    const err = sink();
    let status: k8s.V1Status | undefined;
    const ws = await new k8s.Exec(kubeConfigFor(url)).exec('ns', 'pod', 'ctr', ['ignored'], out.s, err.s, Readable.from([Buffer.from('from client-node\n')]), false, (s) => {
      status = s;
    });
    assert.equal((ws as unknown as { protocol: string }).protocol, 'v5.channel.k8s.io');
    await waitFor(() => status, { what: 'status callback' });
    assert.equal(out.text(), 'from client-node\n');
    assert.equal(err.text(), 'e\n');
    assert.equal(status!.reason, 'NonZeroExitCode');
    assert.equal(status!.details?.causes?.[0]?.message, '5');
    const ok = await new Promise<k8s.V1Status>((resolve, reject) => {
      new k8s.Exec(kubeConfigFor(h.server.prepareExec(execReq(['echo', 'hi'])))).exec('ns', 'pod', 'ctr', ['x'], sink().s, sink().s, null, false, resolve).catch(reject);
    });
    assert.equal(ok.status, 'Success');
  } finally {
    await h.close();
  }
});

test('client-node PortForward: data round trip through a forwarded port', async () => {
  const h = await startServer();
  const echo = net.createServer((c) => c.pipe(c));
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  try {
    const port = (echo.address() as net.AddressInfo).port;
    const url = h.server.preparePortForward({ podSandboxId: 'pod', ports: [port] });
    const out = sink();
    const input = new PassThrough();
    const ws = (await new k8s.PortForward(kubeConfigFor(url)).portForward('ns', 'pod', [port], out.s, null, input)) as unknown as { close(): void };
    input.write('through client-node');
    await waitFor(() => out.text() === 'through client-node', { what: 'echo through port-forward' });
    ws.close();
    await waitFor(() => h.server.activeSessions === 0, { what: 'session closed' });
  } finally {
    echo.close();
    await h.close();
  }
});
