import type { Area, AreaDeps } from '../daemon/area';
import { invalidArgument } from '../core/errors';
import { credentialsFromAuthConfig } from '../image/registry/auth';
import { ImageService, type ImageInfo } from '../image/service';
import type { Image } from '../../cri-api/generated/runtime/v1/Image';
import type { ImageFsInfoResponse } from '../../cri-api/generated/runtime/v1/ImageFsInfoResponse';
import type { ImageSpec__Output } from '../../cri-api/generated/runtime/v1/ImageSpec';
import type { ImageStatusRequest__Output } from '../../cri-api/generated/runtime/v1/ImageStatusRequest';
import type { ImageStatusResponse } from '../../cri-api/generated/runtime/v1/ImageStatusResponse';
import type { ListImagesRequest__Output } from '../../cri-api/generated/runtime/v1/ListImagesRequest';
import type { ListImagesResponse } from '../../cri-api/generated/runtime/v1/ListImagesResponse';
import type { PullImageRequest__Output } from '../../cri-api/generated/runtime/v1/PullImageRequest';
import type { PullImageResponse } from '../../cri-api/generated/runtime/v1/PullImageResponse';
import type { RemoveImageRequest__Output } from '../../cri-api/generated/runtime/v1/RemoveImageRequest';
import type { RemoveImageResponse } from '../../cri-api/generated/runtime/v1/RemoveImageResponse';
import type { StreamImagesRequest__Output } from '../../cri-api/generated/runtime/v1/StreamImagesRequest';
import type { StreamImagesResponse } from '../../cri-api/generated/runtime/v1/StreamImagesResponse';
import type { HandlerSet } from './types';

function imageRef(spec: ImageSpec__Output | null | undefined, what: string): string {
  const ref = spec?.image?.trim();
  if (!ref) throw invalidArgument(`${what}: image.image is required`);
  return ref;
}

/** CRI Image from the domain record. uid is set for a numeric user, username otherwise. */
export function toCriImage(i: ImageInfo): Image {
  const user = i.user.split(':')[0];
  const numeric = /^\d+$/.test(user);
  return {
    id: i.id,
    repo_tags: i.repoTags,
    repo_digests: i.repoDigests,
    size: String(i.size),
    uid: numeric ? { value: user } : null,
    username: numeric ? '' : user,
    spec: { image: i.id, annotations: {} },
    pinned: i.pinned,
  };
}

/** ImageService RPCs: thin conversions around the domain ImageService. */
export function imageHandlers(svc: ImageService): HandlerSet {
  return {
    unary: {
      ListImages: async (req: ListImagesRequest__Output): Promise<ListImagesResponse> => ({
        images: svc.list(req.filter?.image?.image || undefined).map(toCriImage),
      }),
      ImageStatus: async (req: ImageStatusRequest__Output): Promise<ImageStatusResponse> => {
        const found = svc.status(imageRef(req.image, 'ImageStatus'));
        // CRI: an unknown image is not an error; the response simply has no image.
        if (!found) return { image: null, info: {} };
        const info: Record<string, string> = {};
        if (req.verbose) {
          info.info = JSON.stringify({
            id: found.id,
            manifestDigest: found.manifestDigest,
            manifestMediaType: found.manifestMediaType,
            indexDigest: found.indexDigest,
            platform: found.platform,
            layers: found.layers,
            pulledAt: found.pulledAt,
            manifest: await svc.manifestJson(found.id),
            imageSpec: await svc.imageConfig(found.id),
          });
        }
        return { image: toCriImage(found), info };
      },
      PullImage: async (req: PullImageRequest__Output, ctx): Promise<PullImageResponse> => {
        const ref = imageRef(req.image, 'PullImage');
        const creds = credentialsFromAuthConfig(req.auth);
        const res = await svc.pull(ref, creds, ctx.signal);
        return { image_ref: res.image.id };
      },
      RemoveImage: async (req: RemoveImageRequest__Output): Promise<RemoveImageResponse> => {
        await svc.remove(imageRef(req.image, 'RemoveImage'));
        return {};
      },
      ImageFsInfo: async (): Promise<ImageFsInfoResponse> => {
        const u = await svc.fsInfo();
        const fsUsage = {
          timestamp: u.timestampNs.toString(),
          fs_id: { mountpoint: u.mountpoint },
          used_bytes: { value: u.usedBytes.toString() },
          inodes_used: { value: u.inodesUsed.toString() },
        };
        return { image_filesystems: [fsUsage], container_filesystems: [] };
      },
    },
    stream: {
      StreamImages: async (req: StreamImagesRequest__Output, ctx, out) => {
        const images = svc.list(req.filter?.image?.image || undefined).map(toCriImage);
        for (let i = 0; i < images.length && !ctx.signal.aborted; i += 100) {
          const msg: StreamImagesResponse = { images: images.slice(i, i + 100) };
          if (!out.write(msg)) await out.waitDrain();
        }
      },
    },
  };
}

/** The image area: opens the store (recovering from interrupted pulls) and exposes the CRI ImageService. */
export async function createImageArea(deps: AreaDeps): Promise<Area & { service: ImageService }> {
  const service = await ImageService.open({
    config: deps.config,
    log: deps.log.child({ area: 'image' }),
    metrics: deps.metrics,
  });
  // Extraction workers start with the first large layer and end after a minute idle: an idle node keeps
  // ~30 MB less (the first pull pays ~0.1 s of CPU per worker to boot them).
  return {
    service,
    handlers: imageHandlers(service),
    close: () => service.close(),
  };
}

