import type { Server } from 'node:http';
import * as prom from 'prom-client';
import { parseHostPort, loadConfig, type LoadOptions } from '../config/load';
import { applyReload } from '../config/reload';
import type { CorralConfig } from '../config/schema';
import { CriServer } from '../cri/server';
import { runtimeInfoHandlers } from '../cri/runtime-info';
import { CORRAL_VERSION } from '../core/version';
import type { Logger, LogSettings } from '../log/logger';
import { startMetricsServer } from '../metrics/http';
import type { Area } from './area';
import { composeAreas } from './areas';
import { RootLock } from './lock';
import { sdNotify } from './notify';
import { preflight } from './preflight';
import { RuntimeInfo, type NetworkStatusSource } from './runtime-info';
import { prepareSocketPath, secureSocket } from './socket';
import { closeSpawner } from '../sys/spawner';

export interface DaemonInput {
  config: CorralConfig;
  /** Config files that were read, in the order applied. */
  configFiles: string[];
  /** How the config was loaded, so SIGHUP can load it again the same way. */
  loadOptions: LoadOptions;
  log: Logger;
  logSettings: LogSettings;
}

/**
 * The composition root: builds every area with injected config, logger and metrics registry, serves
 * CRI on the unix socket (and TCP when configured), and runs until SIGTERM/SIGINT. Resolves with the
 * process exit code. Containers are never stopped on shutdown.
 */
export async function runDaemon(input: DaemonInput): Promise<number> {
  const { config, log } = input;
  preflight(config);
  const lock = await RootLock.acquire(config.root);
  if (input.configFiles.length > 0) log.info('configuration loaded', { files: input.configFiles });
  const areas: Area[] = [];
  let metricsServer: Server | undefined;
  let server: CriServer | undefined;
  try {
    await prepareSocketPath(config.socket);
    const metrics = new prom.Registry();
    prom.collectDefaultMetrics({ register: metrics });
    const info = new RuntimeInfo(config);
    await info.load();

    server = new CriServer({ log, metrics, maxMessageBytes: config.grpc_max_message_bytes });
    server.register(runtimeInfoHandlers(info, () => config.runtime.cgroup_manager));
    const started = Date.now();
    await composeAreas({ config, log, metrics }, ({ name, area }) => {
      areas.push(area);
      server!.register(area.handlers);
      const svc = area.service as Partial<NetworkStatusSource> | undefined;
      if (svc && typeof svc.networkStatus === 'function') info.setNetworkSource(svc as NetworkStatusSource);
      log.debug('area ready', { area: name, ms: Date.now() - started });
    });
    server.build();
    await server.bind(`unix://${config.socket}`);
    await secureSocket(config.socket);
    if (config.listen_tcp) {
      const { host, port } = parseHostPort(config.listen_tcp, 'listen_tcp');
      const bound = await server.bind(`${host.includes(':') ? `[${host}]` : host}:${port}`);
      log.info('serving CRI on TCP', { address: `${host}:${bound}` });
    }
    if (config.metrics.enable) {
      const { host, port } = parseHostPort(config.metrics.address, 'metrics.address');
      metricsServer = await startMetricsServer({ host, port, registry: metrics, log, tlsCert: config.metrics.tls_cert, tlsKey: config.metrics.tls_key });
      const addr = metricsServer.address();
      log.info('serving metrics', { address: typeof addr === 'object' && addr ? `${addr.address}:${addr.port}` : config.metrics.address });
    }
    server.setReady(true);
    log.info('corral ready', { version: CORRAL_VERSION, socket: config.socket, root: config.root, run_root: config.run_root, pid: process.pid });
    await sdNotify(`READY=1\nSTATUS=serving CRI on ${config.socket}`, log);

    const signal = await waitForStop(input, areas);
    log.info('shutting down', { signal, grace_seconds: config.shutdown_grace_seconds });
    await sdNotify('STOPPING=1', log);
    server.setReady(false);
    await server.shutdown(config.shutdown_grace_seconds * 1000);
    return 0;
  } finally {
    metricsServer?.close();
    metricsServer?.closeAllConnections();
    for (const a of areas.reverse()) {
      try {
        await a.close();
      } catch (e) {
        log.warn('area close failed', { error: (e as Error).message });
      }
    }
    await closeSpawner().catch(() => {});
    await import('node:fs').then((fs) => fs.promises.rm(config.socket, { force: true })).catch(() => {});
    await lock.release();
  }
}

/** Resolves on SIGTERM/SIGINT. SIGHUP reloads the reloadable settings meanwhile. */
function waitForStop(input: DaemonInput, areas: Area[]): Promise<string> {
  const { config, log } = input;
  return new Promise((resolve) => {
    const stop = (sig: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      process.off('SIGHUP', hup);
      resolve(sig);
    };
    const hup = () => {
      void (async () => {
        try {
          const next = loadConfig(input.loadOptions).config;
          const res = applyReload(config, next);
          input.logSettings.level = config.log.level;
          input.logSettings.format = config.log.format;
          for (const a of areas) await a.reload?.();
          if (res.applied.length === 0) log.info('SIGHUP: configuration reloaded, nothing changed');
          for (const change of res.applied) log.info('SIGHUP: setting changed', { change });
          if (res.needRestart.length > 0) log.warn('SIGHUP: these settings changed but need a restart', { settings: res.needRestart });
        } catch (e) {
          log.error('SIGHUP: reload failed; keeping the current configuration', { error: (e as Error).message });
        }
      })();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', hup);
  });
}
