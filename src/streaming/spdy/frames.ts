/**
 * SPDY/3(.1) frame layout: encoding and incremental decoding of frames. Pure and synchronous; header
 * blocks stay compressed here (see header-compression.ts).
 *
 *   control: |1| version(15) | type(16) | flags(8) | length(24) | payload
 *   data:    |0| stream id(31)          | flags(8) | length(24) | payload
 */

export const SPDY_VERSION = 3;

export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;

export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
} as const;

export const GoAwayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

/** Largest payload a frame can carry (24-bit length). */
export const MAX_FRAME_PAYLOAD = 0xffffff;

export type Frame =
  | { kind: 'data'; streamId: number; flags: number; data: Buffer }
  | { kind: 'syn_stream'; version: number; flags: number; streamId: number; associatedId: number; priority: number; slot: number; block: Buffer }
  | { kind: 'syn_reply'; version: number; flags: number; streamId: number; block: Buffer }
  | { kind: 'headers'; version: number; flags: number; streamId: number; block: Buffer }
  | { kind: 'rst_stream'; version: number; flags: number; streamId: number; status: number }
  | { kind: 'settings'; version: number; flags: number; entries: { flags: number; id: number; value: number }[] }
  | { kind: 'ping'; version: number; flags: number; id: number }
  | { kind: 'goaway'; version: number; flags: number; lastStreamId: number; status: number }
  | { kind: 'window_update'; version: number; flags: number; streamId: number; delta: number }
  | { kind: 'unknown'; version: number; type: number; flags: number; payload: Buffer };

export class SpdyProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpdyProtocolError';
  }
}

function controlHeader(type: number, flags: number, length: number): Buffer {
  if (length > MAX_FRAME_PAYLOAD) throw new SpdyProtocolError(`frame payload too large: ${length}`);
  const h = Buffer.allocUnsafe(8);
  h.writeUInt32BE((0x80000000 | (SPDY_VERSION << 16) | type) >>> 0, 0);
  h.writeUInt32BE(((flags << 24) | length) >>> 0, 4);
  return h;
}

const u31 = (n: number) => (n & 0x7fffffff) >>> 0;

export function encodeData(streamId: number, data: Buffer, fin: boolean): Buffer {
  if (data.length > MAX_FRAME_PAYLOAD) throw new SpdyProtocolError(`data frame too large: ${data.length}`);
  const h = Buffer.allocUnsafe(8 + data.length);
  h.writeUInt32BE(u31(streamId), 0);
  h.writeUInt32BE((((fin ? FLAG_FIN : 0) << 24) | data.length) >>> 0, 4);
  data.copy(h, 8);
  return h;
}

export function encodeSynStream(
  streamId: number,
  block: Buffer,
  opts: { fin?: boolean; unidirectional?: boolean; associatedId?: number; priority?: number } = {},
): Buffer {
  const flags = (opts.fin ? FLAG_FIN : 0) | (opts.unidirectional ? FLAG_UNIDIRECTIONAL : 0);
  const body = Buffer.allocUnsafe(10);
  body.writeUInt32BE(u31(streamId), 0);
  body.writeUInt32BE(u31(opts.associatedId ?? 0), 4);
  body.writeUInt8(((opts.priority ?? 0) & 7) << 5, 8);
  body.writeUInt8(0, 9);
  return Buffer.concat([controlHeader(FrameType.SYN_STREAM, flags, 10 + block.length), body, block]);
}

export function encodeSynReply(streamId: number, block: Buffer, fin = false): Buffer {
  const id = Buffer.allocUnsafe(4);
  id.writeUInt32BE(u31(streamId), 0);
  return Buffer.concat([controlHeader(FrameType.SYN_REPLY, fin ? FLAG_FIN : 0, 4 + block.length), id, block]);
}

export function encodeRstStream(streamId: number, status: number): Buffer {
  const f = controlHeader(FrameType.RST_STREAM, 0, 8);
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32BE(u31(streamId), 0);
  b.writeUInt32BE(status >>> 0, 4);
  return Buffer.concat([f, b]);
}

export function encodePing(id: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(id >>> 0, 0);
  return Buffer.concat([controlHeader(FrameType.PING, 0, 4), b]);
}

export function encodeGoAway(lastStreamId: number, status: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32BE(u31(lastStreamId), 0);
  b.writeUInt32BE(status >>> 0, 4);
  return Buffer.concat([controlHeader(FrameType.GOAWAY, 0, 8), b]);
}

export function encodeWindowUpdate(streamId: number, delta: number): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeUInt32BE(u31(streamId), 0);
  b.writeUInt32BE(u31(delta), 4);
  return Buffer.concat([controlHeader(FrameType.WINDOW_UPDATE, 0, 8), b]);
}

export function encodeSettings(entries: { flags?: number; id: number; value: number }[]): Buffer {
  const b = Buffer.allocUnsafe(4 + entries.length * 8);
  b.writeUInt32BE(entries.length, 0);
  entries.forEach((e, i) => {
    b.writeUInt32BE((((e.flags ?? 0) << 24) | (e.id & 0xffffff)) >>> 0, 4 + i * 8);
    b.writeUInt32BE(e.value >>> 0, 8 + i * 8);
  });
  return Buffer.concat([controlHeader(FrameType.SETTINGS, 0, b.length), b]);
}

function need(payload: Buffer, n: number, what: string): void {
  if (payload.length < n) throw new SpdyProtocolError(`${what} frame too short (${payload.length} < ${n})`);
}

function decodeControl(version: number, type: number, flags: number, p: Buffer): Frame {
  switch (type) {
    case FrameType.SYN_STREAM:
      need(p, 10, 'SYN_STREAM');
      return {
        kind: 'syn_stream',
        version,
        flags,
        streamId: u31(p.readUInt32BE(0)),
        associatedId: u31(p.readUInt32BE(4)),
        priority: p.readUInt8(8) >> 5,
        slot: p.readUInt8(9),
        block: p.subarray(10),
      };
    case FrameType.SYN_REPLY:
      need(p, 4, 'SYN_REPLY');
      return { kind: 'syn_reply', version, flags, streamId: u31(p.readUInt32BE(0)), block: p.subarray(4) };
    case FrameType.HEADERS:
      need(p, 4, 'HEADERS');
      return { kind: 'headers', version, flags, streamId: u31(p.readUInt32BE(0)), block: p.subarray(4) };
    case FrameType.RST_STREAM:
      need(p, 8, 'RST_STREAM');
      return { kind: 'rst_stream', version, flags, streamId: u31(p.readUInt32BE(0)), status: p.readUInt32BE(4) };
    case FrameType.SETTINGS: {
      need(p, 4, 'SETTINGS');
      const n = p.readUInt32BE(0);
      need(p, 4 + n * 8, 'SETTINGS');
      const entries = [];
      for (let i = 0; i < n; i++) {
        const w = p.readUInt32BE(4 + i * 8);
        entries.push({ flags: w >>> 24, id: w & 0xffffff, value: p.readUInt32BE(8 + i * 8) });
      }
      return { kind: 'settings', version, flags, entries };
    }
    case FrameType.PING:
      need(p, 4, 'PING');
      return { kind: 'ping', version, flags, id: p.readUInt32BE(0) };
    case FrameType.GOAWAY:
      // SPDY/2 GOAWAY has no status word; accept both lengths.
      need(p, 4, 'GOAWAY');
      return { kind: 'goaway', version, flags, lastStreamId: u31(p.readUInt32BE(0)), status: p.length >= 8 ? p.readUInt32BE(4) : 0 };
    case FrameType.WINDOW_UPDATE:
      need(p, 8, 'WINDOW_UPDATE');
      return { kind: 'window_update', version, flags, streamId: u31(p.readUInt32BE(0)), delta: u31(p.readUInt32BE(4)) };
    default:
      return { kind: 'unknown', version, type, flags, payload: p };
  }
}

/**
 * Incremental frame decoder: push() socket chunks, then take complete frames with next().
 * Holds at most one partial frame plus whatever whole frames the caller has not taken yet.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxPayload = MAX_FRAME_PAYLOAD) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** Bytes received but not yet returned as frames. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** The next complete frame, or undefined when more bytes are needed. Throws SpdyProtocolError. */
  next(): Frame | undefined {
    if (this.buffered < 8) return undefined;
    const head = this.peek(8);
    const length = head.readUInt32BE(4) & 0xffffff;
    if (length > this.maxPayload) throw new SpdyProtocolError(`frame length ${length} exceeds limit ${this.maxPayload}`);
    if (this.buffered < 8 + length) return undefined;
    const whole = this.take(8 + length);
    const w0 = whole.readUInt32BE(0);
    const flags = whole.readUInt8(4);
    const payload = whole.subarray(8);
    if (w0 & 0x80000000) {
      const version = (w0 >>> 16) & 0x7fff;
      const type = w0 & 0xffff;
      return decodeControl(version, type, flags, payload);
    }
    return { kind: 'data', streamId: u31(w0), flags, data: payload };
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0].subarray(0, n);
    return Buffer.concat(this.chunks).subarray(0, n);
  }

  private take(n: number): Buffer {
    let out: Buffer;
    if (this.chunks[0].length >= n) {
      const first = this.chunks[0];
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      const all = Buffer.concat(this.chunks);
      out = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.buffered -= n;
    return out;
  }
}

/** SPDY/3 name/value header block (uncompressed form): u32 count, then u32-length-prefixed names and values. */
export type HeaderMap = Record<string, string>;

export function encodeHeaderBlock(headers: HeaderMap): Buffer {
  const parts: Buffer[] = [];
  const entries = Object.entries(headers);
  const count = Buffer.allocUnsafe(4);
  count.writeUInt32BE(entries.length, 0);
  parts.push(count);
  for (const [name, value] of entries) {
    for (const s of [name.toLowerCase(), value]) {
      const b = Buffer.from(s, 'utf8');
      const len = Buffer.allocUnsafe(4);
      len.writeUInt32BE(b.length, 0);
      parts.push(len, b);
    }
  }
  return Buffer.concat(parts);
}

/**
 * Parses an uncompressed header block. Names are lowercased; multiple values (NUL-separated in SPDY)
 * are joined with ", " like HTTP.
 */
export function decodeHeaderBlock(block: Buffer): HeaderMap {
  let off = 0;
  const u32 = () => {
    if (off + 4 > block.length) throw new SpdyProtocolError('truncated header block');
    const v = block.readUInt32BE(off);
    off += 4;
    return v;
  };
  const str = () => {
    const n = u32();
    if (off + n > block.length) throw new SpdyProtocolError('truncated header block');
    const s = block.toString('utf8', off, off + n);
    off += n;
    return s;
  };
  const count = u32();
  if (count > 1024) throw new SpdyProtocolError(`too many headers: ${count}`);
  const out: HeaderMap = {};
  for (let i = 0; i < count; i++) {
    const name = str().toLowerCase();
    const value = str().split('\0').join(', ');
    out[name] = name in out ? `${out[name]}, ${value}` : value;
  }
  return out;
}
