import * as path from 'node:path';
import { loadPackageDefinition, type GrpcObject, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';

/** Location of the CRI proto, relative to the compiled file (dist/src/cri → repo root). */
export const PROTO_PATH = path.join(__dirname, '..', '..', '..', 'cri-api', 'api.proto');

/**
 * Decoding options shared by server and test clients: snake_case field names as in the proto, int64 as
 * decimal strings (never a JS number), enums as their names, defaults filled in.
 */
export const LOADER_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true } as const;

let cached: { def: PackageDefinition; pkg: GrpcObject } | undefined;

export function loadCri(): { def: PackageDefinition; pkg: GrpcObject } {
  if (!cached) {
    const def = loadSync(PROTO_PATH, LOADER_OPTIONS);
    cached = { def, pkg: loadPackageDefinition(def) };
  }
  return cached;
}

export type CriServiceName = 'RuntimeService' | 'ImageService';

export function serviceDefinition(name: CriServiceName): ServiceDefinition {
  return loadCri().def[`runtime.v1.${name}`] as unknown as ServiceDefinition;
}
