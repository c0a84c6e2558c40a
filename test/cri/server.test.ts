import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import * as net from 'node:net';
import { status } from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { CriServer } from '../../src/cri/server';
import { notFound } from '../../src/core/errors';
import { nullLogger } from '../../src/log/logger';
import { criClients } from '../../e2e/harness/cri-client';

async function withServer(fn: (c: ReturnType<typeof criClients>, s: CriServer, metrics: Registry, sock: string) => Promise<void>, ready = true) {
  const dir = mkdtempSync('/tmp/corral-srv-');
  const sock = path.join(dir, 's.sock');
  const metrics = new Registry();
  const s = new CriServer({ log: nullLogger, metrics, maxMessageBytes: 4 * 1024 * 1024 });
  s.register({
    unary: {
      Version: async () => ({ version: '0.1.0', runtime_name: 'corral' }),
      ContainerStatus: async (req: { container_id: string }) => {
        throw notFound(`container ${req.container_id} not found`);
      },
      PodSandboxStatus: async () => ({ status: { id: 'p', created_at: '1732000000123456789' } }),
      ListContainers: async () => {
        throw new TypeError('boom');
      },
    },
    stream: {
      StreamImages: async (_req, _ctx, out) => {
        for (let i = 0; i < 3; i++) out.write({ images: [{ id: `sha256:${i}` }] });
      },
    },
  });
  s.build();
  await s.bind(`unix://${sock}`);
  s.setReady(ready);
  const c = criClients(sock);
  try {
    await fn(c, s, metrics, sock);
  } finally {
    c.rt.close();
    c.img.close();
    await s.shutdown(1000);
    rmSync(dir, { recursive: true, force: true });
  }
}

const code = (e: unknown) => (e as { code: number }).code;

test('handlers answer; domain errors map to gRPC codes; unknown errors are INTERNAL', async () => {
  await withServer(async ({ rt }, _s, metrics) => {
    assert.equal((await rt.Version({})).runtime_name, 'corral');
    await assert.rejects(rt.ContainerStatus({ container_id: 'nope' }), (e) => code(e) === status.NOT_FOUND && /container nope not found/.test((e as Error).message));
    await assert.rejects(rt.ListContainers({}), (e) => code(e) === status.INTERNAL && /boom/.test((e as Error).message));
    const st = await rt.PodSandboxStatus({ pod_sandbox_id: 'p' });
    assert.equal(st.status?.created_at, '1732000000123456789', 'int64 ns timestamp passes as an exact string');
    const text = await metrics.metrics();
    assert.match(text, /corral_cri_operations_total\{operation="ContainerStatus",code="NOT_FOUND"\} 1/);
    assert.match(text, /corral_cri_operation_duration_seconds_count\{operation="Version",code="OK"\} 1/);
  });
});

test('RPCs without a handler answer UNIMPLEMENTED with their name', async () => {
  await withServer(async ({ rt, img }) => {
    await assert.rejects(rt.RunPodSandbox({}), (e) => code(e) === status.UNIMPLEMENTED && /RunPodSandbox/.test((e as Error).message));
    await assert.rejects(img.PullImage({}), (e) => code(e) === status.UNIMPLEMENTED && /PullImage/.test((e as Error).message));
    const stream = rt.stream('GetContainerEvents', {});
    const err = await new Promise<{ code: number; details: string }>((resolve) => {
      stream.on('error', resolve);
      stream.on('data', () => {});
    });
    assert.equal(err.code, status.UNIMPLEMENTED);
    assert.match(err.details, /GetContainerEvents/);
  });
});

test('server streams deliver every message', async () => {
  await withServer(async ({ img }) => {
    const raw = img.raw as unknown as { StreamImages(r: object): NodeJS.EventEmitter };
    const s = raw.StreamImages({});
    const got: string[] = [];
    await new Promise<void>((resolve, reject) => {
      s.on('data', (m: { images: { id: string }[] }) => got.push(m.images[0].id));
      s.on('end', resolve);
      s.on('error', reject);
    });
    assert.deepEqual(got, ['sha256:0', 'sha256:1', 'sha256:2']);
  });
});

test('before recovery finishes every RPC is UNAVAILABLE', async () => {
  await withServer(async ({ rt }, s) => {
    await assert.rejects(rt.Version({}), (e) => code(e) === status.UNAVAILABLE);
    s.setReady(true);
    assert.equal((await rt.Version({})).runtime_name, 'corral');
  }, false);
});

test('a too-large message or garbage on the socket does not stop the server', async () => {
  await withServer(async ({ rt }, _s, _m, sock) => {
    const huge = 'x'.repeat(5 * 1024 * 1024);
    await assert.rejects(rt.ContainerStatus({ container_id: huge }), (e) => code(e) === status.RESOURCE_EXHAUSTED);
    await new Promise<void>((resolve) => {
      const c = net.connect(sock, () => c.end(Buffer.from('GET / HTTP/1.1\r\n\r\n\x00\x01garbage')));
      c.on('error', () => resolve());
      c.on('close', () => resolve());
      c.resume();
    });
    assert.equal((await rt.Version({})).runtime_name, 'corral');
  });
});
