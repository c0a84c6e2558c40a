import * as path from 'node:path';
import { failedPrecondition } from '../core/errors';
import type { Area, AreaDeps } from '../daemon/area';
import type { ContainerRecord } from '../container/types';
import type { SandboxRecord } from '../sandbox/types';
import type { RuntimeDriver } from '../runtime/driver';
import { helperAvailable, RuntimeStreamingBackend, type StreamContainer } from '../streaming/backends';
import type { StreamingBackend } from '../streaming/backend';
import { StreamingServer, validateExecRequest, validatePortForwardRequest, validateStreamFlags } from '../streaming/server';
import type { HandlerSet, UnaryHandler } from './types';
import type { ExecRequest__Output } from '../../cri-api/generated/runtime/v1/ExecRequest';
import type { ExecResponse } from '../../cri-api/generated/runtime/v1/ExecResponse';
import type { AttachRequest__Output } from '../../cri-api/generated/runtime/v1/AttachRequest';
import type { AttachResponse } from '../../cri-api/generated/runtime/v1/AttachResponse';
import type { PortForwardRequest__Output } from '../../cri-api/generated/runtime/v1/PortForwardRequest';
import type { PortForwardResponse } from '../../cri-api/generated/runtime/v1/PortForwardResponse';

/** What the streaming RPCs read: records by id (NotFound for unknown ids, prefixes allowed). */
export interface StreamingContainers {
  get(id: string): Pick<ContainerRecord, 'id' | 'state' | 'sandboxId' | 'handler' | 'paths'> & { config: Pick<ContainerRecord['config'], 'tty' | 'stdin' | 'stdinOnce'> };
}
export interface StreamingSandboxes {
  get(id: string): Pick<SandboxRecord, 'id' | 'state' | 'paths'>;
}
export type StreamingPreparer = Pick<StreamingServer, 'prepareExec' | 'prepareAttach' | 'preparePortForward'>;

function runningContainer(containers: StreamingContainers, id: string) {
  const c = containers.get(id);
  if (c.state !== 'running') throw failedPrecondition(`container ${c.id} is not running (${c.state.toUpperCase()})`);
  return c;
}

function readySandbox(sandboxes: StreamingSandboxes, id: string) {
  const s = sandboxes.get(id);
  if (s.state !== 'ready') throw failedPrecondition(`pod sandbox ${s.id} is not ready`);
  return s;
}

/** Exec, Attach, PortForward: validate, then hand out a single-use URL of the streaming server. */
export function streamingHandlers(d: { server: StreamingPreparer; containers: StreamingContainers; sandboxes: StreamingSandboxes }): HandlerSet {
  const Exec: UnaryHandler<ExecRequest__Output, ExecResponse> = async (req) => {
    const r = { containerId: req.container_id, cmd: req.cmd ?? [], tty: !!req.tty, stdin: !!req.stdin, stdout: !!req.stdout, stderr: !!req.stderr };
    validateExecRequest(r);
    const c = runningContainer(d.containers, r.containerId);
    return { url: d.server.prepareExec({ ...r, containerId: c.id }) };
  };
  const Attach: UnaryHandler<AttachRequest__Output, AttachResponse> = async (req) => {
    const r = { containerId: req.container_id, tty: !!req.tty, stdin: !!req.stdin, stdout: !!req.stdout, stderr: !!req.stderr };
    validateStreamFlags(r);
    const c = runningContainer(d.containers, r.containerId);
    return { url: d.server.prepareAttach({ ...r, containerId: c.id }) };
  };
  const PortForward: UnaryHandler<PortForwardRequest__Output, PortForwardResponse> = async (req) => {
    const r = { podSandboxId: req.pod_sandbox_id, ports: req.port ?? [] };
    validatePortForwardRequest(r);
    const s = readySandbox(d.sandboxes, r.podSandboxId);
    return { url: d.server.preparePortForward({ ...r, podSandboxId: s.id }) };
  };
  return { unary: { Exec, Attach, PortForward } };
}

/** The services of other areas the streaming area builds on. */
export interface StreamingAreaServices {
  containers: StreamingContainers;
  sandboxes: StreamingSandboxes;
  runtime: Pick<RuntimeDriver, 'runtime' | 'socketDir'>;
  /** corral-io location (tests); default dist/bin/corral-io. */
  helperPath?: string;
}

/** How the backends see a container record. */
export function streamContainer(c: ReturnType<StreamingContainers['get']>, runtime: StreamingAreaServices['runtime']): StreamContainer {
  return {
    id: c.id,
    running: c.state === 'running',
    bundle: c.paths.bundle,
    runtime: runtime.runtime(c.handler),
    // conmon binds `attach` in <socket-dir>/<id>, a symlink to the bundle (conn_sock.c).
    attachSocket: path.join(runtime.socketDir, c.id, 'attach'),
    ctlFifo: path.join(c.paths.bundle, 'ctl'),
    tty: c.config.tty,
    stdin: c.config.stdin,
    stdinOnce: c.config.stdinOnce,
  };
}

/**
 * The streaming area: the HTTP streaming server from config.stream (started here, closed on shutdown)
 * with the runtime backends, and the Exec/Attach/PortForward RPCs.
 */
export async function createStreamingArea(deps: AreaDeps, s: StreamingAreaServices): Promise<Area & { service: StreamingServer }> {
  const log = deps.log;
  if (!helperAvailable(s.helperPath)) log.warn('corral-io helper not found: exec/attach/port-forward sessions will fail (run make build)');
  const backend = new RuntimeStreamingBackend({
    lookupContainer: (id) => streamContainer(s.containers.get(id), s.runtime),
    podNetns: (id) => readySandbox(s.sandboxes, id).paths.netns || undefined,
    socketDir: s.runtime.socketDir,
    log,
    helperPath: s.helperPath,
  });
  const m = deps.runtimeMetrics;
  // corral_streaming_sessions{kind}: a session counts as open while its backend call runs.
  const counted: StreamingBackend = m
    ? {
        exec: (req, io, signal) => during(m.openStreamingSession('exec'), () => backend.exec(req, io, signal)),
        attach: (req, io, signal) => during(m.openStreamingSession('attach'), () => backend.attach(req, io, signal)),
        portForward: (t, stream, signal) => during(m.openStreamingSession('portforward'), () => backend.portForward(t, stream, signal)),
      }
    : backend;
  const server = await StreamingServer.start(StreamingServer.optionsFromConfig(deps.config, counted, log));
  return {
    handlers: streamingHandlers({ server, containers: s.containers, sandboxes: s.sandboxes }),
    service: server,
    close: () => server.close(),
  };
}

async function during<T>(done: () => void, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } finally {
    done();
  }
}
