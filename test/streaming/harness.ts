import { nullLogger } from '../../src/log/logger';
import type { ExecRequest } from '../../src/streaming/backend';
import { StreamingServer, StreamingServerOptions } from '../../src/streaming/server';
import { ProcessBackend } from './process-backend';

export async function startServer(opts: Partial<StreamingServerOptions> = {}) {
  const backend = new ProcessBackend();
  const server = await StreamingServer.start({
    address: '127.0.0.1',
    port: 0,
    idleTimeoutMs: 60_000,
    backend,
    log: nullLogger,
    ...opts,
  });
  return {
    server,
    backend,
    close: async () => {
      await server.close();
      await backend.cleanup();
    },
  };
}

export const execReq = (cmd: string[], o: Partial<ExecRequest> = {}): ExecRequest => ({
  containerId: 'c1',
  cmd,
  tty: false,
  stdin: false,
  stdout: true,
  stderr: true,
  ...o,
});
