import { credentials, Metadata, type Client, type ClientReadableStream, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/proto-loader';
import { loadCri } from '../../src/cri/proto';
import type { RuntimeServiceDefinition } from '../../cri-api/generated/runtime/v1/RuntimeService';
import type { ImageServiceDefinition } from '../../cri-api/generated/runtime/v1/ImageService';

export interface CallOptions {
  /** Per-call deadline in ms (default 120 s). */
  timeoutMs?: number;
}

/** A CRI service as promise-returning methods: `await rt.Version({})`. Streaming methods return the raw stream. */
export type Promisified<D> = {
  [K in keyof D]: D[K] extends MethodDefinition<infer Req, any, any, infer ResOut>
    ? (req: Req, opts?: CallOptions) => Promise<ResOut>
    : never;
};

export type RuntimeClient = Promisified<RuntimeServiceDefinition> & {
  stream<K extends keyof RuntimeServiceDefinition>(
    method: K,
    req: RuntimeServiceDefinition[K] extends MethodDefinition<infer Req, any, any, any> ? Req : never,
  ): ClientReadableStream<RuntimeServiceDefinition[K] extends MethodDefinition<any, any, any, infer O> ? O : never>;
  close(): void;
  raw: Client;
};
export type ImageClient = Promisified<ImageServiceDefinition> & { close(): void; raw: Client };

function promisify(raw: Client): Record<string, unknown> {
  return new Proxy({} as Record<string, unknown>, {
    get(_t, name: string) {
      if (name === 'close') return () => raw.close();
      if (name === 'raw') return raw;
      if (name === 'then') return undefined;
      if (name === 'stream') {
        return (method: string, req: unknown) => (raw as unknown as Record<string, (r: unknown) => unknown>)[method](req);
      }
      const fn = (raw as unknown as Record<string, Function>)[name];
      if (typeof fn !== 'function') return undefined;
      return (req: unknown, opts: CallOptions = {}) =>
        new Promise((resolve, reject) => {
          const deadline = new Date(Date.now() + (opts.timeoutMs ?? 120_000));
          fn.call(raw, req, new Metadata(), { deadline }, (err: ServiceError | null, res: unknown) => (err ? reject(err) : resolve(res)));
        });
    },
  });
}

/** Typed CRI clients over a unix socket ("/run/corral/corral.sock") or any gRPC target. */
export function criClients(target: string): { rt: RuntimeClient; img: ImageClient } {
  const address = target.startsWith('/') ? `unix://${target}` : target;
  const { pkg } = loadCri();
  const v1 = (pkg.runtime as Record<string, unknown>).v1 as Record<string, ServiceClientConstructor>;
  const opts = { 'grpc.max_receive_message_length': 80 * 1024 * 1024, 'grpc.max_send_message_length': 80 * 1024 * 1024 };
  const rtRaw = new v1.RuntimeService(address, credentials.createInsecure(), opts);
  const imgRaw = new v1.ImageService(address, credentials.createInsecure(), opts);
  return { rt: promisify(rtRaw) as unknown as RuntimeClient, img: promisify(imgRaw) as unknown as ImageClient };
}
