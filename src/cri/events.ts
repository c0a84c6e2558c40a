import type { EventBus } from '../events/bus';
import type { ContainerEventResponse } from '../../cri-api/generated/runtime/v1/ContainerEventResponse';
import type { PodSandboxStatus } from '../../cri-api/generated/runtime/v1/PodSandboxStatus';
import type { ContainerStatus } from '../../cri-api/generated/runtime/v1/ContainerStatus';
import type { HandlerSet, StreamHandler } from './types';

/** Current CRI statuses of a pod and its containers, looked up when an event is sent. */
export interface EventStatusSource {
  podStatus(podSandboxId: string): PodSandboxStatus | undefined;
  containerStatuses(podSandboxId: string): ContainerStatus[];
}

/**
 * GetContainerEvents: streams lifecycle events as they happen, each with the pod's status and its
 * containers' statuses at send time (what kubelet's evented PLEG reads). Waits for the client when
 * its stream is full; the bus drops a subscriber that falls too far behind.
 */
export function eventHandlers(bus: EventBus, statuses: EventStatusSource): HandlerSet {
  const GetContainerEvents: StreamHandler<object, ContainerEventResponse> = async (_req, ctx, out) => {
    const events = bus.subscribe(ctx.signal);
    out.sendHeaders?.();
    for await (const ev of events) {
      const msg: ContainerEventResponse = {
        container_id: ev.containerId,
        container_event_type: ev.type,
        created_at: ev.createdAtNs.toString(),
        pod_sandbox_status: statuses.podStatus(ev.podSandboxId) ?? null,
        containers_statuses: statuses.containerStatuses(ev.podSandboxId),
      };
      if (!out.write(msg)) await out.waitDrain();
    }
  };
  return { stream: { GetContainerEvents } };
}
