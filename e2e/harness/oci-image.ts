/**
 * Builds OCI images in memory (busybox-based or from arbitrary tar entries) and pushes them to a test registry
 * over the distribution HTTP API.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import type { TestRegistry } from './registry';
import { writeTar, type TarEntry } from './tar-writer';

export type { TarEntry } from './tar-writer';

export interface BuiltBlob {
  digest: string;
  size: number;
  mediaType: string;
  data: Buffer;
}

export interface BuiltImage {
  manifest: BuiltBlob;
  config: BuiltBlob;
  layers: BuiltBlob[];
  configJson: any;
  diffIds: string[];
}

export interface ImageConfigSpec {
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  WorkingDir?: string;
  User?: string;
  StopSignal?: string;
  Volumes?: Record<string, {}>;
  ExposedPorts?: Record<string, {}>;
  Labels?: Record<string, string>;
}

export type Compression = 'gzip' | 'none' | 'zstd';

export interface ImageSpec {
  layers: TarEntry[][];
  config?: ImageConfigSpec;
  compression?: Compression;
  /** GOARCH name; default: this machine's. */
  architecture?: string;
}

export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** Fixed so that the same spec always yields the same digests. */
const CREATED = '2023-11-14T22:13:20Z';

export function sha256(data: Buffer): string {
  return 'sha256:' + crypto.createHash('sha256').update(data).digest('hex');
}

export function blob(data: Buffer, mediaType: string): BuiltBlob {
  return { digest: sha256(data), size: data.length, mediaType, data };
}

/** JSON blob with stable bytes (no trailing newline, insertion-ordered keys). */
function jsonBlob(value: unknown, mediaType: string): BuiltBlob {
  return blob(Buffer.from(JSON.stringify(value), 'utf8'), mediaType);
}

export function hostArchitecture(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return map[process.arch] ?? process.arch;
}

function zstdCompress(data: Buffer): Buffer {
  const res = spawnSync('zstd', ['-q', '-c', '-3', '--no-progress'], { input: data, maxBuffer: data.length * 2 + 1024 * 1024 });
  if (res.error && (res.error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('zstd not found: install zstd (Debian package zstd)');
  if (res.error) throw res.error;
  if (res.status !== 0) throw new Error(`zstd failed: ${res.stderr.toString().trim()}`);
  return res.stdout;
}

interface Layer {
  blob: BuiltBlob;
  diffId: string;
}

function compressLayer(tar: Buffer, compression: Compression): Layer {
  const diffId = sha256(tar);
  switch (compression) {
    case 'none':
      return { blob: blob(tar, MT.ociLayer), diffId };
    case 'gzip':
      // Level 1: random benchmark layers are large and incompressible; busybox barely differs.
      return { blob: blob(zlib.gzipSync(tar, { level: 1 }), MT.ociLayerGzip), diffId };
    case 'zstd':
      return { blob: blob(zstdCompress(tar), MT.ociLayerZstd), diffId };
  }
}

function assemble(layers: Layer[], config: ImageConfigSpec | undefined, architecture: string): BuiltImage {
  const diffIds = layers.map((l) => l.diffId);
  const configJson = {
    created: CREATED,
    architecture,
    os: 'linux',
    config: { ...(config ?? {}) },
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: layers.map(() => ({ created: CREATED, created_by: 'corral e2e harness' })),
  };
  const configBlob = jsonBlob(configJson, MT.ociConfig);
  const manifest = jsonBlob(
    {
      schemaVersion: 2,
      mediaType: MT.ociManifest,
      config: descriptor(configBlob),
      layers: layers.map((l) => descriptor(l.blob)),
    },
    MT.ociManifest,
  );
  return { manifest, config: configBlob, layers: layers.map((l) => l.blob), configJson, diffIds };
}

function descriptor(b: BuiltBlob): { mediaType: string; digest: string; size: number } {
  return { mediaType: b.mediaType, digest: b.digest, size: b.size };
}

/** An OCI image (manifest v1 + config) whose layers are the given tar entry lists, in order. */
export function buildImage(spec: ImageSpec): BuiltImage {
  const compression = spec.compression ?? 'gzip';
  const layers = spec.layers.map((entries) => compressLayer(writeTar(entries), compression));
  return assemble(layers, spec.config, spec.architecture ?? hostArchitecture());
}

let busyboxCache: readonly TarEntry[] | undefined;
const busyboxLayerCache = new Map<Compression, Layer>();

function textFile(name: string, text: string, mode = 0o644): TarEntry {
  return { name, type: 'file', data: Buffer.from(text), mode };
}

/**
 * A minimal root filesystem from Debian's busybox-static: /bin/busybox, a relative symlink per applet,
 * the usual top-level dirs and passwd/group with root, nobody and app (1000:1000, also in group extra 2000).
 * No /etc/hosts, /etc/resolv.conf or /etc/hostname: the runtime provides those.
 */
export function busyboxRootfs(): TarEntry[] {
  if (!busyboxCache) busyboxCache = Object.freeze(loadBusyboxRootfs());
  return busyboxCache.map((e) => ({ ...e }));
}

function loadBusyboxRootfs(): TarEntry[] {
  const bin = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p));
  if (!bin) throw new Error('busybox not found: install Debian package busybox-static');
  const binary = fs.readFileSync(bin);
  const applets = execFileSync(bin, ['--list-full'], { encoding: 'utf8', timeout: 10_000 })
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && l !== 'bin/busybox');

  const dirs: TarEntry[] = [
    { name: 'bin/', type: 'dir' },
    { name: 'dev/', type: 'dir' },
    { name: 'etc/', type: 'dir' },
    { name: 'home/', type: 'dir' },
    { name: 'home/app/', type: 'dir', uid: 1000, gid: 1000 },
    { name: 'proc/', type: 'dir', mode: 0o555 },
    { name: 'root/', type: 'dir', mode: 0o700 },
    { name: 'sbin/', type: 'dir' },
    { name: 'sys/', type: 'dir', mode: 0o555 },
    { name: 'tmp/', type: 'dir', mode: 0o1777 },
    { name: 'usr/', type: 'dir' },
    { name: 'usr/bin/', type: 'dir' },
    { name: 'usr/sbin/', type: 'dir' },
    { name: 'var/', type: 'dir' },
  ];
  const files: TarEntry[] = [
    { name: 'bin/busybox', type: 'file', data: binary, mode: 0o755 },
    textFile(
      'etc/passwd',
      [
        'root:x:0:0:root:/root:/bin/sh',
        'app:x:1000:1000:app:/home/app:/bin/sh',
        'nobody:x:65534:65534:nobody:/nonexistent:/bin/false',
        '',
      ].join('\n'),
    ),
    textFile('etc/group', ['root:x:0:', 'app:x:1000:', 'extra:x:2000:app', 'nogroup:x:65534:', ''].join('\n')),
  ];
  const known = new Set(dirs.map((d) => d.name.replace(/\/$/, '')));
  const links: TarEntry[] = [];
  for (const applet of applets) {
    const parent = path.posix.dirname(applet);
    if (parent !== '.' && !known.has(parent)) throw new Error(`busybox applet ${applet} lives outside the rootfs dirs`);
    links.push({ name: applet, type: 'symlink', linkname: path.posix.relative(path.posix.dirname('/' + applet), '/bin/busybox') });
  }
  return [...dirs, ...files, ...links];
}

function busyboxLayer(compression: Compression): Layer {
  let layer = busyboxLayerCache.get(compression);
  if (!layer) {
    layer = compressLayer(writeTar(busyboxRootfs()), compression);
    busyboxLayerCache.set(compression, layer);
  }
  return layer;
}

/** busybox rootfs as the first layer (built once per compression and cached), then extraLayers; Cmd ["sh"]. */
export function buildBusyboxImage(
  opts: { extraLayers?: TarEntry[][]; config?: ImageConfigSpec; compression?: Compression; architecture?: string } = {},
): BuiltImage {
  const compression = opts.compression ?? 'gzip';
  const layers = [busyboxLayer(compression), ...(opts.extraLayers ?? []).map((e) => compressLayer(writeTar(e), compression))];
  const config: ImageConfigSpec = { Env: [DEFAULT_PATH], Cmd: ['sh'], ...(opts.config ?? {}) };
  return assemble(layers, config, opts.architecture ?? hostArchitecture());
}

/** An OCI image index over already-built images (push each image by digest before pushing the index). */
export function buildIndex(images: { image: BuiltImage; platform: { os: string; architecture: string; variant?: string } }[]): BuiltBlob {
  return jsonBlob(
    {
      schemaVersion: 2,
      mediaType: MT.ociIndex,
      manifests: images.map(({ image, platform }) => ({ ...descriptor(image.manifest), platform: { ...platform } })),
    },
    MT.ociIndex,
  );
}

/**
 * The same image as a Docker schema2 manifest: same layer and config bytes (so same digests), Docker media types.
 * zstd layers have no Docker media type and are refused.
 */
export function toDockerManifest(img: BuiltImage): BuiltBlob {
  const layerType = (mt: string): string => {
    if (mt === MT.ociLayerGzip) return MT.dockerLayerGzip;
    if (mt === MT.ociLayer) return MT.dockerLayer;
    throw new Error(`layer media type ${mt} has no Docker schema2 equivalent`);
  };
  return jsonBlob(
    {
      schemaVersion: 2,
      mediaType: MT.dockerManifest,
      config: { mediaType: MT.dockerConfig, digest: img.config.digest, size: img.config.size },
      layers: img.layers.map((l) => ({ mediaType: layerType(l.mediaType), digest: l.digest, size: l.size })),
    },
    MT.dockerManifest,
  );
}

/**
 * Incompressible random content for pull benchmarks: `files` files (default one per 16 MiB) under random/
 * adding up to `bytes`.
 */
export function randomLayer(bytes: number, files?: number): TarEntry[] {
  const count = Math.max(1, files ?? Math.ceil(bytes / (16 * 1024 * 1024)));
  const per = Math.floor(bytes / count);
  const entries: TarEntry[] = [{ name: 'random/', type: 'dir' }];
  for (let i = 0; i < count; i++) {
    const size = i === count - 1 ? bytes - per * (count - 1) : per;
    entries.push({ name: `random/file-${String(i).padStart(4, '0')}`, type: 'file', data: crypto.randomBytes(size) });
  }
  return entries;
}

// ---- pushing ----

function authHeaders(reg: TestRegistry): Record<string, string> {
  if (!reg.auth) return {};
  const token = Buffer.from(`${reg.auth.username}:${reg.auth.password}`).toString('base64');
  return { Authorization: `Basic ${token}` };
}

async function failure(what: string, res: Response): Promise<Error> {
  const body = (await res.text().catch(() => '')).slice(0, 500);
  return new Error(`${what}: HTTP ${res.status} ${body}`);
}

const REQUEST_TIMEOUT_MS = 120_000;

/** Uploads one blob (monolithic POST + PUT), skipping it when HEAD says the registry already has it. */
export async function pushBlob(reg: TestRegistry, repo: string, b: BuiltBlob): Promise<void> {
  const headers = authHeaders(reg);
  const head = await fetch(`${reg.url}/v2/${repo}/blobs/${b.digest}`, {
    method: 'HEAD',
    headers,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  if (head.status === 200) return;
  if (head.status !== 404) throw await failure(`HEAD blob ${b.digest} in ${repo}`, head);

  const start = await fetch(`${reg.url}/v2/${repo}/blobs/uploads/`, {
    method: 'POST',
    headers,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  if (start.status !== 202) throw await failure(`start upload to ${repo}`, start);
  await start.arrayBuffer();
  const location = start.headers.get('location');
  if (!location) throw new Error(`start upload to ${repo}: no Location header`);
  const uploadUrl = new URL(location, reg.url);
  uploadUrl.searchParams.set('digest', b.digest);

  const put = await fetch(uploadUrl, {
    method: 'PUT',
    headers: { ...headers, 'Content-Type': 'application/octet-stream' },
    body: b.data,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  if (put.status !== 201) throw await failure(`upload blob ${b.digest} to ${repo}`, put);
  await put.arrayBuffer();
}

/** PUTs a manifest or index under a tag or digest, with its own media type as Content-Type. Returns its digest. */
export async function pushManifest(reg: TestRegistry, repo: string, ref: string, manifest: BuiltBlob): Promise<string> {
  const res = await fetch(`${reg.url}/v2/${repo}/manifests/${ref}`, {
    method: 'PUT',
    headers: { ...authHeaders(reg), 'Content-Type': manifest.mediaType },
    body: manifest.data,
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  if (res.status !== 201) throw await failure(`push manifest ${repo}:${ref}`, res);
  await res.arrayBuffer();
  const digest = res.headers.get('docker-content-digest') ?? manifest.digest;
  if (digest !== manifest.digest) throw new Error(`push manifest ${repo}:${ref}: registry says ${digest}, we computed ${manifest.digest}`);
  return digest;
}

/** Pushes config and layers (in parallel, skipping ones present), then the manifest under `ref`. */
export async function pushImage(
  reg: TestRegistry,
  repo: string,
  ref: string,
  img: BuiltImage,
  opts: { mediaTypes?: 'oci' | 'docker' } = {},
): Promise<{ manifestDigest: string }> {
  const manifest = opts.mediaTypes === 'docker' ? toDockerManifest(img) : img.manifest;
  // Dedupe: the same layer may appear twice in an image.
  const unique = new Map<string, BuiltBlob>();
  for (const b of [img.config, ...img.layers]) unique.set(b.digest, b);
  await Promise.all([...unique.values()].map((b) => pushBlob(reg, repo, b)));
  const manifestDigest = await pushManifest(reg, repo, ref, manifest);
  return { manifestDigest };
}

/**
 * A pause image made from Debian's static catatonit: `/pause` running `catatonit -P`, as an operator
 * would mirror registry.k8s.io/pause. Used by the pause_image tests and the containerd benchmark.
 */
export function buildPauseImage(catatonit = '/usr/bin/catatonit'): BuiltImage {
  const data = fs.readFileSync(catatonit);
  return buildImage({
    layers: [[
      { name: 'pause', type: 'file', data, mode: 0o755 },
      ...['proc', 'dev', 'sys', 'etc'].map((d): TarEntry => ({ name: d, type: 'dir', mode: 0o755 })),
    ]],
    config: { Entrypoint: ['/pause', '-P'], User: '65535:65535' },
  });
}
