import { Counter, Histogram, type Registry } from 'prom-client';

/** Pull metrics, registered on the daemon's registry (or none in unit tests). */
export class PullMetrics {
  readonly pulls: Counter<'outcome' | 'reason'>;
  readonly bytes: Counter;
  readonly skippedBytes: Counter;
  readonly duration: Histogram<'outcome'>;

  constructor(registry?: Registry) {
    const registers = registry ? [registry] : [];
    this.pulls = new Counter({ name: 'corral_image_pulls_total', help: 'Image pulls by outcome and failure reason.', labelNames: ['outcome', 'reason'], registers });
    this.bytes = new Counter({ name: 'corral_image_pull_bytes_total', help: 'Bytes downloaded from registries.', registers });
    this.skippedBytes = new Counter({ name: 'corral_image_pull_skipped_bytes_total', help: 'Blob bytes not downloaded because they were already present.', registers });
    this.duration = new Histogram({
      name: 'corral_image_pull_duration_seconds',
      help: 'Duration of image pulls.',
      labelNames: ['outcome'],
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers,
    });
  }
}
