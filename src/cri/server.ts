import { randomBytes } from 'node:crypto';
import {
  Metadata,
  Server,
  ServerCredentials,
  status as Status,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';
import type { Counter, Histogram, Registry } from 'prom-client';
import * as prom from 'prom-client';
import { unavailable, unimplemented } from '../core/errors';
import { logContext, type Logger } from '../log/logger';
import { serviceDefinition, type CriServiceName } from './proto';
import { grpcCodeName, toGrpcError } from './status';
import type { CallContext, Handlers, HandlerSet, StreamHandler, UnaryHandler } from './types';

export interface CriServerOptions {
  log: Logger;
  metrics: Registry;
  maxMessageBytes: number;
}

/** Methods polled every second by kubelet: logged at debug only even when they fail with NotFound. */
const QUIET_NOT_FOUND = new Set(['ContainerStatus', 'PodSandboxStatus', 'ImageStatus', 'ContainerStats', 'PodSandboxStats']);

/**
 * The CRI gRPC server. Every RPC passes through one wrapper that checks readiness, sets up the
 * request context (id, AbortSignal, logger), records metrics and maps errors to gRPC status.
 * Methods without a handler answer UNIMPLEMENTED with their name.
 */
export class CriServer {
  private readonly server: Server;
  private readonly handlers: Handlers = { unary: {}, stream: {} };
  private ready = false;
  private readonly ops: Counter<string>;
  private readonly latency: Histogram<string>;
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(private readonly opts: CriServerOptions) {
    this.server = new Server({
      'grpc.max_receive_message_length': opts.maxMessageBytes,
      'grpc.max_send_message_length': opts.maxMessageBytes,
    });
    this.ops = new prom.Counter({
      name: 'corral_cri_operations_total',
      help: 'CRI RPCs served, by operation and gRPC status code.',
      labelNames: ['operation', 'code'],
      registers: [opts.metrics],
    });
    this.latency = new prom.Histogram({
      name: 'corral_cri_operation_duration_seconds',
      help: 'Latency of CRI RPCs in seconds, by operation and gRPC status code.',
      labelNames: ['operation', 'code'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: [opts.metrics],
    });
  }

  /** Adds an area's handlers. Later registrations of the same method win. */
  register(set: HandlerSet): void {
    Object.assign(this.handlers.unary, set.unary ?? {});
    Object.assign(this.handlers.stream, set.stream ?? {});
  }

  /** Until called, every RPC answers UNAVAILABLE (state is still being recovered). */
  setReady(ready: boolean): void {
    this.ready = ready;
  }

  /** Builds the service implementations from the registered handlers. Call once, before bind. */
  build(): void {
    for (const svc of ['RuntimeService', 'ImageService'] as CriServiceName[]) {
      const def = serviceDefinition(svc);
      const impl: UntypedServiceImplementation = {};
      for (const [name, m] of Object.entries(def)) {
        if (m.responseStream) impl[name] = this.wrapStream(name, this.handlers.stream[name]);
        else impl[name] = this.wrapUnary(name, this.handlers.unary[name]);
      }
      this.server.addService(def, impl);
    }
  }

  bind(address: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.bindAsync(address, ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
    });
  }

  /** Stops accepting calls, waits up to graceMs for in-flight calls, then cancels the rest. */
  async shutdown(graceMs: number): Promise<void> {
    const drained = new Promise<void>((resolve) => this.server.tryShutdown(() => resolve()));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), graceMs)));
    const res = await Promise.race([drained, timeout]);
    clearTimeout(timer);
    if (res === 'timeout') {
      this.opts.log.warn('in-flight calls did not finish in time; cancelling them', { inflight: this.inflight.size });
      this.server.forceShutdown();
    }
  }

  private context(method: string, call: { getDeadline(): Date | number; on(ev: 'cancelled', cb: () => void): unknown }) {
    const id = randomBytes(4).toString('hex');
    const ac = new AbortController();
    call.on('cancelled', () => ac.abort(new Error('cancelled by client')));
    const deadline = call.getDeadline();
    const ms = deadline instanceof Date ? deadline.getTime() : deadline;
    let timer: NodeJS.Timeout | undefined;
    if (Number.isFinite(ms) && ms > 0) {
      timer = setTimeout(() => ac.abort(new Error('deadline exceeded')), Math.max(0, ms - Date.now()));
    }
    const ctx: CallContext = { method, signal: ac.signal, log: this.opts.log.child({ req: id, method }) };
    return { ctx, id, done: () => clearTimeout(timer) };
  }

  private observe(method: string, start: bigint, code: Status, err?: unknown, ctxLog?: Logger): void {
    const secs = Number(process.hrtime.bigint() - start) / 1e9;
    const codeName = grpcCodeName(code);
    this.ops.inc({ operation: method, code: codeName });
    this.latency.observe({ operation: method, code: codeName }, secs);
    const log = ctxLog ?? this.opts.log;
    const fields = { ms: +(secs * 1000).toFixed(3), code: codeName };
    if (code === Status.OK) log.debug('rpc', fields);
    else if (code === Status.NOT_FOUND && QUIET_NOT_FOUND.has(method)) log.debug('rpc failed', { ...fields, error: errText(err) });
    else if (code === Status.INTERNAL || code === Status.UNKNOWN) log.error('rpc failed', { ...fields, error: errText(err) });
    else log.warn('rpc failed', { ...fields, error: errText(err) });
  }

  private wrapUnary(method: string, handler: UnaryHandler | undefined) {
    return (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      const start = process.hrtime.bigint();
      const { ctx, id, done } = this.context(method, call);
      const p = logContext.run({ req: id, method }, async () => {
        try {
          if (!handler) throw unimplemented(`${method} is not implemented by corral yet`);
          if (!this.ready) throw unavailable('corral is starting: recovering state');
          const res = await handler(call.request, ctx);
          this.observe(method, start, Status.OK, undefined, ctx.log);
          callback(null, res ?? {});
        } catch (e) {
          const ge = toGrpcError(e);
          this.observe(method, start, ge.code, e, ctx.log);
          callback(ge as never);
        } finally {
          done();
        }
      });
      this.track(p);
    };
  }

  private wrapStream(method: string, handler: StreamHandler | undefined) {
    return (call: ServerWritableStream<unknown, unknown>) => {
      const start = process.hrtime.bigint();
      const { ctx, id, done } = this.context(method, call);
      const out = {
        write: (msg: unknown) => call.write(msg),
        sendHeaders: () => call.sendMetadata(new Metadata()),
        waitDrain: () => new Promise<void>((resolve) => {
          if (ctx.signal.aborted) return resolve();
          const onAbort = () => resolve();
          ctx.signal.addEventListener('abort', onAbort, { once: true });
          call.once('drain', () => {
            ctx.signal.removeEventListener('abort', onAbort);
            resolve();
          });
        }),
      };
      const p = logContext.run({ req: id, method }, async () => {
        try {
          if (!handler) throw unimplemented(`${method} is not implemented by corral yet`);
          if (!this.ready) throw unavailable('corral is starting: recovering state');
          await handler(call.request, ctx, out);
          this.observe(method, start, Status.OK, undefined, ctx.log);
          if (!ctx.signal.aborted) call.end();
        } catch (e) {
          const ge = toGrpcError(e);
          this.observe(method, start, ctx.signal.aborted ? Status.CANCELLED : ge.code, e, ctx.log);
          if (!ctx.signal.aborted) call.emit('error', Object.assign(new Error(ge.details), ge));
        } finally {
          done();
        }
      });
      this.track(p);
    };
  }

  private track(p: Promise<unknown>): void {
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }
}

function errText(e: unknown): string | undefined {
  if (e === undefined) return undefined;
  return e instanceof Error ? e.message : String(e);
}
