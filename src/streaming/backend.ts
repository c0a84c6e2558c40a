import type { Duplex, Readable, Writable } from 'node:stream';
import type { TerminalSizeQueue } from './resize';

/**
 * What the streaming server needs from the runtime. The server owns the wire protocols (SPDY,
 * WebSocket), tokens and status reporting; a backend only moves bytes to and from a process or socket.
 */

export interface ExecRequest {
  containerId: string;
  cmd: string[];
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

export interface AttachRequest {
  containerId: string;
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
}

export interface PortForwardRequest {
  podSandboxId: string;
  /** Ports named in the CRI request; WebSocket sessions forward exactly these. SPDY clients name ports per stream. */
  ports: number[];
}

export interface TerminalSize {
  width: number;
  height: number;
}

/**
 * The client's streams for one exec/attach session. Present exactly when requested (with tty, stderr
 * is never present: output goes to stdout).
 * - stdin ends when the client half-closes it (SPDY FIN, WebSocket v5 close channel) or goes away.
 * - stdout/stderr: write output; honour backpressure (pipe them). The backend may end() them; the
 *   server ends them after the backend resolves in any case, before it reports the exit status.
 * - resize: terminal size changes (tty only in practice); `latest` holds the most recent one.
 */
export interface StreamIO {
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  resize: TerminalSizeQueue;
}

export interface ExecResult {
  exitCode: number;
}

export interface StreamingBackend {
  /**
   * Runs cmd in the container and resolves with its exit code once it has exited and all of its
   * output has been written to io. Rejections are reported to the client as an internal error.
   * `signal` aborts when the client goes away or the server shuts down: kill the process then.
   */
  exec(req: ExecRequest, io: StreamIO, signal: AbortSignal): Promise<ExecResult>;
  /**
   * Connects io to the running container's stdio; resolves when the container exits or, with
   * stdin_once semantics, when the client's stdin ends. Detaching (signal aborted) must never stop the container.
   */
  attach(req: AttachRequest, io: StreamIO, signal: AbortSignal): Promise<void>;
  /**
   * Connects `stream` to localhost:port inside the pod's network namespace and copies both ways
   * (half-closes propagate) until both directions are done. Rejections are written to the client's
   * error stream. `signal` aborts when the client goes away.
   */
  portForward(target: { podSandboxId: string; port: number }, stream: Duplex, signal: AbortSignal): Promise<void>;
}
