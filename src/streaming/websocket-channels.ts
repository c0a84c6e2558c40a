import { Duplex } from 'node:stream';
import type WebSocket from 'ws';

/**
 * Kubernetes channel multiplexing over one WebSocket (wsstream.Conn): every message starts with a
 * channel byte; with base64 protocols messages are text, the channel is an ASCII digit and the rest
 * is base64. v5.channel.k8s.io adds channel 255: a message [255, n] closes channel n (client stdin EOF).
 */
export type ChannelMode = 'read' | 'write' | 'readwrite' | 'ignore';

export const CLOSE_CHANNEL = 255;

export interface WsChannelOptions {
  base64: boolean;
  /** Honour the v5 close channel. */
  closeChannel: boolean;
  modes: ChannelMode[];
}

/** One channel as a Duplex: readable = client's messages on it, writable = our messages on it. */
export class WsChannel extends Duplex {
  /** The client closed this channel (or the connection): nothing more will be pushed. */
  inputEnded = false;

  constructor(
    private readonly mux: WsChannels,
    readonly index: number,
    readonly mode: ChannelMode,
  ) {
    super({ allowHalfOpen: true });
    this.on('error', () => {});
  }

  override _read(): void {
    this.mux.relieve(this);
  }

  /** @internal */
  endInput(): void {
    if (this.inputEnded) return;
    this.inputEnded = true;
    this.push(null);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.mode === 'write' || this.mode === 'readwrite') this.mux.send(this.index, chunk, cb);
    else cb();
  }
}

export class WsChannels {
  readonly channels: WsChannel[];
  private readonly congested = new Set<WsChannel>();
  private closed = false;

  constructor(
    readonly ws: WebSocket,
    private readonly opts: WsChannelOptions,
  ) {
    this.channels = opts.modes.map((m, i) => new WsChannel(this, i, m));
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => this.onMessage(toBuffer(data)));
    ws.on('close', () => this.onClose());
    ws.on('error', () => this.onClose());
  }

  /** Sends one message on a channel; cb runs once it has been handed to the socket. */
  send(index: number, data: Buffer, cb: (err?: Error | null) => void = () => {}): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) {
      cb();
      return;
    }
    const frame = this.opts.base64
      ? String.fromCharCode(0x30 + index) + data.toString('base64')
      : Buffer.concat([Buffer.from([index]), data]);
    this.ws.send(frame, { binary: !this.opts.base64 }, () => cb());
  }

  /** @internal */
  relieve(ch: WsChannel): void {
    if (this.congested.delete(ch) && this.congested.size === 0 && !this.closed) this.ws.resume();
  }

  close(code = 1000): void {
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(code);
  }

  private onMessage(msg: Buffer): void {
    if (msg.length === 0) return;
    let index = msg[0];
    let payload = msg.subarray(1);
    if (this.opts.base64 && index !== CLOSE_CHANNEL) {
      index -= 0x30;
      payload = Buffer.from(payload.toString('latin1'), 'base64');
    }
    if (this.opts.closeChannel && index === CLOSE_CHANNEL) {
      if (payload.length !== 1) return;
      const target = this.channels[payload[0]];
      if (target && (target.mode === 'read' || target.mode === 'readwrite')) target.endInput();
      return;
    }
    const ch = this.channels[index];
    if (!ch || !(ch.mode === 'read' || ch.mode === 'readwrite') || payload.length === 0) return;
    if (ch.inputEnded || ch.destroyed) return;
    if (!ch.push(payload)) {
      this.congested.add(ch);
      this.ws.pause();
    }
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.congested.clear();
    // A channel the client never closed ends with the connection.
    for (const ch of this.channels) ch.endInput();
  }
}

function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
