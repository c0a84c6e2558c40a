import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import type { TerminalSize } from './backend';

/**
 * Terminal size changes of one session. Emits 'resize' with {width, height}, remembers the latest,
 * and can be consumed as an async iterable (ends when the session's resize stream ends).
 */
export class TerminalSizeQueue extends EventEmitter<{ resize: [TerminalSize]; end: [] }> implements AsyncIterable<TerminalSize> {
  latest: TerminalSize | undefined;
  ended = false;

  push(size: TerminalSize): void {
    if (this.ended) return;
    this.latest = size;
    this.emit('resize', size);
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.emit('end');
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TerminalSize> {
    const queue: TerminalSize[] = [];
    let wake: (() => void) | undefined;
    const onResize = (s: TerminalSize) => {
      queue.push(s);
      if (queue.length > 64) queue.shift(); // only the recent sizes matter
      wake?.();
    };
    const onEnd = () => wake?.();
    this.on('resize', onResize);
    this.on('end', onEnd);
    try {
      for (;;) {
        if (queue.length > 0) {
          yield queue.shift()!;
          continue;
        }
        if (this.ended) return;
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      this.off('resize', onResize);
      this.off('end', onEnd);
    }
  }
}

/**
 * Splits a byte stream of concatenated JSON objects (Go's json.Encoder output: `{"Width":80,"Height":24}\n`)
 * into sizes. Keys match case-insensitively, as Go's decoder does. Malformed input ends decoding,
 * like kubelet's handleResizeEvents.
 */
export class ResizeDecoder {
  private buf = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private start = -1;
  private broken = false;

  /** Feeds text; returns the sizes completed by it. */
  write(text: string): TerminalSize[] {
    if (this.broken) return [];
    const out: TerminalSize[] = [];
    const base = this.buf.length;
    this.buf += text;
    for (let i = base; i < this.buf.length; i++) {
      const c = this.buf[i];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (c === '\\') this.escaped = true;
        else if (c === '"') this.inString = false;
        continue;
      }
      if (c === '"') this.inString = true;
      else if (c === '{') {
        if (this.depth++ === 0) this.start = i;
      } else if (c === '}') {
        if (--this.depth === 0) {
          const size = parseSize(this.buf.slice(this.start, i + 1));
          if (!size) {
            this.broken = true;
            return out;
          }
          out.push(size);
          this.buf = this.buf.slice(i + 1);
          i = -1;
        } else if (this.depth < 0) {
          this.broken = true;
          return out;
        }
      } else if (this.depth === 0 && !/\s/.test(c)) {
        this.broken = true;
        return out;
      }
    }
    if (this.depth === 0) this.buf = '';
    if (this.buf.length > 4096) this.broken = true;
    return out;
  }
}

function parseSize(json: string): TerminalSize | undefined {
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (!v || typeof v !== 'object') return undefined;
  let width = 0;
  let height = 0;
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    const key = k.toLowerCase();
    if (typeof val !== 'number' || !Number.isInteger(val) || val < 0 || val > 0xffff) continue;
    if (key === 'width') width = val;
    else if (key === 'height') height = val;
  }
  return { width, height };
}

/** Reads a resize stream into the queue until it ends. */
export function pumpResize(stream: Readable, queue: TerminalSizeQueue): void {
  const dec = new ResizeDecoder();
  stream.setEncoding('utf8');
  stream.on('data', (t: string) => {
    for (const s of dec.write(t)) queue.push(s);
  });
  stream.on('end', () => queue.end());
  stream.on('close', () => queue.end());
}
