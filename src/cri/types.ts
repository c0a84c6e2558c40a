import type { Logger } from '../log/logger';

/** What every CRI handler receives besides its request. */
export interface CallContext {
  /** Full method name, e.g. "RunPodSandbox". */
  method: string;
  /** Aborted when the client cancels or the call's deadline passes. */
  signal: AbortSignal;
  /** Logger carrying the request id and method. */
  log: Logger;
}

/** A unary handler: decoded request (generated `X__Output` type) in, response object out. Throw CorralError on failure. */
export type UnaryHandler<Req = any, Res = any> = (req: Req, ctx: CallContext) => Promise<Res>;

/**
 * A server-streaming handler: write() sends one message (returns false when the client is slow:
 * the caller should wait for `drain`); resolve when the stream is done. ctx.signal aborts on cancel.
 */
export type StreamHandler<Req = any, Res = any> = (
  req: Req,
  ctx: CallContext,
  out: {
    write(msg: Res): boolean;
    waitDrain(): Promise<void>;
    /** Sends response headers now, so the client knows the stream is established before the first message. */
    sendHeaders?(): void;
  },
) => Promise<void>;

export interface Handlers {
  unary: Record<string, UnaryHandler>;
  stream: Record<string, StreamHandler>;
}

/** Each area (runtime info, images, sandboxes, containers, ...) contributes some handlers. */
export type HandlerSet = Partial<{ unary: Record<string, UnaryHandler>; stream: Record<string, StreamHandler> }>;
