/**
 * Exec, Attach and PortForward end to end through the real daemon: busybox pulled from a local registry,
 * a pod on its own bridge (corral-str0, 10.243.0.0/24) and cgroup parent (/corral-e2e-str), containers
 * under conmon + runc; the URLs the RPCs return are used with the test SPDY and WebSocket clients and
 * with @kubernetes/client-node's Exec and PortForward classes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import { startDaemon, type TestDaemon } from './harness/daemon';
import { startRegistry, type TestRegistry } from './harness/registry';
import { buildBusyboxImage, pushImage } from './harness/oci-image';
import { enableNetwork } from './harness/network';
import { tearDown } from './harness/teardown';
import { collect, spdyExec, spdyUpgrade, wsOpen } from '../test/streaming/clients';
import { ensureHelper, processesWith } from '../test/streaming/backends/fixture';
import { waitFor } from '../src/core/wait';

const CGROUP_PARENT = '/corral-e2e-str';
const NETWORK = { name: 'corral-e2e-str', bridge: 'corral-str0', subnet: '10.243.0.0/24' };
const GRPC = { INVALID_ARGUMENT: 3, NOT_FOUND: 5, FAILED_PRECONDITION: 9 };

let reg: TestRegistry;
let d: TestDaemon;
let image: string;
let podId: string;
let web: string;
let echo: string;

function podConfig(name: string): any {
  return {
    metadata: { name, namespace: 'e2e-str', uid: `uid-${name}`, attempt: 0 },
    hostname: name,
    log_directory: path.join(d.dir, 'logs', name),
    linux: { cgroup_parent: CGROUP_PARENT, security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD', target_id: '' } } },
  };
}

async function startContainer(name: string, command: string[], over: Record<string, unknown> = {}): Promise<string> {
  const { container_id } = await d.rt.CreateContainer({
    pod_sandbox_id: podId,
    config: { metadata: { name, attempt: 0 }, image: { image }, command, log_path: `${name}.log`, ...over },
    sandbox_config: podConfig('main'),
  });
  await d.rt.StartContainer({ container_id });
  return container_id;
}

async function state(id: string): Promise<string> {
  return (await d.rt.ContainerStatus({ container_id: id })).status!.state;
}

async function expectCode(p: Promise<unknown>, code: number): Promise<void> {
  await assert.rejects(p, (e: { code?: number; details?: string }) => {
    assert.equal(e.code, code, `grpc code ${e.code}: ${e.details}`);
    return true;
  });
}

const exitCodeOf = (r: { status?: { reason?: string; details?: { causes: { reason?: string; message: string }[] } } }) =>
  r.status?.reason === 'NonZeroExitCode' ? Number(r.status.details!.causes.find((c) => c.reason === 'ExitCode')!.message) : 0;

async function execUrl(cmd: string[], o: { tty?: boolean; stdin?: boolean; stderr?: boolean; id?: string } = {}): Promise<string> {
  const r = await d.rt.Exec({ container_id: o.id ?? web, cmd, tty: !!o.tty, stdin: !!o.stdin, stdout: true, stderr: o.stderr ?? !o.tty });
  return r.url;
}

/** client-node builds `${server}/api/v1/...`: ending the server URL with `?_=` keeps the token URL as the path. */
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
  s.on('data', (b: Buffer) => (text += b.toString()));
  return { s, text: () => text };
}

/** One HTTP GET through a SPDY port-forward session; returns the raw response and the error stream. */
async function forwardGet(port: number): Promise<{ body: string; error: string }> {
  const { url } = await d.rt.PortForward({ pod_sandbox_id: podId, port: [port] });
  const up = await spdyUpgrade(url, ['portforward.k8s.io']);
  const s = up.session!;
  try {
    const err = await s.openStream({ port: String(port), requestid: '0', streamtype: 'error' });
    err.end();
    const errP = collect(err);
    const data = await s.openStream({ port: String(port), requestid: '0', streamtype: 'data' });
    const bodyP = collect(data);
    data.end('GET /index.html HTTP/1.0\r\n\r\n');
    return { body: (await bodyP).toString(), error: (await errP).toString() };
  } finally {
    s.destroy();
  }
}

before(async () => {
  ensureHelper(); // what `make build` does: dist*/bin/corral-io beside the daemon
  reg = await startRegistry();
  await pushImage(reg, 'e2e/busybox', '1', buildBusyboxImage({ config: { Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'], WorkingDir: '/' } }));
  image = `${reg.host}/e2e/busybox:1`;
  d = await startDaemon({ logLevel: 'debug' });
  await enableNetwork(d, NETWORK);
  await d.img.PullImage({ image: { image } });
  podId = (await d.rt.RunPodSandbox({ config: podConfig('main') })).pod_sandbox_id;
  web = await startContainer('web', ['sh', '-c', 'mkdir -p /www && echo "<h1>corral e2e page</h1>" > /www/index.html && exec httpd -f -p 8080 -h /www']);
  echo = await startContainer('echo', ['sh', '-c', 'while read l; do echo "got:$l"; echo "err:$l" >&2; done'], { stdin: true });
  await waitFor(async () => (await state(web)) === 'CONTAINER_RUNNING' && (await state(echo)) === 'CONTAINER_RUNNING', { what: 'containers running' });
});

after(() => tearDown({ d, reg, network: NETWORK, cgroupParent: CGROUP_PARENT }));

test('Exec over SPDY: stdin round trip, separate stderr, non-zero exit code; the token is single-use', async () => {
  const url = await execUrl(['sh', '-c', 'cat; echo oops >&2; exit 3'], { stdin: true });
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/exec\/[A-Za-z0-9_-]+$/);
  const r = await spdyExec(url, { stdin: 'hello\nworld\n', stderr: true });
  assert.equal(r.stdout, 'hello\nworld\n');
  assert.equal(r.stderr, 'oops\n');
  assert.equal(exitCodeOf(r), 3);
  const again = await spdyUpgrade(url, ['v4.channel.k8s.io']);
  assert.equal(again.status, 404, 'a used token is rejected');
  const plain = await new Promise<number>((resolve, reject) => http.get(url, (res) => (res.resume(), resolve(res.statusCode ?? 0))).on('error', reject));
  assert.equal(plain, 404);
});

test('Exec over WebSocket (v5): stdout, stderr, stdin close channel, status', async () => {
  const { ws, done } = await wsOpen(await execUrl(['sh', '-c', 'cat; echo bye >&2; exit 4'], { stdin: true }), ['v5.channel.k8s.io', 'v4.channel.k8s.io']);
  assert.equal(ws.protocol, 'v5.channel.k8s.io');
  ws.send(Buffer.concat([Buffer.from([0]), Buffer.from('over websocket\n')]));
  ws.send(Buffer.from([255, 0]));
  const r = await done;
  assert.equal(r.channels.get(1)?.toString(), 'over websocket\n');
  assert.equal(r.channels.get(2)?.toString(), 'bye\n');
  const status = JSON.parse(r.channels.get(3)!.toString());
  assert.equal(status.reason, 'NonZeroExitCode');
  assert.equal(status.details.causes[0].message, '4');
});

test('Exec with a TTY: resize visible via stty size', async () => {
  const url = await execUrl(['sh', '-c', 'while read l; do stty size; done'], { tty: true, stdin: true });
  let seen = '';
  const r = await spdyExec(url, {
    tty: true,
    holdStdin: true,
    onStreams: async ({ stdin, stdout, resize }) => {
      stdout!.on('data', (b: Buffer) => (seen += b.toString()));
      resize!.write(JSON.stringify({ Width: 132, Height: 43 }) + '\n');
      try {
        await waitFor(
          () => {
            stdin!.write('\n');
            return seen.includes('43 132');
          },
          { timeoutMs: 15_000, intervalMs: 100, what: 'stty size' },
        );
      } finally {
        stdin!.write('\x04');
      }
    },
  });
  assert.match(seen, /43 132/);
  assert.equal(r.status?.status, 'Success');
});

test('Exec with @kubernetes/client-node: stdin, stderr, exit code', async () => {
  const out = sink();
  const err = sink();
  let status: k8s.V1Status | undefined;
  const url = await execUrl(['sh', '-c', 'cat; echo e >&2; exit 5'], { stdin: true });
  await new k8s.Exec(kubeConfigFor(url)).exec('ns', 'pod', 'ctr', ['ignored'], out.s, err.s, Readable.from([Buffer.from('from client-node\n')]), false, (s) => {
    status = s;
  });
  await waitFor(() => status, { what: 'status callback' });
  assert.equal(out.text(), 'from client-node\n');
  assert.equal(err.text(), 'e\n');
  assert.equal(status!.reason, 'NonZeroExitCode');
  assert.equal(status!.details?.causes?.[0]?.message, '5');
});

test('Exec: 20 parallel sessions; a client going away kills the exec\'d process', async () => {
  const results = await Promise.all(Array.from({ length: 20 }, async (_, i) => spdyExec(await execUrl(['sh', '-c', `echo n${i}; exit ${i % 4}`]), { stderr: true })));
  results.forEach((r, i) => {
    assert.equal(r.stdout, `n${i}\n`);
    assert.equal(exitCodeOf(r), i % 4);
  });
  const marker = String(40000 + (process.pid % 10000));
  const { ws } = await wsOpen(await execUrl(['sleep', marker], { stdin: true }), ['v5.channel.k8s.io']);
  await waitFor(() => processesWith(`sleep\0${marker}`).length === 1, { what: 'exec\'d sleep' });
  ws.terminate();
  await waitFor(() => processesWith(`sleep\0${marker}`).length === 0, { what: 'exec\'d process killed' });
  assert.equal(await state(web), 'CONTAINER_RUNNING');
});

test('Attach: read/echo loop over SPDY with separate stderr; detaching leaves the container running', async () => {
  for (const round of ['one', 'two']) {
    const { url } = await d.rt.Attach({ container_id: echo, stdin: true, stdout: true, stderr: true, tty: false });
    const up = await spdyUpgrade(url, ['v4.channel.k8s.io']);
    const s = up.session!;
    await s.openStream({ streamtype: 'error' });
    const stdin = await s.openStream({ streamtype: 'stdin' });
    const stdout = await s.openStream({ streamtype: 'stdout' });
    const stderr = await s.openStream({ streamtype: 'stderr' });
    let out = '';
    let err = '';
    stdout.on('data', (b: Buffer) => (out += b));
    stderr.on('data', (b: Buffer) => (err += b));
    await waitFor(
      () => {
        stdin.write(`${round}\n`);
        return out.includes(`got:${round}`) && err.includes(`err:${round}`);
      },
      { intervalMs: 200, what: `attach echo ${round}` },
    );
    assert.doesNotMatch(out, /err:/);
    s.destroy();
    assert.equal(await state(echo), 'CONTAINER_RUNNING', 'detach must not stop the container');
  }
});

test('PortForward: busybox httpd in the pod over SPDY and client-node; a closed port reports an error', async () => {
  const page = await waitFor(
    async () => {
      const r = await forwardGet(8080);
      return r.body.includes('corral e2e page') ? r : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 200, what: 'httpd page through port-forward' },
  );
  assert.match(page.body, /^HTTP\/1\.[01] 200/);
  assert.equal(page.error, '');
  const closed = await forwardGet(8081);
  assert.match(closed.error, /error forwarding port 8081 to pod .*failed to connect to localhost:8081/);

  const { url } = await d.rt.PortForward({ pod_sandbox_id: podId, port: [8080] });
  const out = sink();
  const input = new PassThrough();
  const ws = (await new k8s.PortForward(kubeConfigFor(url)).portForward('ns', 'pod', [8080], out.s, null, input)) as unknown as { close(): void };
  input.write('GET / HTTP/1.0\r\n\r\n');
  await waitFor(() => out.text().includes('corral e2e page'), { what: 'page through client-node port-forward' });
  ws.close();
});

test('RPC validation: unknown ids are NotFound, stopped containers FailedPrecondition, bad flags InvalidArgument', async () => {
  await expectCode(d.rt.Exec({ container_id: 'f'.repeat(64), cmd: ['true'], stdout: true }), GRPC.NOT_FOUND);
  await expectCode(d.rt.Attach({ container_id: 'f'.repeat(64), stdout: true }), GRPC.NOT_FOUND);
  await expectCode(d.rt.PortForward({ pod_sandbox_id: 'f'.repeat(64), port: [80] }), GRPC.NOT_FOUND);
  await expectCode(d.rt.Exec({ container_id: web, cmd: [], stdout: true }), GRPC.INVALID_ARGUMENT);
  await expectCode(d.rt.Exec({ container_id: web, cmd: ['true'], tty: true, stdout: true, stderr: true }), GRPC.INVALID_ARGUMENT);
  const done = await startContainer('done', ['true']);
  await waitFor(async () => (await state(done)) === 'CONTAINER_EXITED', { what: 'container exited' });
  await expectCode(d.rt.Exec({ container_id: done, cmd: ['true'], stdout: true }), GRPC.FAILED_PRECONDITION);
  await expectCode(d.rt.Attach({ container_id: done, stdout: true }), GRPC.FAILED_PRECONDITION);
});
