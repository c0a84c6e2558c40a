/**
 * The closed set of domain errors. Domain modules throw these; src/cri/status.ts maps them to
 * gRPC status codes in exactly one place. Anything else that escapes is reported as Internal.
 */
export type ErrorCode =
  | 'NotFound'
  | 'AlreadyExists'
  | 'InvalidArgument'
  | 'FailedPrecondition'
  | 'Unavailable'
  | 'Unauthenticated'
  | 'PermissionDenied'
  | 'DeadlineExceeded'
  | 'ResourceExhausted'
  | 'Canceled'
  | 'Unimplemented'
  | 'Internal';

export class CorralError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = `CorralError(${code})`;
  }
}

export const notFound = (msg: string, cause?: unknown) => new CorralError('NotFound', msg, { cause });
export const alreadyExists = (msg: string, cause?: unknown) => new CorralError('AlreadyExists', msg, { cause });
export const invalidArgument = (msg: string, cause?: unknown) => new CorralError('InvalidArgument', msg, { cause });
export const failedPrecondition = (msg: string, cause?: unknown) => new CorralError('FailedPrecondition', msg, { cause });
export const unavailable = (msg: string, cause?: unknown) => new CorralError('Unavailable', msg, { cause });
export const unauthenticated = (msg: string, cause?: unknown) => new CorralError('Unauthenticated', msg, { cause });
export const permissionDenied = (msg: string, cause?: unknown) => new CorralError('PermissionDenied', msg, { cause });
export const deadlineExceeded = (msg: string, cause?: unknown) => new CorralError('DeadlineExceeded', msg, { cause });
export const resourceExhausted = (msg: string, cause?: unknown) => new CorralError('ResourceExhausted', msg, { cause });
export const canceled = (msg: string, cause?: unknown) => new CorralError('Canceled', msg, { cause });
export const unimplemented = (msg: string) => new CorralError('Unimplemented', msg);
export const internal = (msg: string, cause?: unknown) => new CorralError('Internal', msg, { cause });

export function isCorralError(e: unknown, code?: ErrorCode): e is CorralError {
  return e instanceof CorralError && (code === undefined || e.code === code);
}

/** Message of any thrown value, without stack. */
export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
