import type { Area, AreaDeps } from '../daemon/area';
import { sandboxHandlers } from '../cri/sandbox';
import { CniManager } from '../network/cni';
import { RuntimeDriver } from '../runtime/driver';
import { readDaemonCapabilities } from '../sys/caps';
import { SandboxService } from './service';
import { PauseImage } from './pause-image';
import type { ImageService } from '../image/service';

export { SandboxService } from './service';
export type { PodSandboxSpec, SandboxRecord, SandboxFilter, SandboxPaths } from './types';

/**
 * The pod sandbox area: CNI manager, runtime driver (shared with containers via `runtime`), sandbox
 * service (recovered before this returns) and the RunPodSandbox/Stop/Remove/Status/List handlers.
 */
export async function createSandboxArea(
  deps: AreaDeps,
  others: { images?: ImageService } = {},
): Promise<Area & { service: SandboxService; runtime: RuntimeDriver }> {
  const { config, log } = deps;
  const runtime = new RuntimeDriver({
    conmon: config.runtime.conmon,
    handlers: () => config.runtime.handlers,
    runRoot: config.run_root,
    cgroupManager: () => config.runtime.cgroup_manager,
    logSizeMax: () => config.runtime.log_size_max,
    log: log.child({ area: 'runtime' }),
    observe: deps.runtimeMetrics ? (op, bin, fn) => deps.runtimeMetrics!.timeOci(op, bin, fn) : undefined,
  });
  await runtime.init();
  const m = deps.runtimeMetrics;
  const cni = new CniManager(() => config.cni, config.root, log.child({ area: 'cni' }), {
    observe: m ? (op, fn) => m.timeCni(op, fn) : undefined,
  });
  await cni.start();
  const pause = others.images ? new PauseImage(others.images, log.child({ area: 'pause' })) : undefined;
  if (config.runtime.pause_image && !pause) {
    log.warn('runtime.pause_image needs the image service; using the built-in catatonit pause', { pause_image: config.runtime.pause_image });
  }
  const service = new SandboxService({ config, log: log.child({ area: 'sandbox' }), metrics: deps.metrics, driver: runtime, cni, caps: readDaemonCapabilities(), pause, events: deps.events });
  await service.init();
  return {
    handlers: sandboxHandlers(service),
    service,
    runtime,
    async reload() {
      cni.rewatch();
      await cni.reload();
    },
    async close() {
      service.close();
      cni.close();
      runtime.close();
    },
  };
}
