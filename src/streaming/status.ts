/**
 * Exit reporting on the exec/attach error stream. v4 (and the WebSocket v4/v5 protocols) carry a
 * metav1.Status as JSON; older protocols carry only the failure message text. Field order follows
 * Go's encoding of metav1.Status, which clients do not depend on but humans compare.
 */
export interface K8sStatus {
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: { causes: { reason?: string; message: string }[] };
  code?: number;
}

export const successStatus = (): K8sStatus => ({ metadata: {}, status: 'Success' });

export function exitCodeStatus(exitCode: number): K8sStatus {
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: exit status ${exitCode}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
  };
}

export function internalErrorStatus(message: string): K8sStatus {
  return {
    metadata: {},
    status: 'Failure',
    message: `Internal error occurred: ${message}`,
    reason: 'InternalError',
    details: { causes: [{ message }] },
    code: 500,
  };
}

/** Bytes to write on the error stream for a protocol generation, or undefined for "write nothing". */
export function encodeStatus(status: K8sStatus, jsonStatus: boolean): Buffer | undefined {
  if (jsonStatus) return Buffer.from(JSON.stringify(status));
  if (status.status === 'Success') return undefined;
  return Buffer.from(status.message ?? 'error');
}
