/**
 * Worker-thread entry that runs one LayerExtractor at a time for the main thread (see worker-pool.ts),
 * so decompression, diff-id hashing, tar parsing and file writes use a second core while the main
 * thread keeps the registry connections and the compressed-blob verifier.
 *
 * Protocol (main → worker): start {dir, compression, what} · data {buf} · end.
 * (worker → main): ready once loaded · ack {n} after a chunk was taken · done {result} · error {code, message} · log.
 * Aborting is done by terminating the worker.
 */
import { parentPort } from 'node:worker_threads';
import { CorralError } from '../../core/errors';
import type { Fields, Logger } from '../../log/logger';
import type { Compression } from '../media-types';
import { LayerExtractor } from './extract';

export type ToWorker =
  | { t: 'start'; dir: string; compression: Compression; what: string }
  | { t: 'data'; buf: Uint8Array }
  | { t: 'end' };

export type FromWorker =
  | { t: 'ready' }
  | { t: 'ack'; n: number }
  | { t: 'done'; result: import('./extract').ExtractResult }
  | { t: 'error'; code: string; message: string }
  | { t: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string; fields?: Fields };

function workerLogger(post: (m: FromWorker) => void): Logger {
  const l: Logger = {
    // Debug lines (one per skipped tar entry) are not worth a message each.
    debug: () => {},
    info: (msg, fields) => post({ t: 'log', level: 'info', msg, fields }),
    warn: (msg, fields) => post({ t: 'log', level: 'warn', msg, fields }),
    error: (msg, fields) => post({ t: 'log', level: 'error', msg, fields }),
    child: () => l,
    enabled: (level) => level !== 'debug',
  };
  return l;
}

if (parentPort) {
  const port = parentPort;
  const post = (m: FromWorker) => port.postMessage(m);
  const log = workerLogger(post);
  let ex: LayerExtractor | undefined;
  let chain: Promise<void> = Promise.resolve();
  let failed = false;
  const fail = (e: unknown) => {
    if (failed) return;
    failed = true;
    const code = e instanceof CorralError ? e.code : 'Internal';
    post({ t: 'error', code, message: (e as Error)?.message ?? String(e) });
  };
  port.on('message', (m: ToWorker) => {
    switch (m.t) {
      case 'start':
        failed = false;
        chain = Promise.resolve();
        ex = new LayerExtractor(m.dir, m.compression, { log, what: m.what });
        break;
      case 'data': {
        const cur = ex!;
        const buf = Buffer.from(m.buf.buffer, m.buf.byteOffset, m.buf.byteLength);
        chain = chain.then(async () => {
          if (failed) return;
          try {
            await cur.write(buf);
            post({ t: 'ack', n: buf.length });
          } catch (e) {
            fail(e);
          }
        });
        break;
      }
      case 'end': {
        const cur = ex!;
        chain = chain.then(async () => {
          if (failed) return;
          try {
            const result = await cur.finish();
            ex = undefined;
            post({ t: 'done', result });
          } catch (e) {
            fail(e);
          }
        });
        break;
      }
    }
  });
  post({ t: 'ready' });
}
