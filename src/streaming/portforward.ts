import type { Duplex, Writable } from 'node:stream';
import type WebSocket from 'ws';
import type { Logger } from '../log/logger';
import { errorMessage } from '../core/errors';
import type { StreamingBackend } from './backend';
import type { SpdySession, SpdyStream } from './spdy/session';
import { WsChannels } from './websocket-channels';

/**
 * Port forwarding as kubelet does it (pkg/kubelet/cri/streaming/portforward):
 * - SPDY: the client opens an `error` and a `data` stream per forwarded connection, both carrying
 *   `port` and `requestid` headers; once both exist, the data stream is connected to the port.
 * - WebSocket: ports are fixed by the request; channel 2i is port i's data, 2i+1 its errors; the
 *   server's first message on each channel is the port as uint16 little-endian.
 */
export interface PortForwardDeps {
  backend: StreamingBackend;
  podSandboxId: string;
  log: Logger;
  signal: AbortSignal;
  streamCreationTimeoutMs: number;
}

interface Pair {
  requestId: string;
  data?: SpdyStream;
  error?: SpdyStream;
  timer: NodeJS.Timeout;
}

/** Serves port-forward streams on an upgraded SPDY session until it closes. */
export function serveSpdyPortForward(session: SpdySession, deps: PortForwardDeps): void {
  const pairs = new Map<string, Pair>();
  session.on('stream', (s) => {
    const problem = validateStream(s);
    if (problem) {
      deps.log.debug('port-forward stream refused', { reason: problem });
      s.refuse();
      return;
    }
    s.accept();
    const requestId = streamRequestId(s);
    let p = pairs.get(requestId);
    if (!p) {
      const pair: Pair = {
        requestId,
        timer: setTimeout(() => {
          pairs.delete(requestId);
          writeError(pair.error, `timed out waiting for streams of request ${requestId}`);
          pair.data?.reset();
        }, deps.streamCreationTimeoutMs),
      };
      pair.timer.unref();
      pairs.set(requestId, pair);
      p = pair;
    }
    const type = s.headers['streamtype'] as 'data' | 'error';
    if (p[type]) {
      writeError(p.error ?? s, `error processing stream for request ${requestId}: ${type} stream already assigned`);
      s.reset();
      return;
    }
    p[type] = s;
    if (type === 'error') s.resume(); // the client half-closes it and only reads
    if (p.data && p.error) {
      clearTimeout(p.timer);
      pairs.delete(requestId);
      void forward(p.data, p.error, Number(s.headers['port']), deps);
    }
  });
  session.on('close', () => {
    for (const p of pairs.values()) clearTimeout(p.timer);
    pairs.clear();
  });
}

function validateStream(s: SpdyStream): string | undefined {
  const portStr = s.headers['port'];
  if (!portStr) return '"port" header is required';
  if (!/^\d+$/.test(portStr) || Number(portStr) < 1 || Number(portStr) > 65535) return `unable to parse "${portStr}" as a port`;
  const type = s.headers['streamtype'];
  if (!type) return '"streamType" header is required';
  if (type !== 'data' && type !== 'error') return `invalid stream type "${type}"`;
  return undefined;
}

/** Old clients send no requestid: kubelet derives one from the stream id (error n, data n+2). */
function streamRequestId(s: SpdyStream): string {
  const id = s.headers['requestid'];
  if (id) return id;
  return String(s.headers['streamtype'] === 'error' ? s.id : s.id - 2);
}

async function forward(data: SpdyStream, error: SpdyStream, port: number, deps: PortForwardDeps): Promise<void> {
  try {
    await deps.backend.portForward({ podSandboxId: deps.podSandboxId, port }, data, deps.signal);
  } catch (e) {
    if (!deps.signal.aborted) {
      const msg = `error forwarding port ${port} to pod ${deps.podSandboxId}: ${errorMessage(e)}`;
      deps.log.debug('port-forward failed', { port, error: errorMessage(e) });
      writeError(error, msg);
    }
  }
  if (!data.writableEnded) data.end();
  if (!error.writableEnded) error.end();
}

function writeError(stream: Writable | undefined, msg: string): void {
  if (stream && !stream.writableEnded && !stream.destroyed) stream.write(Buffer.from(msg));
}

/** Serves a WebSocket port-forward session: one forwarded connection per requested port. */
export async function serveWebSocketPortForward(ws: WebSocket, protocol: string, ports: number[], deps: PortForwardDeps): Promise<void> {
  const mux = new WsChannels(ws, {
    base64: protocol.includes('base64'),
    closeChannel: false,
    modes: ports.flatMap(() => ['readwrite', 'write'] as const),
  });
  await Promise.all(
    ports.map(async (port, i) => {
      const data: Duplex = mux.channels[2 * i];
      const error = mux.channels[2 * i + 1];
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16LE(port, 0);
      data.write(prefix);
      error.write(prefix);
      try {
        await deps.backend.portForward({ podSandboxId: deps.podSandboxId, port }, data, deps.signal);
      } catch (e) {
        if (!deps.signal.aborted) error.write(Buffer.from(`error forwarding port ${port} to pod ${deps.podSandboxId}: ${errorMessage(e)}`));
      }
    }),
  );
  mux.close(1000);
}
