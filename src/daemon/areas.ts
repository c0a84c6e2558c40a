import { createImageArea } from '../cri/image';
import { createSandboxArea } from '../sandbox/index';
import type { Area, AreaDeps } from './area';

export interface NamedArea {
  name: string;
  area: Area & { service?: unknown };
}

/**
 * Builds the functional areas in dependency order, handing each the services it needs from the ones
 * before it: images → sandboxes (pause image) → containers. Each factory recovers its state before
 * returning. `onArea` sees each area as soon as it exists, so the caller can close what was built if
 * a later one fails.
 */
export async function composeAreas(deps: AreaDeps, onArea: (a: NamedArea) => void): Promise<void> {
  const child = (name: string): AreaDeps => ({ ...deps, log: deps.log.child({ area: name }) });
  const image = await createImageArea(child('image'));
  onArea({ name: 'image', area: image });
  const sandbox = await createSandboxArea(child('sandbox'), { images: image.service });
  onArea({ name: 'sandbox', area: sandbox });
}
