import type { Readable, Writable } from 'node:stream';
import type WebSocket from 'ws';
import type { Logger } from '../log/logger';
import { errorMessage } from '../core/errors';
import type { StreamIO } from './backend';
import { TerminalSizeQueue, pumpResize } from './resize';
import type { SpdySession, SpdyStream } from './spdy/session';
import { K8sStatus, encodeStatus, internalErrorStatus } from './status';
import { WsChannels } from './websocket-channels';

/**
 * Exec/attach sessions on either transport, reduced to one shape: the streams the backend uses,
 * an abort signal for "client went away", a way to report the final status, and a graceful end.
 * Mirrors kubelet's pkg/kubelet/cri/streaming/remotecommand (httpstream.go, websocket.go).
 */
export interface StreamOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

export interface RemoteCommandContext {
  protocol: string;
  io: StreamIO;
  /** Aborted when the client goes away (connection closed, idle timeout, server shutdown). */
  signal: AbortSignal;
  writeStatus(status: K8sStatus): Promise<void>;
  /** Graceful end after the status was written. */
  end(): void;
}

export const STREAM_TYPE = { error: 'error', stdin: 'stdin', stdout: 'stdout', stderr: 'stderr', resize: 'resize' } as const;

/**
 * Waits for the client's SPDY streams (error, plus stdin/stdout/stderr as requested, plus resize for
 * tty on v3+), answering each with SYN_REPLY. Rejects after timeoutMs, like kubelet's stream creation timeout.
 */
export function createSpdyRemoteCommand(
  session: SpdySession,
  protocol: string,
  opts: StreamOptions,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<RemoteCommandContext> {
  const supportsResize = protocol === 'v4.channel.k8s.io' || protocol === 'v3.channel.k8s.io';
  const expected = 1 + Number(opts.stdin) + Number(opts.stdout) + Number(opts.stderr) + Number(opts.tty && supportsResize);
  const got: Partial<Record<keyof typeof STREAM_TYPE, SpdyStream>> = {};
  let received = 0;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => finish(new Error('timed out waiting for client to create streams')), timeoutMs);
    const onClose = () => finish(new Error('connection closed while waiting for streams'));
    session.once('close', onClose);
    const onStream = (s: SpdyStream) => {
      s.accept();
      const type = s.headers['streamtype'] as keyof typeof STREAM_TYPE;
      if (!(type in STREAM_TYPE) || got[type]) {
        s.resume(); // not ours to read: discard whatever arrives
        return;
      }
      got[type] = s;
      if (++received === expected) finish(undefined);
    };
    session.on('stream', onStream);

    function finish(err: Error | undefined) {
      clearTimeout(timer);
      session.off('close', onClose);
      session.off('stream', onStream);
      if (err) {
        reject(err);
        return;
      }
      // Streams arriving after the set is complete are refused.
      session.on('stream', (s) => s.refuse());
      resolve(spdyContext(session, protocol, opts, got, signal));
    }
  });
}

function spdyContext(
  session: SpdySession,
  protocol: string,
  opts: StreamOptions,
  got: Partial<Record<keyof typeof STREAM_TYPE, SpdyStream>>,
  signal: AbortSignal,
): RemoteCommandContext {
  const resize = new TerminalSizeQueue();
  if (got.resize) pumpResize(got.resize, resize);
  else resize.end();
  // Streams we only write to: drain anything the client sends so the session never stalls on them.
  for (const s of [got.stdout, got.stderr, got.error]) s?.resume();
  let stdin: Readable | undefined = got.stdin;
  if (stdin && !opts.stdin) {
    stdin.resume();
    stdin = undefined;
  }
  // channel.k8s.io (v1) closed the server side of stdin straight away; harmless, kept for fidelity.
  if (protocol === 'channel.k8s.io') got.stdin?.end();
  const jsonStatus = protocol === 'v4.channel.k8s.io';
  return {
    protocol,
    signal,
    io: {
      stdin,
      stdout: opts.stdout ? got.stdout : undefined,
      stderr: opts.stderr && !opts.tty ? got.stderr : undefined,
      resize,
    },
    writeStatus: (status) => writeAndEnd(got.error, encodeStatus(status, jsonStatus)),
    end: () => session.end(),
  };
}

/**
 * Opens the exec/attach channels on an accepted WebSocket: 0 stdin, 1 stdout, 2 stderr, 3 error,
 * 4 resize; then sends an empty message on the lowest writable channel to signal readiness.
 */
export function createWebSocketRemoteCommand(ws: WebSocket, protocol: string, opts: StreamOptions, signal: AbortSignal): RemoteCommandContext {
  const mux = new WsChannels(ws, {
    base64: protocol.includes('base64'),
    closeChannel: protocol === 'v5.channel.k8s.io',
    modes: [opts.stdin ? 'read' : 'ignore', opts.stdout ? 'write' : 'ignore', opts.stderr ? 'write' : 'ignore', 'write', 'read'],
  });
  const [stdin, stdout, stderr, error, resizeCh] = mux.channels;
  mux.send(opts.stdout ? 1 : opts.stderr ? 2 : 3, Buffer.alloc(0));
  const resize = new TerminalSizeQueue();
  pumpResize(resizeCh, resize);
  if (!opts.stdin) stdin.resume();
  const jsonStatus = protocol === 'v4.channel.k8s.io' || protocol === 'v4.base64.channel.k8s.io' || protocol === 'v5.channel.k8s.io';
  return {
    protocol,
    signal,
    io: {
      stdin: opts.stdin ? stdin : undefined,
      stdout: opts.stdout ? stdout : undefined,
      stderr: opts.stderr && !opts.tty ? stderr : undefined,
      resize,
    },
    writeStatus: (status) => writeAndEnd(error, encodeStatus(status, jsonStatus)),
    end: () => mux.close(1000),
  };
}

function writeAndEnd(stream: Writable | undefined, data: Buffer | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (!stream || stream.destroyed || stream.writableEnded) {
      resolve();
      return;
    }
    if (data) stream.write(data);
    stream.end(() => resolve());
    stream.once('close', () => resolve());
  });
}

/** Ends a writable and waits until its data has been handed on (or it was destroyed). */
function flushAndEnd(w: Writable | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (!w || w.destroyed || w.writableFinished) {
      resolve();
      return;
    }
    w.once('finish', () => resolve());
    w.once('close', () => resolve());
    if (!w.writableEnded) w.end();
  });
}

/**
 * Runs one exec/attach: the backend call, then (unless the client went away) flushes output,
 * writes the status and ends the session. Never rejects.
 */
export async function runRemoteCommand(ctx: RemoteCommandContext, run: () => Promise<K8sStatus>, log: Logger): Promise<void> {
  let status: K8sStatus;
  try {
    status = await run();
  } catch (e) {
    if (!ctx.signal.aborted) log.warn('streaming command failed', { error: errorMessage(e) });
    status = internalErrorStatus(`error executing command in container: ${errorMessage(e)}`);
  }
  ctx.io.stdin?.destroy();
  ctx.io.resize.end();
  if (ctx.signal.aborted) return;
  await Promise.all([flushAndEnd(ctx.io.stdout), flushAndEnd(ctx.io.stderr)]);
  if (ctx.signal.aborted) return;
  await ctx.writeStatus(status);
  ctx.end();
}
