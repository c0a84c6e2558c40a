import type { Duplex } from 'node:stream';
import type { Logger } from '../../log/logger';
import type { AttachRequest, ExecRequest, ExecResult, StreamIO, StreamingBackend } from '../backend';
import { ContainerAttachBackend } from './attach';
import { ContainerExecBackend } from './exec';
import { PodPortForwardBackend } from './portforward';
import type { LookupContainer, PodNetns } from './types';

export { ContainerAttachBackend, resizeMessage } from './attach';
export { ContainerExecBackend, execProcessSpec } from './exec';
export { PodPortForwardBackend } from './portforward';
export { defaultHelperPath, helperAvailable } from './helper';
export type { LookupContainer, PodNetns, StreamContainer } from './types';

export interface RuntimeBackendOptions {
  lookupContainer: LookupContainer;
  podNetns: PodNetns;
  /** Short directory for exec console sockets. */
  socketDir: string;
  log: Logger;
  helperPath?: string;
}

/** The StreamingBackend of the daemon: exec, attach and port-forward against real containers and pods. */
export class RuntimeStreamingBackend implements StreamingBackend {
  readonly execBackend: ContainerExecBackend;
  readonly attachBackend: ContainerAttachBackend;
  readonly portForwardBackend: PodPortForwardBackend;

  constructor(o: RuntimeBackendOptions) {
    this.execBackend = new ContainerExecBackend(o);
    this.attachBackend = new ContainerAttachBackend(o);
    this.portForwardBackend = new PodPortForwardBackend(o);
  }

  exec(req: ExecRequest, io: StreamIO, signal: AbortSignal): Promise<ExecResult> {
    return this.execBackend.exec(req, io, signal);
  }

  attach(req: AttachRequest, io: StreamIO, signal: AbortSignal): Promise<void> {
    return this.attachBackend.attach(req, io, signal);
  }

  portForward(target: { podSandboxId: string; port: number }, stream: Duplex, signal: AbortSignal): Promise<void> {
    return this.portForwardBackend.portForward(target, stream, signal);
  }
}
