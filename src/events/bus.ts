import { resourceExhausted } from '../core/errors';

export type RuntimeEventType = 'CONTAINER_CREATED_EVENT' | 'CONTAINER_STARTED_EVENT' | 'CONTAINER_STOPPED_EVENT' | 'CONTAINER_DELETED_EVENT';

/** A lifecycle event of a container or a pod sandbox (for a sandbox, containerId is the sandbox id). */
export interface RuntimeEvent {
  type: RuntimeEventType;
  containerId: string;
  podSandboxId: string;
  createdAtNs: bigint;
}

interface Subscriber {
  queue: RuntimeEvent[];
  wake?: () => void;
  dropped: boolean;
}

/**
 * Fan-out of lifecycle events to GetContainerEvents subscribers. publish() never waits: each subscriber
 * has its own bounded queue, and one that falls more than `limit` events behind is dropped (its stream
 * ends with ResourceExhausted, and kubelet re-subscribes and relists) instead of slowing the runtime.
 */
export class EventBus {
  private readonly subs = new Set<Subscriber>();

  constructor(private readonly limit = 1000) {}

  publish(ev: RuntimeEvent): void {
    for (const s of this.subs) {
      if (s.queue.length >= this.limit) {
        s.dropped = true;
        this.subs.delete(s);
      } else {
        s.queue.push(ev);
      }
      s.wake?.();
    }
  }

  get subscribers(): number {
    return this.subs.size;
  }

  /**
   * Events published from now on (the subscription is registered by this call, before any await), until
   * signal aborts. The iterator throws ResourceExhausted when the consumer fell too far behind.
   */
  subscribe(signal: AbortSignal): AsyncGenerator<RuntimeEvent> {
    const s: Subscriber = { queue: [], dropped: false };
    this.subs.add(s);
    return this.drain(s, signal);
  }

  private async *drain(s: Subscriber, signal: AbortSignal): AsyncGenerator<RuntimeEvent> {
    const onAbort = () => s.wake?.();
    signal.addEventListener('abort', onAbort);
    try {
      for (;;) {
        while (s.queue.length > 0) {
          if (signal.aborted) return;
          yield s.queue.shift()!;
        }
        if (s.dropped) throw resourceExhausted(`event subscriber fell more than ${this.limit} events behind and was dropped; re-subscribe`);
        if (signal.aborted) return;
        await new Promise<void>((resolve) => (s.wake = resolve));
        s.wake = undefined;
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
      this.subs.delete(s);
    }
  }
}
