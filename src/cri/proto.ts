import * as path from 'node:path';
import { loadPackageDefinition, type GrpcObject, type ServiceDefinition } from '@grpc/grpc-js';
import * as protobuf from 'protobufjs/light';
import { CRI_DESCRIPTOR } from '../../cri-api/generated/descriptor';

/** The CRI proto (tests and tools parse it; the daemon uses the descriptor generated from it at build). */
export const PROTO_PATH = path.join(__dirname, '..', '..', '..', 'cri-api', 'api.proto');

/**
 * Decoding options shared by server and test clients: snake_case field names as in the proto, int64 as
 * decimal strings (never a JS number), enums as their names, defaults filled in.
 */
export const CONVERSION_OPTIONS: protobuf.IConversionOptions = { longs: String, enums: String, defaults: true, oneofs: true };

export type CriServiceName = 'RuntimeService' | 'ImageService';
const SERVICES: CriServiceName[] = ['RuntimeService', 'ImageService'];

/** grpc-js service definitions keyed by full service name, as @grpc/proto-loader would build them. */
export type CriPackageDefinition = Record<`runtime.v1.${CriServiceName}`, ServiceDefinition>;

let cached: { def: CriPackageDefinition; pkg: GrpcObject } | undefined;

/**
 * The two CRI services for grpc-js, built straight on protobufjs reflection: each method serializes
 * with `Type.encode(Type.fromObject(o))` and deserializes with `Type.toObject(Type.decode(b), options)`,
 * the same calls @grpc/proto-loader makes, without loading it (or a .proto parser) into the daemon.
 */
export function loadCri(): { def: CriPackageDefinition; pkg: GrpcObject } {
  if (!cached) {
    const root = protobuf.Root.fromJSON(CRI_DESCRIPTOR as protobuf.INamespace);
    root.resolveAll();
    const def = {} as CriPackageDefinition;
    for (const svc of SERVICES) def[`runtime.v1.${svc}`] = serviceFrom(root.lookupService(`runtime.v1.${svc}`));
    cached = { def, pkg: loadPackageDefinition(def) };
  }
  return cached;
}

function serviceFrom(service: protobuf.Service): ServiceDefinition {
  const def: Record<string, unknown> = {};
  for (const m of service.methodsArray) {
    const req = m.resolvedRequestType!;
    const res = m.resolvedResponseType!;
    def[m.name] = {
      path: `/${service.fullName.slice(1)}/${m.name}`,
      requestStream: !!m.requestStream,
      responseStream: !!m.responseStream,
      requestSerialize: (o: object) => Buffer.from(req.encode(req.fromObject(o)).finish()),
      requestDeserialize: (b: Buffer) => req.toObject(req.decode(b), CONVERSION_OPTIONS),
      responseSerialize: (o: object) => Buffer.from(res.encode(res.fromObject(o)).finish()),
      responseDeserialize: (b: Buffer) => res.toObject(res.decode(b), CONVERSION_OPTIONS),
      originalName: m.name.charAt(0).toLowerCase() + m.name.slice(1),
    };
  }
  return def as unknown as ServiceDefinition;
}

export function serviceDefinition(name: CriServiceName): ServiceDefinition {
  return loadCri().def[`runtime.v1.${name}`];
}
