import { createContainerArea } from '../container/index';
import { toCriStatus } from '../cri/container';
import { createImageArea } from '../cri/image';
import { createStreamingArea } from '../cri/streaming';
import { eventHandlers } from '../cri/events';
import { toCriPodSandboxStatus } from '../cri/sandbox';
import { EventBus } from '../events/bus';
import { statsHandlers } from '../cri/stats';
import { chunkedStream } from '../cri/chunked';
import { StatsService } from '../stats/service';
import { createRuntimeMetrics, type RuntimeMetrics } from '../metrics/runtime';
import type { ContainerService } from '../container/service';
import { errorMessage, isCorralError } from '../core/errors';
import type { UnaryHandler } from '../cri/types';
import { createSandboxArea } from '../sandbox/index';
import type { Area, AreaDeps } from './area';

export interface NamedArea {
  name: string;
  area: Area & { service?: unknown };
}

/**
 * Builds the functional areas in dependency order, handing each the services it needs from the ones
 * before it: images → sandboxes (pause image) → containers; then the event stream over all of them.
 * Each factory recovers its state before returning. `onArea` sees each area as soon as it exists, so
 * the caller can close what was built if a later one fails.
 */
export async function composeAreas(base: Omit<AreaDeps, 'events'>, onArea: (a: NamedArea) => void): Promise<void> {
  const events = new EventBus();
  const runtimeMetrics = createRuntimeMetrics(base.metrics);
  const deps: AreaDeps = { ...base, events, runtimeMetrics };
  const child = (name: string): AreaDeps => ({ ...deps, log: deps.log.child({ area: name }) });
  const image = await createImageArea(child('image'));
  onArea({ name: 'image', area: image });
  const sandbox = await createSandboxArea(child('sandbox'), { images: image.service });
  onArea({ name: 'sandbox', area: sandbox });
  const container = await createContainerArea(child('container'), { images: image.service, sandboxes: sandbox.service, runtime: sandbox.runtime });
  countContainers(runtimeMetrics, container.handlers.unary!, container.service, events, deps.log);
  onArea({ name: 'container', area: container });
  runtimeMetrics.setContainerStates(() => countBy(container.service.list().map((c) => (c.state === 'creating' ? 'created' : c.state))));
  runtimeMetrics.setPodStates(() => countBy(sandbox.service.list().map((p) => p.state)));
  const streaming = await createStreamingArea(child('streaming'), { containers: container.service, sandboxes: sandbox.service, runtime: sandbox.runtime });
  onArea({ name: 'streaming', area: streaming });
  const stats = new StatsService({
    log: deps.log.child({ area: 'stats' }),
    liveIds: () => [...container.service.list().map((c) => c.id), ...sandbox.service.list().map((s) => s.id)],
  });
  onArea({ name: 'stats', area: { handlers: statsHandlers({ config: deps.config, stats, containers: container.service, sandboxes: sandbox.service }), close: async () => {} } });
  // The Stream* list RPCs of CRI 1.36: the List answers, chunked.
  const list = (area: { handlers: { unary?: Record<string, UnaryHandler> } }, name: string) => area.handlers.unary![name] as UnaryHandler<any, any>;
  onArea({
    name: 'streams',
    area: {
      handlers: {
        stream: {
          StreamPodSandboxes: chunkedStream(list(sandbox, 'ListPodSandbox'), 'items', 'pod_sandboxes'),
          StreamContainers: chunkedStream(list(container, 'ListContainers'), 'containers', 'containers'),
        },
      },
      close: async () => {},
    },
  });
  const podStatus = (id: string) => {
    try {
      return toCriPodSandboxStatus(sandbox.service.get(id));
    } catch {
      return undefined;
    }
  };
  onArea({
    name: 'events',
    area: { handlers: eventHandlers(events, { podStatus, containerStatuses: (podId) => container.service.list({ sandboxId: podId }).map(toCriStatus) }), close: async () => {} },
  });
}

function countBy(keys: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = (out[k] ?? 0) + 1;
  return out;
}

/**
 * Container counters from outside the container area: created/started/failed around the two RPCs
 * (failures by error code), OOM kills from STOPPED events whose container exited OOMKilled.
 */
function countContainers(m: RuntimeMetrics, handlers: Record<string, UnaryHandler>, containers: ContainerService, events: EventBus, log: AreaDeps['log']): void {
  const around = (name: 'CreateContainer' | 'StartContainer', ok: () => void) => {
    const h = handlers[name];
    handlers[name] = async (req, ctx) => {
      try {
        const res = await h(req, ctx);
        ok();
        return res;
      } catch (e) {
        m.containersFailed.inc({ reason: isCorralError(e) ? e.code : 'Internal' });
        throw e;
      }
    };
  };
  around('CreateContainer', () => m.containersCreated.inc());
  around('StartContainer', () => m.containersStarted.inc());
  const ac = new AbortController();
  void (async () => {
    for await (const ev of events.subscribe(ac.signal)) {
      if (ev.type !== 'CONTAINER_STOPPED_EVENT' || ev.containerId === ev.podSandboxId) continue;
      try {
        if (containers.get(ev.containerId).reason === 'OOMKilled') m.containerOomKills.inc();
      } catch {
        // removed meanwhile
      }
    }
  })().catch((e) => log.warn('OOM kill counter stopped', { error: errorMessage(e) }));
}
