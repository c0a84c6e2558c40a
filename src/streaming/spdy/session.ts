import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import type { Logger } from '../../log/logger';
import { nullLogger } from '../../log/logger';
import {
  FLAG_FIN,
  FLAG_UNIDIRECTIONAL,
  Frame,
  FrameDecoder,
  GoAwayStatus,
  HeaderMap,
  RstStatus,
  SPDY_VERSION,
  SpdyProtocolError,
  decodeHeaderBlock,
  encodeData,
  encodeGoAway,
  encodeHeaderBlock,
  encodePing,
  encodeRstStream,
  encodeSynReply,
  encodeSynStream,
} from './frames';
import { HeaderCompressor, HeaderDecompressor } from './header-compression';

/**
 * One SPDY/3.1 connection over a byte stream, as Kubernetes uses it (moby/spdystream): the client opens
 * streams with SYN_STREAM, the server answers SYN_REPLY, both sides send DATA with FIN for half-close,
 * RST_STREAM to abort, PING is echoed, GOAWAY ends the session. Flow-control windows are not enforced
 * (spdystream neither sends WINDOW_UPDATE nor honours ours); instead, backpressure is TCP's: when a
 * stream's reader is full we stop reading the socket, and a stream's write completes only once the
 * socket has drained. Nothing here buffers without bound.
 */
export interface SpdySessionOptions {
  role: 'server' | 'client';
  log?: Logger;
  /** Largest DATA payload we send per frame. */
  maxDataFrame?: number;
  /** Streams the peer may have open at once; more are refused. */
  maxStreams?: number;
  /** After a graceful end(), how long the peer gets to close before the socket is destroyed. */
  closeGraceMs?: number;
}

export interface SpdySessionEvents {
  /** A peer-initiated stream (server role). Call accept() or refuse(); an accepted stream must be read or resumed. */
  stream: [SpdyStream];
  goaway: [{ lastStreamId: number; status: number }];
  close: [Error | undefined];
}

export class SpdySession extends EventEmitter<SpdySessionEvents> {
  readonly role: 'server' | 'client';
  private readonly log: Logger;
  private readonly decoder = new FrameDecoder();
  private readonly compressor = new HeaderCompressor();
  private readonly decompressor = new HeaderDecompressor();
  private readonly streams = new Map<number, SpdyStream>();
  private readonly pending: Frame[] = [];
  private readonly congested = new Set<SpdyStream>();
  private readonly drainWaiters: (() => void)[] = [];
  private readonly pings = new Map<number, { start: number; resolve: (ms: number) => void; reject: (e: Error) => void }>();
  private readonly maxDataFrame: number;
  private readonly maxStreams: number;
  private readonly closeGraceMs: number;
  private pumping = false;
  private nextStreamId: number;
  private nextPingId: number;
  private lastPeerStreamId = 0;
  private closed = false;
  private socketClosed = false;
  private goneAway = false;
  private closeTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: Duplex,
    opts: SpdySessionOptions,
  ) {
    super();
    this.role = opts.role;
    this.log = opts.log ?? nullLogger;
    this.maxDataFrame = opts.maxDataFrame ?? 32 * 1024;
    this.maxStreams = opts.maxStreams ?? 1000;
    this.closeGraceMs = opts.closeGraceMs ?? 10_000;
    this.nextStreamId = this.role === 'client' ? 1 : 2;
    this.nextPingId = this.role === 'client' ? 1 : 2;
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.flushDrainWaiters());
    socket.on('error', (e) => this.teardown(e));
    socket.on('close', () => this.onSocketClose());
    socket.on('end', () => {
      // The peer will send nothing more; finish what is queued, then let the socket close.
      if (!this.pumping && this.pending.length === 0) this.socket.end();
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get openStreams(): number {
    return this.streams.size;
  }

  /** Client role: open a stream and wait for the peer's SYN_REPLY (rejects on RST_STREAM or close). */
  openStream(headers: HeaderMap, opts: { fin?: boolean } = {}): Promise<SpdyStream> {
    if (this.closed || this.goneAway) return Promise.reject(new Error('SPDY session is closed'));
    const id = this.nextStreamId;
    this.nextStreamId += 2;
    const stream = new SpdyStream(this, id, headers, { localFin: !!opts.fin, remoteFin: false });
    this.streams.set(id, stream);
    const reply = new Promise<SpdyStream>((resolve, reject) => {
      stream.once('replied', () => resolve(stream));
      stream.once('reset', (status: number) => reject(new Error(`stream ${id} refused (RST status ${status})`)));
      stream.once('close', () => reject(new Error(`stream ${id} closed before reply`)));
    });
    this.writeFrame(encodeSynStream(id, this.compressor.compress(encodeHeaderBlock(headers)), { fin: opts.fin }));
    return reply;
  }

  /** Round trip time of a PING in milliseconds. */
  ping(): Promise<number> {
    if (this.closed) return Promise.reject(new Error('SPDY session is closed'));
    const id = this.nextPingId;
    this.nextPingId = (this.nextPingId + 2) & 0x7fffffff || (this.role === 'client' ? 1 : 2);
    return new Promise((resolve, reject) => {
      this.pings.set(id, { start: Date.now(), resolve, reject });
      this.writeFrame(encodePing(id));
    });
  }

  /**
   * Graceful end: half-close our open streams, send GOAWAY, end the socket, and destroy it if the
   * peer has not closed within closeGraceMs.
   */
  end(): void {
    if (this.closed) return;
    for (const s of this.streams.values()) s.end();
    if (!this.goneAway) {
      this.goneAway = true;
      this.writeFrame(encodeGoAway(this.lastPeerStreamId, GoAwayStatus.OK));
    }
    this.socket.end();
    if (!this.closeTimer) {
      this.closeTimer = setTimeout(() => this.destroy(), this.closeGraceMs);
      this.closeTimer.unref();
    }
  }

  /** Immediate teardown: RST is not sent; the socket is destroyed. */
  destroy(err?: Error): void {
    this.socket.destroy();
    this.teardown(err);
  }

  // ---- used by SpdyStream ----

  /** @internal */
  sendReply(stream: SpdyStream): void {
    this.writeFrame(encodeSynReply(stream.id, this.compressor.compress(encodeHeaderBlock({}))));
  }

  /** @internal */
  sendReset(stream: SpdyStream, status: number): void {
    this.writeFrame(encodeRstStream(stream.id, status));
    this.forget(stream);
  }

  /** @internal Writes data (and FIN) for a stream; cb runs once the socket can take more. */
  sendData(stream: SpdyStream, chunk: Buffer, fin: boolean, cb: (err?: Error | null) => void): void {
    if (this.closed) {
      cb();
      return;
    }
    let ok = true;
    for (let off = 0; off < chunk.length; off += this.maxDataFrame) {
      const piece = chunk.subarray(off, off + this.maxDataFrame);
      const last = off + this.maxDataFrame >= chunk.length;
      ok = this.writeFrame(encodeData(stream.id, piece, fin && last));
    }
    if (chunk.length === 0 && fin) ok = this.writeFrame(encodeData(stream.id, chunk, true));
    if (ok) cb();
    else this.drainWaiters.push(() => cb());
  }

  /** @internal A stream's reader buffer is full: stop reading frames until it asks for more. */
  markCongested(stream: SpdyStream): void {
    this.congested.add(stream);
    this.socket.pause();
  }

  /** @internal */
  relieve(stream: SpdyStream): void {
    if (this.congested.delete(stream) && this.congested.size === 0) this.pump();
  }

  /** @internal */
  forget(stream: SpdyStream): void {
    this.streams.delete(stream.id);
    this.relieve(stream);
  }

  // ---- inbound ----

  /** Frames already received are still delivered (e.g. a SYN_REPLY whose header block is inflating). */
  private onSocketClose(): void {
    this.socketClosed = true;
    if (!this.pumping && this.pending.length === 0) this.teardown(undefined);
    else this.pump();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.decoder.push(chunk);
    try {
      let f: Frame | undefined;
      while ((f = this.decoder.next())) this.pending.push(f);
    } catch (e) {
      this.protocolError(e as Error);
      return;
    }
    this.pump();
  }

  /** Processes queued frames in order; stops while a header block inflates or a reader is full. */
  private pump(): void {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    try {
      // Once the socket is gone nothing more can arrive, so readers' buffers may take the rest.
      while (this.pending.length > 0 && (this.congested.size === 0 || this.socketClosed) && !this.closed) {
        const f = this.pending.shift()!;
        if (f.kind === 'syn_stream' || f.kind === 'syn_reply' || f.kind === 'headers') {
          this.decompressor.decompress(f.block).then(
            (block) => {
              this.pumping = false;
              try {
                this.onHeaderFrame(f, decodeHeaderBlock(block));
              } catch (e) {
                this.protocolError(e as Error);
                return;
              }
              this.pump();
            },
            (e: Error) => {
              this.pumping = false;
              this.protocolError(e);
            },
          );
          this.socket.pause();
          return; // pumping stays true until the block is inflated
        }
        this.onFrame(f);
      }
    } catch (e) {
      this.pumping = false;
      this.protocolError(e as Error);
      return;
    }
    this.pumping = false;
    if (this.closed) return;
    if (this.socketClosed) {
      if (this.pending.length === 0) this.teardown(undefined);
      return;
    }
    if (this.pending.length === 0 && this.congested.size === 0) {
      if (this.socket.readableEnded) this.socket.end();
      else this.socket.resume();
    } else {
      this.socket.pause();
    }
  }

  private onHeaderFrame(f: Extract<Frame, { kind: 'syn_stream' | 'syn_reply' | 'headers' }>, headers: HeaderMap): void {
    if (f.version !== SPDY_VERSION) throw new SpdyProtocolError(`unsupported SPDY version ${f.version}`);
    if (f.kind === 'syn_stream') return this.onSynStream(f, headers);
    if (f.kind === 'syn_reply') {
      const s = this.streams.get(f.streamId);
      if (!s || s.replied) return;
      s.replied = true;
      s.emit('replied');
      if (f.flags & FLAG_FIN) s.remoteEnd();
      return;
    }
    // HEADERS: nothing in the Kubernetes protocols uses them; honour FIN only.
    const s = this.streams.get(f.streamId);
    if (s && f.flags & FLAG_FIN) s.remoteEnd();
  }

  private onSynStream(f: Extract<Frame, { kind: 'syn_stream' }>, headers: HeaderMap): void {
    const peerParity = this.role === 'server' ? 1 : 0;
    if (f.streamId === 0 || f.streamId % 2 !== peerParity || f.streamId <= this.lastPeerStreamId) {
      this.writeFrame(encodeRstStream(f.streamId, RstStatus.PROTOCOL_ERROR));
      return;
    }
    this.lastPeerStreamId = f.streamId;
    if (this.goneAway || this.streams.size >= this.maxStreams || this.listenerCount('stream') === 0) {
      this.writeFrame(encodeRstStream(f.streamId, RstStatus.REFUSED_STREAM));
      return;
    }
    const s = new SpdyStream(this, f.streamId, headers, {
      localFin: (f.flags & FLAG_UNIDIRECTIONAL) !== 0,
      remoteFin: false,
    });
    this.streams.set(f.streamId, s);
    if (f.flags & FLAG_FIN) s.remoteEnd();
    this.emit('stream', s);
  }

  private onFrame(f: Frame): void {
    if (f.kind !== 'data' && f.version !== SPDY_VERSION) throw new SpdyProtocolError(`unsupported SPDY version ${f.version}`);
    switch (f.kind) {
      case 'data': {
        const s = this.streams.get(f.streamId);
        if (!s) return; // gone or reset: drop, as spdystream does
        if (f.data.length > 0) s.remoteData(f.data);
        if (f.flags & FLAG_FIN) s.remoteEnd();
        return;
      }
      case 'rst_stream': {
        const s = this.streams.get(f.streamId);
        if (s) s.remoteReset(f.status);
        return;
      }
      case 'ping': {
        const ours = (f.id & 1) === (this.role === 'client' ? 1 : 0);
        if (!ours) {
          this.writeFrame(encodePing(f.id));
          return;
        }
        const p = this.pings.get(f.id);
        if (p) {
          this.pings.delete(f.id);
          p.resolve(Date.now() - p.start);
        }
        return;
      }
      case 'goaway':
        this.goneAway = true;
        this.emit('goaway', { lastStreamId: f.lastStreamId, status: f.status });
        return;
      case 'settings':
      case 'window_update':
      case 'unknown':
        return; // no flow control (see the class comment); unknown control frames are ignored per spec
    }
  }

  // ---- outbound ----

  private writeFrame(buf: Buffer): boolean {
    if (this.socket.destroyed || !this.socket.writable) return true;
    return this.socket.write(buf);
  }

  private flushDrainWaiters(): void {
    const waiters = this.drainWaiters.splice(0);
    for (const w of waiters) w();
  }

  private protocolError(e: Error): void {
    if (this.closed) return;
    this.log.warn('SPDY protocol error', { error: e.message });
    this.writeFrame(encodeGoAway(this.lastPeerStreamId, GoAwayStatus.PROTOCOL_ERROR));
    this.socket.end();
    this.destroy(e);
  }

  private teardown(err: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    if (this.closeTimer) clearTimeout(this.closeTimer);
    this.pending.length = 0;
    this.decompressor.close();
    for (const p of this.pings.values()) p.reject(new Error('SPDY session closed'));
    this.pings.clear();
    for (const s of [...this.streams.values()]) s.sessionClosed();
    this.streams.clear();
    this.congested.clear();
    this.flushDrainWaiters();
    if (!this.socket.destroyed) this.socket.destroy();
    this.emit('close', err);
  }
}

/**
 * One SPDY stream as a Duplex: readable = the peer's DATA until its FIN (or RST), writable = our
 * DATA; end() sends FIN. After an RST or session close, writes are discarded rather than failing, so
 * pipes from a backend process never crash the daemon; the session's owner aborts the work instead.
 */
export class SpdyStream extends Duplex {
  replied = false;
  private accepted = false;
  private localFin: boolean;
  private remoteFin: boolean;
  private gone = false;
  /** Set when the stream was reset by the peer (status) or lost with the session (-1). */
  resetStatus: number | undefined;

  constructor(
    private readonly session: SpdySession,
    readonly id: number,
    readonly headers: HeaderMap,
    state: { localFin: boolean; remoteFin: boolean },
  ) {
    super({ allowHalfOpen: true, emitClose: true });
    this.localFin = state.localFin;
    this.remoteFin = state.remoteFin;
    if (this.localFin) this.end();
    // Never let an unhandled 'error' take the daemon down; owners still see 'close'.
    this.on('error', () => {});
  }

  /** Server side: answer the peer's SYN_STREAM. */
  accept(): void {
    if (this.accepted || this.gone) return;
    this.accepted = true;
    this.replied = true;
    this.session.sendReply(this);
  }

  /** Server side: reject the stream (RST_STREAM REFUSED_STREAM). */
  refuse(): void {
    this.reset(RstStatus.REFUSED_STREAM);
  }

  /** Abort both directions. */
  reset(status: number = RstStatus.CANCEL): void {
    if (this.gone) return;
    this.gone = true;
    this.session.sendReset(this, status);
    this.finishRead();
    this.emit('reset', status);
  }

  get isGone(): boolean {
    return this.gone;
  }

  /** @internal */
  remoteData(data: Buffer): void {
    if (this.remoteFin || this.gone) return;
    if (!this.push(data)) this.session.markCongested(this);
  }

  /** @internal */
  remoteEnd(): void {
    if (this.remoteFin) return;
    this.remoteFin = true;
    this.push(null);
    this.maybeDone();
  }

  /** @internal */
  remoteReset(status: number): void {
    if (this.gone) return;
    this.gone = true;
    this.resetStatus = status;
    this.session.forget(this);
    this.finishRead();
    this.emit('reset', status);
  }

  /** @internal */
  sessionClosed(): void {
    if (!this.gone) {
      this.gone = true;
      if (this.resetStatus === undefined && !(this.localFin && this.remoteFin)) this.resetStatus = -1;
    }
    this.finishRead();
    this.destroy();
  }

  override _read(): void {
    this.session.relieve(this);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.gone || this.localFin) {
      cb();
      return;
    }
    this.session.sendData(this, chunk, false, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (this.gone || this.localFin) {
      cb();
      return;
    }
    this.localFin = true;
    this.session.sendData(this, Buffer.alloc(0), true, (err) => {
      this.maybeDone();
      cb(err);
    });
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.gone && !(this.localFin && this.remoteFin) && !this.session.isClosed) {
      this.gone = true;
      this.session.sendReset(this, RstStatus.CANCEL);
    }
    this.session.forget(this);
    cb(err);
  }

  private finishRead(): void {
    if (!this.remoteFin) {
      this.remoteFin = true;
      this.push(null);
    }
  }

  private maybeDone(): void {
    if (this.localFin && this.remoteFin) this.session.forget(this);
  }
}
