import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Container states corral_containers always reports (0 when none), so the series exist from the start. */
export const CONTAINER_STATES = ['created', 'running', 'exited', 'unknown'] as const;
/** Pod states corral_pods always reports. */
export const POD_STATES = ['ready', 'notready'] as const;

export type StateCounts = Record<string, number>;

/** Duration buckets for CNI plugin calls and runc/conmon invocations (seconds). */
const OPERATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * The runtime's Prometheus metrics, created once per daemon on its registry and handed to the areas
 * (containers, sandboxes, network, runtime driver, streaming). No globals: a second daemon or a unit test
 * gets its own set on its own registry.
 */
export interface RuntimeMetrics {
  containersCreated: Counter;
  containersStarted: Counter;
  containersFailed: Counter<'reason'>;
  containerOomKills: Counter;
  cniOperationDuration: Histogram<'operation'>;
  cniOperationFailures: Counter<'operation'>;
  ociOperationDuration: Histogram<'operation' | 'binary'>;
  ociOperationFailures: Counter<'operation' | 'binary'>;
  streamingSessions: Gauge<'kind'>;
  /** Source of corral_containers{state}, called at scrape time (e.g. counts from the container store). */
  setContainerStates(source: () => StateCounts): void;
  /** Source of corral_pods{state}, called at scrape time. */
  setPodStates(source: () => StateCounts): void;
  /** Runs a CNI operation (ADD, DEL, CHECK, ...), recording its duration and, when it throws, a failure. */
  timeCni<T>(operation: string, fn: () => Promise<T>): Promise<T>;
  /** Runs an OCI runtime/conmon invocation (binary "runc", "conmon"; operation "create", "start", ...). */
  timeOci<T>(operation: string, binary: string, fn: () => Promise<T>): Promise<T>;
  /** Counts a streaming session (exec, attach, portforward) as open; call the returned function once it ends (idempotent). */
  openStreamingSession(kind: string): () => void;
}

/** Registers the runtime metrics on `registry` (or on none, for tests that only need the objects). */
export function createRuntimeMetrics(registry?: Registry): RuntimeMetrics {
  const registers = registry ? [registry] : [];
  let containerStates: (() => StateCounts) | undefined;
  let podStates: (() => StateCounts) | undefined;

  const containersCreated = new Counter({ name: 'corral_containers_created_total', help: 'Containers created (CreateContainer succeeded).', registers });
  const containersStarted = new Counter({ name: 'corral_containers_started_total', help: 'Containers started (StartContainer succeeded).', registers });
  const containersFailed = new Counter({
    name: 'corral_containers_failed_total',
    help: 'Container creations or starts that failed, by reason.',
    labelNames: ['reason'] as const,
    registers,
  });
  const containerOomKills = new Counter({ name: 'corral_container_oom_kills_total', help: 'Containers whose exit was caused by the OOM killer.', registers });
  new Gauge({
    name: 'corral_containers',
    help: 'Containers known to corral, by state.',
    labelNames: ['state'] as const,
    registers,
    collect() {
      fillStates(this, CONTAINER_STATES, containerStates);
    },
  });
  new Gauge({
    name: 'corral_pods',
    help: 'Pod sandboxes known to corral, by state.',
    labelNames: ['state'] as const,
    registers,
    collect() {
      fillStates(this, POD_STATES, podStates);
    },
  });
  const cniOperationDuration = new Histogram({
    name: 'corral_cni_operation_duration_seconds',
    help: 'Duration of CNI plugin operations (ADD, DEL, CHECK) in seconds.',
    labelNames: ['operation'] as const,
    buckets: OPERATION_BUCKETS,
    registers,
  });
  const cniOperationFailures = new Counter({
    name: 'corral_cni_operation_failures_total',
    help: 'CNI plugin operations that failed.',
    labelNames: ['operation'] as const,
    registers,
  });
  const ociOperationDuration = new Histogram({
    name: 'corral_oci_runtime_operation_duration_seconds',
    help: 'Duration of OCI runtime and conmon invocations in seconds, by operation and binary.',
    labelNames: ['operation', 'binary'] as const,
    buckets: OPERATION_BUCKETS,
    registers,
  });
  const ociOperationFailures = new Counter({
    name: 'corral_oci_runtime_operation_failures_total',
    help: 'OCI runtime and conmon invocations that failed, by operation and binary.',
    labelNames: ['operation', 'binary'] as const,
    registers,
  });
  const streamingSessions = new Gauge({
    name: 'corral_streaming_sessions',
    help: 'Streaming sessions (exec, attach, portforward) currently open.',
    labelNames: ['kind'] as const,
    registers,
  });

  return {
    containersCreated,
    containersStarted,
    containersFailed,
    containerOomKills,
    cniOperationDuration,
    cniOperationFailures,
    ociOperationDuration,
    ociOperationFailures,
    streamingSessions,
    setContainerStates: (s) => (containerStates = s),
    setPodStates: (s) => (podStates = s),
    timeCni: (operation, fn) => timed(fn, (sec, ok) => {
      cniOperationDuration.observe({ operation }, sec);
      if (!ok) cniOperationFailures.inc({ operation });
    }),
    timeOci: (operation, binary, fn) => timed(fn, (sec, ok) => {
      ociOperationDuration.observe({ operation, binary }, sec);
      if (!ok) ociOperationFailures.inc({ operation, binary });
    }),
    openStreamingSession: (kind) => {
      streamingSessions.inc({ kind });
      let open = true;
      return () => {
        if (!open) return;
        open = false;
        streamingSessions.dec({ kind });
      };
    },
  };
}

async function timed<T>(fn: () => Promise<T>, record: (seconds: number, ok: boolean) => void): Promise<T> {
  const start = process.hrtime.bigint();
  const seconds = () => Number(process.hrtime.bigint() - start) / 1e9;
  let result: T;
  try {
    result = await fn();
  } catch (e) {
    record(seconds(), false);
    throw e;
  }
  record(seconds(), true);
  return result;
}

function fillStates(g: Gauge<'state'>, known: readonly string[], source: (() => StateCounts) | undefined): void {
  g.reset();
  let counts: StateCounts = {};
  try {
    counts = source?.() ?? {};
  } catch {
    // A failing source must not fail the whole scrape; its states read 0.
  }
  for (const s of known) g.set({ state: s }, counts[s] ?? 0);
  for (const [s, n] of Object.entries(counts)) if (!known.includes(s)) g.set({ state: s }, n);
}
