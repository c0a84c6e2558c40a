import * as zlib from 'node:zlib';
import { SPDY3_DICTIONARY, SPDY3_DICTIONARY_ID } from './dictionary';
import { SpdyProtocolError } from './frames';

/**
 * SPDY/3 header blocks are one zlib stream per direction, primed with the SPDY dictionary and cut at
 * a sync-flush point after every block.
 *
 * Outbound we emit deflate *stored* blocks: valid zlib that every inflater (Go's compress/zlib in
 * moby/spdystream included) decodes, with no compressor state to keep in step and no async zlib call
 * on the write path. Header blocks are tens of bytes; compressing them would save nothing measurable.
 */
const SYNC_FLUSH_MARKER = Buffer.from([0x00, 0x00, 0x00, 0xff, 0xff]);

export class HeaderCompressor {
  private started = false;

  compress(block: Buffer): Buffer {
    const parts: Buffer[] = [];
    if (!this.started) {
      // CMF 0x78 (deflate, 32K window), FLG 0xBB (FDICT set, FCHECK valid), then the dictionary id.
      const head = Buffer.alloc(6);
      head[0] = 0x78;
      head[1] = 0xbb;
      head.writeUInt32BE(SPDY3_DICTIONARY_ID, 2);
      parts.push(head);
      this.started = true;
    }
    let off = 0;
    do {
      const len = Math.min(0xffff, block.length - off);
      const h = Buffer.alloc(5);
      h[0] = 0x00; // BFINAL=0, BTYPE=00 (stored), padded to the byte boundary
      h.writeUInt16LE(len, 1);
      h.writeUInt16LE(~len & 0xffff, 3);
      parts.push(h, block.subarray(off, off + len));
      off += len;
    } while (off < block.length);
    // The sync-flush marker (an empty stored block). Inflaters such as Go's compress/flate only hand
    // out a stored block's bytes once the next block header is read; without this marker they block
    // reading into the next frame and fail ("WrongCompressedPayloadSize" in spdystream).
    parts.push(SYNC_FLUSH_MARKER);
    return Buffer.concat(parts);
  }
}

/** Largest decompressed header block accepted; real ones are well under 1 KiB. */
const MAX_HEADER_BLOCK = 256 * 1024;

/**
 * Inflates inbound header blocks with one zlib context for the whole connection. Node's zlib is
 * asynchronous, so calls must be made in frame order and awaited before the next one (the session's
 * frame pump does that).
 */
export class HeaderDecompressor {
  private readonly z = zlib.createInflate({ dictionary: SPDY3_DICTIONARY, flush: zlib.constants.Z_SYNC_FLUSH });
  private failed: Error | undefined;
  private out: Buffer[] = [];
  private outBytes = 0;

  constructor() {
    this.z.on('error', (e) => {
      this.failed = e;
    });
    // Drain as output appears so a large block never leaves the transform waiting on a reader.
    this.z.on('readable', () => this.drain());
  }

  decompress(block: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      const fail = (e: Error) => reject(new SpdyProtocolError(`header decompression failed: ${e.message}`));
      if (this.failed) {
        fail(this.failed);
        return;
      }
      // A zlib error may destroy the stream without ever calling the write callback.
      const onError = (e: Error) => fail(e);
      this.z.once('error', onError);
      this.z.write(block, (err) => {
        this.z.off('error', onError);
        if (err || this.failed) {
          fail((err ?? this.failed)!);
          return;
        }
        this.drain();
        const total = this.outBytes;
        const result = Buffer.concat(this.out);
        this.out = [];
        this.outBytes = 0;
        if (total > MAX_HEADER_BLOCK) reject(new SpdyProtocolError(`header block too large: ${total}`));
        else resolve(result);
      });
    });
  }

  close(): void {
    this.z.close();
  }

  private drain(): void {
    let c: Buffer | null;
    while ((c = this.z.read() as Buffer | null) !== null) {
      this.outBytes += c.length;
      if (this.outBytes <= MAX_HEADER_BLOCK + 1) this.out.push(c);
    }
  }
}
