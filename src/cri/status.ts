import { status as Status, Metadata, type ServiceError } from '@grpc/grpc-js';
import { CorralError, type ErrorCode } from '../core/errors';

const CODES: Record<ErrorCode, Status> = {
  NotFound: Status.NOT_FOUND,
  AlreadyExists: Status.ALREADY_EXISTS,
  InvalidArgument: Status.INVALID_ARGUMENT,
  FailedPrecondition: Status.FAILED_PRECONDITION,
  Unavailable: Status.UNAVAILABLE,
  Unauthenticated: Status.UNAUTHENTICATED,
  PermissionDenied: Status.PERMISSION_DENIED,
  DeadlineExceeded: Status.DEADLINE_EXCEEDED,
  ResourceExhausted: Status.RESOURCE_EXHAUSTED,
  Canceled: Status.CANCELLED,
  Unimplemented: Status.UNIMPLEMENTED,
  Internal: Status.INTERNAL,
};

/** The one mapping from domain errors to gRPC status. Anything not a CorralError is Internal. */
export function toGrpcError(e: unknown): Partial<ServiceError> & { code: Status; details: string } {
  if (e instanceof CorralError) {
    return { code: CODES[e.code], details: e.message, metadata: new Metadata() };
  }
  const msg = e instanceof Error ? e.message : String(e);
  return { code: Status.INTERNAL, details: `internal error: ${msg}`, metadata: new Metadata() };
}

export function grpcCodeName(code: Status): string {
  return Status[code] ?? String(code);
}
