import { createImageArea } from '../cri/image';
import { createSandboxArea } from '../sandbox/index';
import type { Area, AreaDeps } from './area';

/**
 * The functional areas the daemon composes, in start order. Each factory recovers its state before
 * returning; the server answers UNAVAILABLE until all have.
 */
export const AREA_FACTORIES: { name: string; create: (deps: AreaDeps) => Promise<Area & { service?: unknown }> }[] = [
  { name: 'image', create: createImageArea },
  { name: 'sandbox', create: createSandboxArea },
];
