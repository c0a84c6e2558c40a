import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { failedPrecondition } from '../core/errors';
import type { ImageService } from '../image/service';
import type { Logger } from '../log/logger';
import { run } from '../sys/exec';
import { unmountAll } from '../sys/mount';

/** Where a pod's infra rootfs from a pause image lives, under the sandbox dir. */
export interface PauseRootfsPaths {
  rootfs: string;
  upper: string;
  work: string;
}

export function pauseRootfsPaths(sandboxDir: string): PauseRootfsPaths {
  return { rootfs: path.join(sandboxDir, 'pause', 'rootfs'), upper: path.join(sandboxDir, 'pause', 'upper'), work: path.join(sandboxDir, 'pause', 'work') };
}

const holder = (sandboxId: string) => `sandbox:${sandboxId}`;

/**
 * The configured pause image (runtime.pause_image) as an infra rootfs: pulled once when missing, leased by
 * each sandbox so image GC never removes it while a pod uses it, mounted as an overlay with a small
 * writable upper (runc needs to create mount points; the spec still makes the root read-only).
 */
export class PauseImage {
  constructor(private readonly images: ImageService, private readonly log: Logger) {}

  /** Mounts the rootfs for a sandbox and returns the infra command from the image config. */
  async mount(ref: string, sandboxId: string, p: PauseRootfsPaths, signal?: AbortSignal): Promise<{ args: string[] }> {
    let image = this.images.resolveLocal(ref);
    if (!image) {
      this.log.info('pulling the pause image', { image: ref });
      image = (await this.images.pull(ref, undefined, signal)).image;
    }
    const config = await this.images.imageConfig(image.id);
    const args = [...(config.config?.Entrypoint ?? []), ...(config.config?.Cmd ?? [])];
    if (args.length === 0) throw failedPrecondition(`pause image ${ref} has no Entrypoint or Cmd`);
    const lower = await this.images.acquire(image.id, holder(sandboxId));
    try {
      await Promise.all([fs.mkdir(p.rootfs, { recursive: true }), fs.mkdir(p.upper, { recursive: true }), fs.mkdir(p.work, { recursive: true })]);
      await run('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower.join(':')},upperdir=${p.upper},workdir=${p.work}`, p.rootfs], { timeoutMs: 30_000 });
    } catch (e) {
      await this.images.release(holder(sandboxId));
      throw e;
    }
    return { args };
  }

  /** Unmounts and releases the lease. Idempotent. */
  async unmount(sandboxId: string, p: PauseRootfsPaths): Promise<void> {
    await unmountAll([p.rootfs]);
    await this.images.release(holder(sandboxId));
  }
}
