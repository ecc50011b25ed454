// Aggregates worker metric snapshots (sent over IPC) with the supervisor's
// own metrics. Counters never go backwards: when a worker exits, its last
// snapshot (counters and histograms; gauges dropped) stays in every later
// aggregate.
//
// Three rules keep that true under concurrency:
// - render() takes every part it sums in one synchronous step, and every
//   change to those parts is one synchronous step too, so a render sees a
//   retiring worker either as live, as exited or as folded, never as none;
// - folds (merging exited snapshots into one) are serialised, so two
//   workers exiting together cannot overwrite each other;
// - an exited worker's snapshot is kept apart for LATE_MS before it is
//   folded: IPC messages can be delivered after the child's 'exit' event,
//   and a late (final) snapshot replaces the earlier one instead of coming
//   back as a live worker that is never retired again.
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { SupervisorMetrics } from './metrics.js';

type Snapshot = MetricObjectWithValues<MetricValue<string>>[];

/** How long an exited worker's snapshot may still be replaced by a late one. */
export const LATE_MS = 60_000;

function keepCounts(s: Snapshot): Snapshot {
  return s.filter((m) => (m.type as unknown as string) !== 'gauge');
}

function aggregate(parts: Snapshot[]): ReturnType<typeof AggregatorRegistry.aggregate> {
  return AggregatorRegistry.aggregate(parts);
}

export class MetricsAggregator {
  readonly #live = new Map<number, Snapshot>();
  /** Exited workers' last counts, still replaceable by a late snapshot. */
  readonly #exited = new Map<number, { snapshot: Snapshot; at: number }>();
  /** Exited workers' counts folded into one snapshot. */
  #folded: Snapshot = [];
  /** Pids folded recently: anything still arriving from them is ignored. */
  readonly #foldedAt = new Map<number, number>();
  #folding: Promise<void> = Promise.resolve();
  /** Counts handed over by a predecessor supervisor (replaced, never added twice). */
  #baseline: Snapshot = [];

  constructor(
    private readonly own: SupervisorMetrics,
    private readonly now: () => number = Date.now,
  ) {}

  /** Latest snapshot from a worker (keyed by pid). */
  update(pid: number, metrics: unknown[]): void {
    const exited = this.#exited.get(pid);
    if (exited) {
      // Delivered after the exit: the worker's final counts.
      exited.snapshot = keepCounts(metrics as Snapshot);
      return;
    }
    if (this.#foldedAt.has(pid)) return;
    this.#live.set(pid, metrics as Snapshot);
  }

  /** A worker exited: keep what it counted, forget its gauges. Never rejects. */
  retire(pid: number): Promise<void> {
    const last = this.#live.get(pid);
    this.#live.delete(pid);
    if (last && !this.#exited.has(pid)) this.#exited.set(pid, { snapshot: keepCounts(last), at: this.now() });
    this.#folding = this.#folding.then(() => this.#fold()).catch(() => undefined);
    return this.#folding;
  }

  async #fold(): Promise<void> {
    const now = this.now();
    for (const [pid, at] of this.#foldedAt) if (now - at > LATE_MS) this.#foldedAt.delete(pid);
    const due = [...this.#exited].filter(([, e]) => now - e.at >= LATE_MS);
    if (due.length === 0) return;
    const merged = (await aggregate([this.#folded, ...due.map(([, e]) => e.snapshot)]).getMetricsAsJSON()) as Snapshot;
    this.#folded = merged;
    for (const [pid] of due) {
      this.#exited.delete(pid);
      this.#foldedAt.set(pid, now);
    }
  }

  /** The predecessor's counts at the handover; a later call replaces them (they only grow). */
  setBaseline(metrics: unknown[]): void {
    this.#baseline = keepCounts(metrics as Snapshot);
  }

  async #parts(): Promise<Snapshot[]> {
    const own = (await this.own.registry.getMetricsAsJSON()) as Snapshot;
    return [own, this.#baseline, this.#folded, ...[...this.#exited.values()].map((e) => e.snapshot), ...this.#live.values()];
  }

  async render(): Promise<{ contentType: string; body: string }> {
    const reg = aggregate(await this.#parts());
    return { contentType: reg.contentType, body: await reg.metrics() };
  }

  /** Every count so far (no gauges), for a successor supervisor. */
  async counts(): Promise<unknown[]> {
    return keepCounts((await aggregate(await this.#parts()).getMetricsAsJSON()));
  }
}
