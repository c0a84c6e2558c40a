import type { Registry } from 'prom-client';
import type { CorralConfig } from '../config/schema';
import type { Logger } from '../log/logger';
import type { HandlerSet } from '../cri/types';
import type { EventBus } from '../events/bus';
import type { RuntimeMetrics } from '../metrics/runtime';

/** What the composition root (src/daemon) hands every functional area. No globals. */
export interface AreaDeps {
  /** Effective configuration. Reloadable settings are updated in place on SIGHUP; read them when used. */
  config: CorralConfig;
  log: Logger;
  /** prom-client registry for this daemon; areas register their metrics here (names prefixed corral_). */
  metrics: Registry;
  /** Lifecycle events for GetContainerEvents; areas publish CREATED/STARTED/STOPPED/DELETED here. */
  events?: EventBus;
  /** Runtime metrics (containers, CNI, OCI runtime, streaming) on the daemon's registry. */
  runtimeMetrics?: RuntimeMetrics;
}

/** A functional area (images, sandboxes, containers, ...) as the daemon sees it. */
export interface Area {
  /** CRI handlers this area implements. */
  handlers: HandlerSet;
  /** Called on SIGHUP after config was updated in place. */
  reload?(): Promise<void>;
  /** Graceful shutdown: stop watchers and timers; never stop containers. */
  close(): Promise<void>;
}
