import * as http from 'node:http';
import * as https from 'node:https';
import { readFileSync } from 'node:fs';
import type { Registry } from 'prom-client';
import type { Logger } from '../log/logger';

export interface MetricsServerOptions {
  host: string;
  port: number;
  tlsCert?: string;
  tlsKey?: string;
  registry: Registry;
  log: Logger;
}

/** Serves the registry at /metrics (Prometheus text format). Returns the bound server. */
export async function startMetricsServer(o: MetricsServerOptions): Promise<http.Server> {
  const handler: http.RequestListener = (req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' || url !== '/metrics') {
      res.writeHead(url === '/metrics' ? 405 : 404).end();
      return;
    }
    o.registry.metrics().then(
      (body) => res.writeHead(200, { 'Content-Type': o.registry.contentType }).end(body),
      (e: Error) => {
        o.log.error('metrics collection failed', { error: e.message });
        res.writeHead(500).end();
      },
    );
  };
  const server = o.tlsCert
    ? https.createServer({ cert: readFileSync(o.tlsCert), key: readFileSync(o.tlsKey!) }, handler)
    : http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // After listen, an error (EMFILE on accept) is the endpoint's trouble, never a reason to stop the daemon.
  server.on('error', (e) => o.log.warn('metrics endpoint error', { error: e.message }));
  return server;
}
