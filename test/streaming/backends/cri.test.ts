import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isCorralError, notFound } from '../../../src/core/errors';
import { streamContainer, streamingHandlers, type StreamingContainers, type StreamingSandboxes } from '../../../src/cri/streaming';
import { resizeMessage, execProcessSpec } from '../../../src/streaming/backends';
import type { CallContext } from '../../../src/cri/types';
import { nullLogger } from '../../../src/log/logger';

const ctx: CallContext = { method: 'X', signal: new AbortController().signal, log: nullLogger };
const ctr = (id: string, state: string) => ({
  id, state, sandboxId: 'p', handler: 'runc', paths: { bundle: `/run/c/${id}` } as never, config: { tty: false, stdin: true, stdinOnce: false },
});

function setup() {
  const prepared: { kind: string; req: unknown }[] = [];
  const server = {
    prepareExec: (req: unknown) => (prepared.push({ kind: 'exec', req }), 'http://s/exec/t1'),
    prepareAttach: (req: unknown) => (prepared.push({ kind: 'attach', req }), 'http://s/attach/t2'),
    preparePortForward: (req: unknown) => (prepared.push({ kind: 'portforward', req }), 'http://s/portforward/t3'),
  };
  const containers: StreamingContainers = {
    get: (id) => {
      if ('running-full-id'.startsWith(id)) return ctr('running-full-id', 'running') as never;
      if (id === 'stopped') return ctr('stopped', 'exited') as never;
      throw notFound(`container ${id} not found`);
    },
  };
  const sandboxes: StreamingSandboxes = {
    get: (id) => {
      if (id === 'pod') return { id: 'pod', state: 'ready', paths: { netns: '/run/netns/x' } } as never;
      if (id === 'down') return { id: 'down', state: 'notready', paths: {} } as never;
      throw notFound(`pod ${id} not found`);
    },
  };
  const h = streamingHandlers({ server: server as never, containers, sandboxes }).unary!;
  return { h, prepared };
}

test('Exec/Attach: URL for a running container (prefix resolved), NotFound, FailedPrecondition, InvalidArgument', async () => {
  const { h, prepared } = setup();
  assert.deepEqual(await h.Exec({ container_id: 'running', cmd: ['ls'], tty: false, stdin: false, stdout: true, stderr: true }, ctx), { url: 'http://s/exec/t1' });
  assert.deepEqual(prepared[0], { kind: 'exec', req: { containerId: 'running-full-id', cmd: ['ls'], tty: false, stdin: false, stdout: true, stderr: true } });
  await assert.rejects(h.Exec({ container_id: 'nope', cmd: ['ls'], stdout: true }, ctx), (e) => isCorralError(e, 'NotFound'));
  await assert.rejects(h.Exec({ container_id: 'stopped', cmd: ['ls'], stdout: true }, ctx), (e) => isCorralError(e, 'FailedPrecondition'));
  await assert.rejects(h.Exec({ container_id: 'running', cmd: [], stdout: true }, ctx), (e) => isCorralError(e, 'InvalidArgument'));
  await assert.rejects(h.Exec({ container_id: 'running', cmd: ['sh'], tty: true, stdout: true, stderr: true }, ctx), (e) => isCorralError(e, 'InvalidArgument'));
  await assert.rejects(h.Attach({ container_id: 'running', stdin: false, stdout: false, stderr: false }, ctx), (e) => isCorralError(e, 'InvalidArgument'));
  assert.deepEqual(await h.Attach({ container_id: 'running-full-id', stdin: true, stdout: true, stderr: false, tty: false }, ctx), { url: 'http://s/attach/t2' });
  await assert.rejects(h.Attach({ container_id: 'stopped', stdout: true }, ctx), (e) => isCorralError(e, 'FailedPrecondition'));
  assert.equal(prepared.length, 2, 'nothing prepared for refused requests');
});

test('PortForward: URL for a ready pod; NotFound, FailedPrecondition, bad ports', async () => {
  const { h, prepared } = setup();
  assert.deepEqual(await h.PortForward({ pod_sandbox_id: 'pod', port: [80, 8080] }, ctx), { url: 'http://s/portforward/t3' });
  assert.deepEqual(prepared[0].req, { podSandboxId: 'pod', ports: [80, 8080] });
  await assert.rejects(h.PortForward({ pod_sandbox_id: 'gone', port: [] }, ctx), (e) => isCorralError(e, 'NotFound'));
  await assert.rejects(h.PortForward({ pod_sandbox_id: 'down', port: [] }, ctx), (e) => isCorralError(e, 'FailedPrecondition'));
  await assert.rejects(h.PortForward({ pod_sandbox_id: 'pod', port: [70000] }, ctx), (e) => isCorralError(e, 'InvalidArgument'));
});

test('backend views: container paths, resize message clamp, exec process spec', () => {
  const v = streamContainer(ctr('abc', 'running') as never, { runtime: () => ({ name: 'runc', path: '/usr/sbin/runc', root: '/run/runc' }), socketDir: '/run/corral/sockets' });
  assert.equal(v.attachSocket, '/run/corral/sockets/abc/attach');
  assert.equal(v.ctlFifo, '/run/c/abc/ctl');
  assert.equal(v.running, true);
  assert.equal(resizeMessage({ width: 80, height: 24 }), '1 24 80\n');
  assert.equal(resizeMessage({ width: 5000, height: 2000 }), '1 1000 1000\n');
  const base = { user: { uid: 1000, gid: 1000 }, args: ['app'], env: ['PATH=/bin'], cwd: '/w', noNewPrivileges: true, oomScoreAdj: 5, capabilities: { bounding: ['CAP_KILL'] } };
  const p = execProcessSpec(base as never, ['sh'], true, { width: 100, height: 30 });
  assert.deepEqual(p.args, ['sh']);
  assert.equal(p.terminal, true);
  assert.deepEqual(p.env, ['PATH=/bin', 'TERM=xterm']);
  assert.deepEqual(p.consoleSize, { height: 30, width: 100 });
  assert.equal(p.oomScoreAdj, undefined);
  assert.deepEqual(p.user, { uid: 1000, gid: 1000 });
  assert.equal(p.noNewPrivileges, true);
  assert.deepEqual(base.args, ['app'], 'the base spec is not modified');
  const q = execProcessSpec(base as never, ['ls'], false);
  assert.equal(q.terminal, false);
  assert.deepEqual(q.env, ['PATH=/bin']);
});
