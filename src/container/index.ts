import type { Area, AreaDeps } from '../daemon/area';
import { containerHandlers } from '../cri/container';
import type { ImageService } from '../image/service';
import type { RuntimeDriver } from '../runtime/driver';
import type { SandboxService } from '../sandbox/service';
import { readDaemonCapabilities } from '../sys/caps';
import { ContainerService } from './service';
import { detectHostContext } from './spec';

export { ContainerService } from './service';
export type { ContainerConfig, ContainerRecord, ContainerFilter, ContainerState, ExecSyncResult } from './types';

/** The services of other areas the containers area builds on. */
export interface ContainerAreaServices {
  images: ImageService;
  sandboxes: SandboxService;
  runtime: RuntimeDriver;
}

/**
 * The containers area: the container service (recovered before this returns; registers the pod stop/remove
 * hooks) and the container half of RuntimeService.
 */
export async function createContainerArea(deps: AreaDeps, deps2: ContainerAreaServices): Promise<Area & { service: ContainerService }> {
  const { config, log } = deps;
  const host = detectHostContext({
    cgroupManager: config.runtime.cgroup_manager,
    restrictOomScoreAdj: config.runtime.restrict_oom_score_adj,
    caps: readDaemonCapabilities(),
  });
  if (host.restrictOomScoreAdj) {
    log.warn('the daemon lacks CAP_SYS_RESOURCE: container oom_score_adj values below its own are clamped', { own: host.daemonCaps.ownOomScoreAdj });
  }
  const service = new ContainerService({
    config,
    log: log.child({ area: 'container' }),
    images: deps2.images,
    sandboxes: deps2.sandboxes,
    driver: deps2.runtime,
    host,
    events: deps.events,
  });
  await service.init();
  return {
    handlers: containerHandlers(service),
    service,
    async close() {
      await service.close();
    },
  };
}
