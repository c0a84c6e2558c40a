import * as http from 'node:http';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { SpdySession, SpdyStream } from '../../src/streaming/spdy/session';

/**
 * Test clients built on the project's own SPDY codec (client role), behaving like client-go:
 * error stream first, then stdin/stdout/stderr/resize; stdin half-closed after writing.
 */

export interface UpgradeResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  session?: SpdySession;
  socket?: Socket;
}

export function spdyUpgrade(url: string, protocols: string[], opts: { method?: string } = {}): Promise<UpgradeResult> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { Connection: 'Upgrade', Upgrade: 'SPDY/3.1' };
    if (protocols.length) headers['X-Stream-Protocol-Version'] = protocols.join(', ');
    const req = http.request(url, { method: opts.method ?? 'POST', headers });
    req.once('upgrade', (res, socket, head) => {
      if (head.length) socket.unshift(head);
      const session = new SpdySession(socket, { role: 'client' });
      resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '', session, socket });
    });
    req.once('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

export function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(Buffer.from(c)));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('close', () => resolve(Buffer.concat(chunks)));
  });
}

export interface SpdyExecOptions {
  protocol?: string;
  stdin?: Buffer | string;
  /** Keep stdin open (the test writes to `streams.stdin` itself). */
  holdStdin?: boolean;
  stdout?: boolean;
  stderr?: boolean;
  tty?: boolean;
  onStreams?: (s: { stdin?: SpdyStream; stdout?: SpdyStream; resize?: SpdyStream; session: SpdySession }) => void;
}

export interface SpdyExecResult {
  protocol: string;
  stdout: string;
  stderr: string;
  /** Raw error stream content (v4: metav1.Status JSON). */
  error: string;
  status?: { status: string; reason?: string; details?: { causes: { reason?: string; message: string }[] } };
}

export async function spdyExec(url: string, o: SpdyExecOptions = {}): Promise<SpdyExecResult> {
  const up = await spdyUpgrade(url, [o.protocol ?? 'v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io']);
  if (up.status !== 101 || !up.session) throw new Error(`upgrade failed: ${up.status} ${up.body}`);
  const session = up.session;
  const protocol = String(up.headers['x-stream-protocol-version']);
  try {
    const error = await session.openStream({ streamtype: 'error' });
    const errP = collect(error);
    const wantStdin = o.stdin !== undefined || o.holdStdin;
    const stdin = wantStdin ? await session.openStream({ streamtype: 'stdin' }) : undefined;
    const stdout = o.stdout !== false ? await session.openStream({ streamtype: 'stdout' }) : undefined;
    const stderr = o.stderr && !o.tty ? await session.openStream({ streamtype: 'stderr' }) : undefined;
    const resize = o.tty ? await session.openStream({ streamtype: 'resize' }) : undefined;
    const outP = stdout ? collect(stdout) : Promise.resolve(Buffer.alloc(0));
    const errOutP = stderr ? collect(stderr) : Promise.resolve(Buffer.alloc(0));
    o.onStreams?.({ stdin, stdout, resize, session });
    if (stdin && o.stdin !== undefined) stdin.write(o.stdin);
    if (stdin && !o.holdStdin) stdin.end();
    const [out, errOut, errText] = await Promise.all([outP, errOutP, errP]);
    const text = errText.toString();
    let status: SpdyExecResult['status'];
    if (protocol === 'v4.channel.k8s.io' && text) status = JSON.parse(text);
    return { protocol, stdout: out.toString(), stderr: errOut.toString(), error: text, status };
  } finally {
    session.destroy();
  }
}

/** WebSocket exec client speaking the channel protocols directly. */
export interface WsExecResult {
  protocol: string;
  channels: Map<number, Buffer>;
  messages: { channel: number; data: Buffer }[];
  closeCode: number;
}

/** Opens a WebSocket and records every message from the very first one until close. */
export function wsOpen(url: string, protocols: string[], base64 = false): Promise<{ ws: WebSocket; done: Promise<WsExecResult> }> {
  const ws = new WebSocket(url.replace(/^http/, 'ws'), protocols);
  const messages: { channel: number; data: Buffer }[] = [];
  ws.on('message', (raw: Buffer, isBinary: boolean) => {
    if (!isBinary && base64) {
      const s = raw.toString();
      messages.push({ channel: s.charCodeAt(0) - 0x30, data: Buffer.from(s.slice(1), 'base64') });
    } else {
      messages.push({ channel: raw[0], data: raw.subarray(1) });
    }
  });
  const done = new Promise<WsExecResult>((resolve) => {
    ws.once('close', (code) => {
      const channels = new Map<number, Buffer>();
      for (const m of messages) channels.set(m.channel, Buffer.concat([channels.get(m.channel) ?? Buffer.alloc(0), m.data]));
      resolve({ protocol: ws.protocol, channels, messages, closeCode: code });
    });
  });
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, done }));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`unexpected response ${res.statusCode}`)));
  });
}
