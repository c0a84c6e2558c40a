import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { CorralError, internal, type ErrorCode } from '../../core/errors';
import { nullLogger, type Logger } from '../../log/logger';
import type { Compression } from '../media-types';
import type { FromWorker, ToWorker } from './extract-worker';
import { LayerExtractor, type ExtractResult } from './extract';

/** What the pull path needs from an extractor, in-process or in a worker. */
export interface Extractor {
  write(chunk: Buffer): Promise<void>;
  finish(): Promise<ExtractResult>;
  /** Stops extraction; once it resolves nothing writes into the directory any more. */
  abort(): Promise<void>;
}

/** Bytes batched per message to the worker, and the most sent but not yet taken. */
const BATCH = 1024 * 1024;
const MAX_IN_FLIGHT = 8 * 1024 * 1024;
const WORKER_FILE = path.join(__dirname, 'extract-worker.js');

/** Runs a LayerExtractor in a worker thread; same contract as the in-process one. */
class WorkerExtractor implements Extractor {
  private inFlight = 0;
  private batch?: Uint8Array;
  private filled = 0;
  private failure?: Error;
  private wake?: () => void;
  private result?: (r: ExtractResult) => void;
  private rejectFinish?: (e: Error) => void;
  private settled = false;
  private readonly onMessage = (m: FromWorker) => this.handle(m);
  private readonly onError = (e: Error) => this.fail(internal(`layer extraction worker failed: ${e.message}`, e));
  private readonly onExit = (code: number) => this.fail(internal(`layer extraction worker exited (${code})`));

  constructor(
    private readonly worker: Worker,
    private readonly pool: ExtractorPool,
    private readonly log: Logger,
    dir: string,
    compression: Compression,
    what: string,
  ) {
    worker.on('message', this.onMessage);
    worker.on('error', this.onError);
    worker.on('exit', this.onExit);
    worker.ref();
    this.post({ t: 'start', dir, compression, what });
  }

  private post(m: ToWorker, transfer?: ArrayBuffer[]): void {
    this.worker.postMessage(m, transfer);
  }

  private handle(m: FromWorker): void {
    switch (m.t) {
      case 'ack':
        this.inFlight -= m.n;
        this.wake?.();
        break;
      case 'done':
        this.detach(true);
        this.result?.(m.result);
        break;
      case 'error':
        this.fail(new CorralError(m.code as ErrorCode, m.message));
        break;
      case 'log':
        this.log[m.level](m.msg, m.fields);
        break;
    }
  }

  private fail(e: Error): void {
    if (this.failure || this.settled) return;
    this.failure = e;
    this.wake?.();
    this.rejectFinish?.(e);
  }

  /** Stops listening; a worker that finished cleanly goes back to the pool. */
  private detach(reusable: boolean): void {
    if (this.settled) return;
    this.settled = true;
    this.worker.off('message', this.onMessage);
    this.worker.off('error', this.onError);
    this.worker.off('exit', this.onExit);
    if (reusable) this.pool.release(this.worker);
  }

  private flush(): void {
    if (!this.batch || this.filled === 0) return;
    const buf = this.filled === this.batch.length ? this.batch : this.batch.subarray(0, this.filled);
    this.post({ t: 'data', buf }, [this.batch.buffer as ArrayBuffer]);
    this.inFlight += this.filled;
    this.batch = undefined;
    this.filled = 0;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    let off = 0;
    while (off < chunk.length) {
      this.batch ??= Buffer.allocUnsafeSlow(BATCH);
      const n = Math.min(chunk.length - off, BATCH - this.filled);
      this.batch.set(chunk.subarray(off, off + n), this.filled);
      this.filled += n;
      off += n;
      if (this.filled === BATCH) this.flush();
    }
    while (this.inFlight > MAX_IN_FLIGHT && !this.failure) await new Promise<void>((r) => (this.wake = r));
    if (this.failure) throw this.failure;
  }

  async finish(): Promise<ExtractResult> {
    if (this.failure) throw this.failure;
    this.flush();
    const done = new Promise<ExtractResult>((resolve, reject) => {
      this.result = resolve;
      this.rejectFinish = reject;
    });
    this.post({ t: 'end' });
    return done;
  }

  async abort(): Promise<void> {
    if (this.settled) return;
    this.fail(internal('aborted'));
    this.detach(false);
    // Terminating stops every write of the worker before the caller removes the directory.
    await this.worker.terminate();
  }
}

class LocalExtractor implements Extractor {
  constructor(private readonly ex: LayerExtractor) {}
  write(chunk: Buffer): Promise<void> {
    return this.ex.write(chunk);
  }
  finish(): Promise<ExtractResult> {
    return this.ex.finish();
  }
  async abort(): Promise<void> {
    this.ex.abort();
  }
}

/**
 * Layer extractors on worker threads, reused across layers (idle workers are kept, unref'd, up to
 * maxIdle, and ended after idleMs without work: each holds 10-20 MB that a node running its pods should
 * not pay for). The 5 s default spans the gaps between one pull's layers and between back-to-back pulls;
 * booting a worker again costs ~0.1 s of CPU, once per burst of pulls.
 * Small layers, and builds without the compiled worker file, extract in-process.
 */
export class ExtractorPool {
  private readonly idle: Worker[] = [];
  private readonly idleTimers = new Map<Worker, NodeJS.Timeout>();
  private readonly all = new Set<Worker>();
  private closed = false;
  readonly workerAvailable: boolean;

  constructor(
    private readonly opts: { log?: Logger; maxIdle?: number; minWorkerBytes?: number; useWorkers?: boolean; idleMs?: number } = {},
  ) {
    this.workerAvailable = (opts.useWorkers ?? true) && existsSync(WORKER_FILE);
  }

  private get log(): Logger {
    return this.opts.log ?? nullLogger;
  }

  /** An extractor writing into dir (an empty directory); sizeHint is the compressed size. */
  create(dir: string, compression: Compression, what: string, sizeHint: number): Extractor {
    if (this.closed || !this.workerAvailable || sizeHint < (this.opts.minWorkerBytes ?? 1024 * 1024)) {
      return new LocalExtractor(new LayerExtractor(dir, compression, { log: this.log, what }));
    }
    const w = this.idle.pop() ?? this.spawn();
    clearTimeout(this.idleTimers.get(w));
    this.idleTimers.delete(w);
    return new WorkerExtractor(w, this, this.log, dir, compression, what);
  }

  /**
   * Starts idle workers (up to n in all) ahead of the first pull: a worker takes ~0.1 s of CPU to
   * boot. Resolves when they have loaded the extractor.
   */
  async prewarm(n: number): Promise<void> {
    if (!this.workerAvailable) return;
    const booting: Promise<void>[] = [];
    for (let i = this.all.size; i < Math.min(n, this.opts.maxIdle ?? 4); i++) {
      const w = this.spawn();
      booting.push(
        new Promise<void>((resolve) => {
          // Referenced while booting (so awaiting this keeps the process alive), idle and unref'd after.
          const done = (ok: boolean) => {
            w.off('message', onMessage);
            w.off('exit', onExit);
            if (ok) this.release(w);
            resolve();
          };
          const onMessage = (m: FromWorker) => m.t === 'ready' && done(true);
          const onExit = () => done(false);
          w.on('message', onMessage);
          w.on('exit', onExit);
        }),
      );
    }
    await Promise.all(booting);
  }

  private spawn(): Worker {
    const worker = new Worker(WORKER_FILE);
    this.all.add(worker);
    worker.on('exit', () => {
      this.all.delete(worker);
      const i = this.idle.indexOf(worker);
      if (i >= 0) this.idle.splice(i, 1);
    });
    worker.on('error', (e) => this.log.warn('layer extraction worker error', { error: e.message }));
    return worker;
  }

  release(w: Worker): void {
    if (this.closed || this.idle.length >= (this.opts.maxIdle ?? 4)) {
      void w.terminate();
      return;
    }
    w.unref();
    this.idle.push(w);
    const timer = setTimeout(() => {
      this.idleTimers.delete(w);
      const i = this.idle.indexOf(w);
      if (i >= 0) {
        this.idle.splice(i, 1);
        void w.terminate();
      }
    }, this.opts.idleMs ?? 5_000);
    timer.unref();
    this.idleTimers.set(w, timer);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.idle.length = 0;
    for (const t of this.idleTimers.values()) clearTimeout(t);
    this.idleTimers.clear();
    await Promise.all([...this.all].map((w) => w.terminate()));
  }
}
