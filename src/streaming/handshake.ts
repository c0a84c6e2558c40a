import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

/** SPDY sub-protocols (X-Stream-Protocol-Version), most preferred first, as kubelet supports them. */
export const SPDY_REMOTE_COMMAND_PROTOCOLS = ['v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'];
export const SPDY_PORT_FORWARD_PROTOCOLS = ['portforward.k8s.io'];

/** WebSocket sub-protocols. '' is a client that offered none (binary channels). */
export const WS_REMOTE_COMMAND_PROTOCOLS = [
  'v5.channel.k8s.io',
  'v4.channel.k8s.io',
  'v4.base64.channel.k8s.io',
  'channel.k8s.io',
  'base64.channel.k8s.io',
];
export const WS_PORT_FORWARD_PROTOCOLS = ['v4.channel.k8s.io', 'v4.base64.channel.k8s.io'];
// Not offered: 'SPDY/3.1+portforward.k8s.io' (SPDY tunnelled in WebSocket). kubelet does not serve it
// either (the API server translates it to SPDY), and `ws` rejects '/' in subprotocol names.

export function isWebSocketRequest(req: IncomingMessage): boolean {
  const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
  const connection = String(req.headers.connection ?? '').toLowerCase();
  return upgrade === 'websocket' && /(^|,)\s*upgrade\s*($|,)/.test(connection);
}

export function isSpdyUpgrade(req: IncomingMessage): boolean {
  const upgrade = String(req.headers.upgrade ?? '').toLowerCase();
  const connection = String(req.headers.connection ?? '').toLowerCase();
  return connection.includes('upgrade') && upgrade.includes('spdy/3.1');
}

/** Comma-separated values of a possibly repeated header, trimmed, empties dropped. */
export function headerList(v: string | string[] | undefined): string[] {
  const all = Array.isArray(v) ? v : v === undefined ? [] : [v];
  return all.flatMap((h) => h.split(',')).map((s) => s.trim()).filter((s) => s.length > 0);
}

/** The first client protocol (in the client's order) the server supports, as httpstream.Handshake. */
export function negotiate(client: string[], server: string[]): string | undefined {
  return client.find((p) => server.includes(p));
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string | string[]> = {},
  ) {
    super(message);
  }
}

/** Answers a not-yet-upgraded socket with a plain HTTP error and closes it. */
export function writeRawHttpError(socket: Duplex, err: HttpError): void {
  const body = Buffer.from(err.message + '\n');
  const lines = [
    `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Error'}`,
    'Content-Type: text/plain; charset=utf-8',
    'X-Content-Type-Options: nosniff',
    `Content-Length: ${body.length}`,
    'Connection: close',
  ];
  for (const [k, v] of Object.entries(err.headers)) for (const one of Array.isArray(v) ? v : [v]) lines.push(`${k}: ${one}`);
  if (socket.writable) socket.end(Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n'), body]));
  // Give the response a moment to leave, then make sure the socket is gone.
  setTimeout(() => socket.destroy(), 1000).unref();
}

/**
 * SPDY protocol selection as httpstream.Handshake: no X-Stream-Protocol-Version → 400; no common
 * protocol → 403 with X-Accepted-Stream-Protocol-Versions.
 */
export function negotiateSpdy(req: IncomingMessage, server: string[]): string {
  if (!isSpdyUpgrade(req)) throw new HttpError(400, 'unable to upgrade: missing upgrade headers in request');
  const client = headerList(req.headers['x-stream-protocol-version']);
  if (client.length === 0) throw new HttpError(400, 'unable to upgrade: X-Stream-Protocol-Version is required');
  const chosen = negotiate(client, server);
  if (!chosen) {
    throw new HttpError(
      403,
      `unable to upgrade: unable to negotiate protocol: client supports [${client.join(' ')}], server accepts [${server.join(' ')}]`,
      { 'X-Accepted-Stream-Protocol-Versions': server },
    );
  }
  return chosen;
}

/** Completes the SPDY upgrade on a raw socket; bytes read past the request headers are put back. */
export function acceptSpdyUpgrade(socket: Duplex, head: Buffer, protocol: string): void {
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\n' +
      'Connection: Upgrade\r\n' +
      'Upgrade: SPDY/3.1\r\n' +
      `X-Stream-Protocol-Version: ${protocol}\r\n\r\n`,
  );
  if (head.length > 0) socket.unshift(head);
}

/** WebSocket protocol selection: offered none → ''; offered some but none supported → 400. */
export function negotiateWebSocket(req: IncomingMessage, server: string[]): string {
  const client = headerList(req.headers['sec-websocket-protocol']);
  if (client.length === 0) return '';
  const chosen = negotiate(client, server);
  if (!chosen) {
    throw new HttpError(400, `unable to upgrade: requested protocol(s) are not supported: [${client.join(' ')}]; supports [${server.join(' ')}]`);
  }
  return chosen;
}
