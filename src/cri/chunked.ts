import type { StreamHandler, UnaryHandler } from './types';

/**
 * The Stream* RPCs of CRI 1.36 return what their List* twin returns, in chunks, so a large answer is not
 * bound by the gRPC message size. This builds one from the other.
 */
export function chunkedStream<Req>(list: UnaryHandler<Req, Record<string, unknown[]>>, listField: string, streamField: string, chunk = 256): StreamHandler<Req, object> {
  return async (req, ctx, out) => {
    const res = await list(req, ctx);
    const items = res[listField] ?? [];
    for (let i = 0; i < items.length || i === 0; i += chunk) {
      if (ctx.signal.aborted) return;
      if (!out.write({ [streamField]: items.slice(i, i + chunk) })) await out.waitDrain();
      if (items.length === 0) break;
    }
  };
}
