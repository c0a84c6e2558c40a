import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type WebSocket from 'ws';
import type { CorralConfig } from '../config/schema';
import { errorMessage, invalidArgument } from '../core/errors';
import type { Logger } from '../log/logger';
import type { AttachRequest, ExecRequest, PortForwardRequest, StreamingBackend } from './backend';
import {
  HttpError,
  SPDY_PORT_FORWARD_PROTOCOLS,
  SPDY_REMOTE_COMMAND_PROTOCOLS,
  WS_PORT_FORWARD_PROTOCOLS,
  WS_REMOTE_COMMAND_PROTOCOLS,
  acceptSpdyUpgrade,
  isWebSocketRequest,
  negotiateSpdy,
  negotiateWebSocket,
  writeRawHttpError,
} from './handshake';
import { serveSpdyPortForward, serveWebSocketPortForward } from './portforward';
import { RemoteCommandContext, StreamOptions, createSpdyRemoteCommand, createWebSocketRemoteCommand, runRemoteCommand } from './remotecommand';
import { SpdySession } from './spdy/session';
import { exitCodeStatus, successStatus } from './status';
import { TokenCache } from './token-cache';

/**
 * The streaming server behind the CRI Exec/Attach/PortForward RPCs (kubelet's cri/streaming server):
 * prepare*() stores a validated request under a single-use token and returns its URL; the client
 * (kubelet, crictl, kubectl via the API server) then connects to /exec|attach|portforward/<token>
 * and upgrades to SPDY/3.1 or WebSocket.
 */
export interface StreamingServerOptions {
  address: string;
  port: number;
  /** PEM file paths; both or neither. */
  tlsCert?: string;
  tlsKey?: string;
  /** Close a session idle this long; 0 never. */
  idleTimeoutMs: number;
  backend: StreamingBackend;
  log: Logger;
  tokenTtlMs?: number;
  streamCreationTimeoutMs?: number;
  now?: () => number;
  /** HTTP request timeout and how often node checks it (tests shorten them). */
  requestTimeoutMs?: number;
  connectionsCheckingIntervalMs?: number;
}

type Prepared =
  | { kind: 'exec'; req: ExecRequest }
  | { kind: 'attach'; req: AttachRequest }
  | { kind: 'portforward'; req: PortForwardRequest };

const ROUTE = /^\/(exec|attach|portforward)\/([A-Za-z0-9_-]+)$/;

export function validateStreamFlags(req: { containerId: string; tty: boolean; stdin: boolean; stdout: boolean; stderr: boolean }): void {
  if (!req.containerId) throw invalidArgument('missing required container_id');
  if (req.tty && req.stderr) throw invalidArgument('tty and stderr cannot both be true');
  if (!req.stdin && !req.stdout && !req.stderr) throw invalidArgument('one of stdin, stdout, or stderr must be set');
}

export function validateExecRequest(req: ExecRequest): void {
  validateStreamFlags(req);
  if (req.cmd.length === 0) throw invalidArgument('missing required cmd');
}

export function validatePortForwardRequest(req: PortForwardRequest): void {
  if (!req.podSandboxId) throw invalidArgument('missing required pod_sandbox_id');
  for (const p of req.ports) {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw invalidArgument(`invalid port ${p}`);
  }
}

export class StreamingServer {
  private readonly tokens: TokenCache<Prepared>;
  private readonly sessions = new Set<{ socket: Duplex; abort: AbortController }>();
  private readonly streamCreationTimeoutMs: number;
  private baseUrl = '';

  private constructor(
    private readonly server: http.Server | https.Server,
    private readonly opts: StreamingServerOptions,
  ) {
    this.tokens = new TokenCache({ ttlMs: opts.tokenTtlMs ?? 60_000, now: opts.now });
    this.streamCreationTimeoutMs = opts.streamCreationTimeoutMs ?? 30_000;
    server.on('request', (req, res) => this.onRequest(req, res));
    server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head));
    server.on('clientError', (_e, socket) => socket.destroy());
  }

  static async start(opts: StreamingServerOptions): Promise<StreamingServer> {
    if (!!opts.tlsCert !== !!opts.tlsKey) throw invalidArgument('stream tls_cert and tls_key must be set together');
    // Upgraded sockets leave the HTTP parser, so these timeouts bound only the request itself.
    const requestTimeout = opts.requestTimeoutMs ?? 60_000;
    const httpOpts = {
      requestTimeout,
      headersTimeout: Math.min(30_000, requestTimeout),
      connectionsCheckingInterval: opts.connectionsCheckingIntervalMs ?? 30_000,
    };
    const server = opts.tlsCert
      ? https.createServer({ ...httpOpts, cert: readFileSync(opts.tlsCert), key: readFileSync(opts.tlsKey!) })
      : http.createServer(httpOpts);
    const s = new StreamingServer(server, opts);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.address, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // After listen, an error (EMFILE on accept) fails sessions, never the daemon.
    server.on('error', (e) => opts.log.warn('streaming server error', { error: e.message }));
    const a = server.address() as AddressInfo;
    const host = a.family === 'IPv6' || a.address.includes(':') ? `[${a.address}]` : a.address;
    s.baseUrl = `${opts.tlsCert ? 'https' : 'http'}://${host}:${a.port}`;
    opts.log.info('streaming server listening', { url: s.baseUrl });
    return s;
  }

  /** Options from the daemon config's [stream] section. */
  static optionsFromConfig(config: CorralConfig, backend: StreamingBackend, log: Logger): StreamingServerOptions {
    const c = config.stream;
    return {
      address: c.address,
      port: c.port,
      tlsCert: c.tls_cert || undefined,
      tlsKey: c.tls_key || undefined,
      idleTimeoutMs: c.idle_timeout_seconds * 1000,
      backend,
      log,
    };
  }

  /** Base URL, e.g. http://127.0.0.1:41234 */
  get url(): string {
    return this.baseUrl;
  }

  /** Number of live upgraded sessions (for tests and metrics). */
  get activeSessions(): number {
    return this.sessions.size;
  }

  prepareExec(req: ExecRequest): string {
    validateExecRequest(req);
    return this.urlFor('exec', this.tokens.insert({ kind: 'exec', req: { ...req, cmd: [...req.cmd] } }));
  }

  prepareAttach(req: AttachRequest): string {
    validateStreamFlags(req);
    return this.urlFor('attach', this.tokens.insert({ kind: 'attach', req: { ...req } }));
  }

  preparePortForward(req: PortForwardRequest): string {
    validatePortForwardRequest(req);
    return this.urlFor('portforward', this.tokens.insert({ kind: 'portforward', req: { ...req, ports: [...req.ports] } }));
  }

  /** Stops listening and ends every session (their backends see the abort). */
  async close(): Promise<void> {
    for (const s of this.sessions) {
      s.abort.abort();
      s.socket.destroy();
    }
    this.sessions.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections?.();
  }

  private urlFor(kind: string, token: string): string {
    return `${this.baseUrl}/${kind}/${token}`;
  }

  /** Consumes the token named by the URL; 404 when unknown, used, expired or of another kind. */
  private lookup(req: http.IncomingMessage): Prepared {
    if (req.method !== 'GET' && req.method !== 'POST') throw new HttpError(405, 'method not allowed');
    const path = (req.url ?? '').split('?')[0];
    const m = ROUTE.exec(path);
    if (!m) throw new HttpError(404, '404 page not found');
    const prepared = this.tokens.consume(m[2]);
    if (!prepared || prepared.kind !== m[1]) throw new HttpError(404, '404 page not found');
    return prepared;
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    let status = 400;
    let message = 'unable to upgrade: missing upgrade headers in request';
    try {
      this.lookup(req);
    } catch (e) {
      if (e instanceof HttpError) {
        status = e.status;
        message = e.message;
      }
    }
    res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
    res.end(message + '\n');
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {});
    let prepared: Prepared;
    try {
      prepared = this.lookup(req);
      if (isWebSocketRequest(req)) this.upgradeWebSocket(req, socket, head, prepared);
      else this.upgradeSpdy(req, socket, head, prepared);
    } catch (e) {
      if (e instanceof HttpError) writeRawHttpError(socket, e);
      else {
        this.opts.log.error('streaming upgrade failed', { error: errorMessage(e) });
        writeRawHttpError(socket, new HttpError(500, 'internal error'));
      }
    }
  }

  /** Registers a live session: idle timeout, abort on close, bookkeeping. */
  private track(socket: Duplex): AbortController {
    const abort = new AbortController();
    const entry = { socket, abort };
    this.sessions.add(entry);
    const net = socket as Duplex & { setTimeout?(ms: number): void; setNoDelay?(b: boolean): void; setKeepAlive?(b: boolean, ms: number): void };
    net.setNoDelay?.(true);
    net.setKeepAlive?.(true, 30_000);
    if (this.opts.idleTimeoutMs > 0) {
      net.setTimeout?.(this.opts.idleTimeoutMs);
      socket.once('timeout', () => {
        this.opts.log.debug('streaming session idle timeout');
        socket.destroy();
      });
    }
    socket.once('close', () => {
      this.sessions.delete(entry);
      abort.abort();
    });
    return abort;
  }

  private upgradeSpdy(req: http.IncomingMessage, socket: Duplex, head: Buffer, prepared: Prepared): void {
    const protocols = prepared.kind === 'portforward' ? SPDY_PORT_FORWARD_PROTOCOLS : SPDY_REMOTE_COMMAND_PROTOCOLS;
    const protocol = negotiateSpdy(req, protocols);
    const abort = this.track(socket);
    acceptSpdyUpgrade(socket, head, protocol);
    const log = this.opts.log.child({ stream: prepared.kind, protocol });
    const session = new SpdySession(socket, { role: 'server', log });
    session.on('close', () => abort.abort());
    this.serveSpdy(session, protocol, prepared, abort.signal, log);
  }

  /** Runs exec/attach or port-forward on an upgraded SPDY session. */
  private serveSpdy(session: SpdySession, protocol: string, prepared: Prepared, signal: AbortSignal, log: Logger): void {
    if (prepared.kind === 'portforward') {
      serveSpdyPortForward(session, {
        backend: this.opts.backend,
        podSandboxId: prepared.req.podSandboxId,
        log,
        signal,
        streamCreationTimeoutMs: this.streamCreationTimeoutMs,
      });
      return;
    }
    createSpdyRemoteCommand(session, protocol, streamOptions(prepared.req), signal, this.streamCreationTimeoutMs).then(
      (ctx) => this.runCommand(ctx, prepared, log),
      (e: Error) => {
        log.warn('streaming session setup failed', { error: e.message });
        session.destroy();
      },
    );
  }

  private upgradeWebSocket(req: http.IncomingMessage, socket: Duplex, head: Buffer, prepared: Prepared): void {
    const protocols = prepared.kind === 'portforward' ? WS_PORT_FORWARD_PROTOCOLS : WS_REMOTE_COMMAND_PROTOCOLS;
    const protocol = negotiateWebSocket(req, protocols);
    if (prepared.kind === 'portforward' && prepared.req.ports.length === 0) {
      throw new HttpError(400, 'query parameter "port" is required');
    }
    const abort = this.track(socket);
    const log = this.opts.log.child({ stream: prepared.kind, protocol: protocol || '(none)', transport: 'websocket' });
    // One small server per upgrade so the negotiated protocol is fixed for exactly this request.
    const wss = new (wsModule().WebSocketServer)({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: 16 * 1024 * 1024,
      handleProtocols: () => protocol || false,
    });
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      ws.on('error', () => {});
      ws.once('close', () => abort.abort());
      if (prepared.kind === 'portforward') {
        void serveWebSocketPortForward(ws, protocol, prepared.req.ports, {
          backend: this.opts.backend,
          podSandboxId: prepared.req.podSandboxId,
          log,
          signal: abort.signal,
          streamCreationTimeoutMs: this.streamCreationTimeoutMs,
        });
        return;
      }
      this.runCommand(createWebSocketRemoteCommand(ws, protocol, streamOptions(prepared.req), abort.signal), prepared, log);
    });
  }

  private runCommand(ctx: RemoteCommandContext, prepared: Prepared, log: Logger): void {
    const backend = this.opts.backend;
    const run =
      prepared.kind === 'exec'
        ? async () => {
            const r = await backend.exec(prepared.req, ctx.io, ctx.signal);
            return r.exitCode === 0 ? successStatus() : exitCodeStatus(r.exitCode);
          }
        : async () => {
            await backend.attach(prepared.req as AttachRequest, ctx.io, ctx.signal);
            return successStatus();
          };
    void runRemoteCommand(ctx, run, log);
  }
}

function streamOptions(req: ExecRequest | AttachRequest | PortForwardRequest): StreamOptions {
  const r = req as AttachRequest;
  return { stdin: r.stdin, stdout: r.stdout, stderr: r.stderr && !r.tty, tty: r.tty };
}

/** `ws` is loaded at the first WebSocket session (~1 MB of heap): crictl's sessions are SPDY, and many nodes never see one. */
function wsModule(): typeof import('ws') {
  return require('ws');
}
