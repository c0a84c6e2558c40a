import { createImageArea } from '../cri/image';
import { eventHandlers } from '../cri/events';
import { toCriPodSandboxStatus } from '../cri/sandbox';
import { EventBus } from '../events/bus';
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
  const deps: AreaDeps = { ...base, events };
  const child = (name: string): AreaDeps => ({ ...deps, log: deps.log.child({ area: name }) });
  const image = await createImageArea(child('image'));
  onArea({ name: 'image', area: image });
  const sandbox = await createSandboxArea(child('sandbox'), { images: image.service });
  onArea({ name: 'sandbox', area: sandbox });
  const podStatus = (id: string) => {
    try {
      return toCriPodSandboxStatus(sandbox.service.get(id));
    } catch {
      return undefined;
    }
  };
  onArea({
    name: 'events',
    area: { handlers: eventHandlers(events, { podStatus, containerStatuses: () => [] }), close: async () => {} },
  });
}
