import { randomBytes } from 'node:crypto';

/** A 64-hex-character id, the form kubelet and crictl expect for sandbox and container ids. */
export function newId(): string {
  return randomBytes(32).toString('hex');
}

/** Nanoseconds since the epoch as bigint (CRI timestamps are int64 ns and exceed 2^53). */
export function nowNs(): bigint {
  // Date.now() gives ms precision on the wall clock; hrtime supplies the sub-ms part monotonically.
  return BigInt(Date.now()) * 1_000_000n + (process.hrtime.bigint() % 1_000_000n);
}
