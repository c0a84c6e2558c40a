/** Shared statistics for the benchmarks: percentiles, summaries, ratios and A/B alternation. */

/** Nearest-rank percentile (p in 0..100) of a non-empty sample. */
export function pct(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export interface Summary {
  n: number;
  p50: number;
  p95: number;
  min: number;
  max: number;
}

export function summarize(xs: number[]): Summary {
  return { n: xs.length, p50: round(pct(xs, 50)), p95: round(pct(xs, 95)), min: round(Math.min(...xs)), max: round(Math.max(...xs)) };
}

export function round(x: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** a/b, or NaN when either side is missing. */
export function ratio(a: number | undefined, b: number | undefined): number {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return NaN;
  return a / b;
}

/** Wall time of fn in milliseconds. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

/**
 * Runs `rounds` rounds over the named arms, alternating their order every round (A B, B A, A B...) so
 * that machine drift and cache warmth fall on both sides alike. Each call returns one or more samples
 * (ms). Arms answering `undefined` (not supported) are dropped for the rest of the run.
 */
export async function alternate(
  rounds: number,
  arms: Record<string, (round: number) => Promise<number | number[] | undefined>>,
): Promise<Record<string, number[]>> {
  const names = Object.keys(arms);
  const out: Record<string, number[]> = Object.fromEntries(names.map((n) => [n, []]));
  const dropped = new Set<string>();
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? names : [...names].reverse();
    for (const n of order) {
      if (dropped.has(n)) continue;
      const v = await arms[n](r);
      if (v === undefined) {
        dropped.add(n);
        continue;
      }
      out[n].push(...(Array.isArray(v) ? v : [v]));
    }
  }
  for (const n of dropped) if (out[n].length === 0) delete out[n];
  return out;
}

/** Runs fn for each item with at most `limit` in flight; results in input order. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** BENCH_QUICK=1 shrinks counts for a smoke run. */
export const QUICK = process.env.BENCH_QUICK === '1';
export const n = (full: number, quick: number) => (QUICK ? quick : full);
