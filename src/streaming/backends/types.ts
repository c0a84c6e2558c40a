/**
 * What the runtime backends need from the rest of the daemon, as small injected functions: the
 * container and pod areas answer them; tests answer them with a container they started themselves.
 */

/** One container as exec and attach see it. */
export interface StreamContainer {
  id: string;
  /** Whether the container's init is running (exec/attach need that). */
  running: boolean;
  /** OCI bundle: config.json (the exec process spec is derived from it) and conmon's `ctl` fifo. */
  bundle: string;
  /** The OCI runtime binary and its state root (`runc --root`). */
  runtime: { path: string; root: string };
  /** conmon's attach socket (SOCK_SEQPACKET): `<run_root>/sockets/<id>/attach`. */
  attachSocket: string;
  /** conmon's control fifo (window size, log reopen): `<bundle>/ctl`. */
  ctlFifo: string;
  /** How the container itself was created (attach semantics depend on it). */
  tty: boolean;
  stdin: boolean;
  stdinOnce: boolean;
}

/** Finds a container by id; throws NotFound for unknown ids. */
export type LookupContainer = (id: string) => StreamContainer | Promise<StreamContainer>;

/**
 * The pinned network namespace of a pod; undefined for a host-network pod. Throws NotFound for unknown
 * pods and FailedPrecondition for pods that are not ready.
 */
export type PodNetns = (podSandboxId: string) => string | undefined | Promise<string | undefined>;
