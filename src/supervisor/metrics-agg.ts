// Aggregates worker metric snapshots (sent over IPC) with the supervisor's
// own metrics. Counters never go backwards: when a worker exits, its last
// snapshot (counters and histograms; gauges dropped) is folded into a
// retired total that stays in every later aggregate.
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { SupervisorMetrics } from '../common/metrics.js';

type Snapshot = MetricObjectWithValues<MetricValue<string>>[];

export class MetricsAggregator {
  readonly #live = new Map<number, Snapshot>();
  #retired: Snapshot = [];

  constructor(private readonly own: SupervisorMetrics) {}

  /** Latest snapshot from a live worker (keyed by pid). */
  update(pid: number, metrics: unknown[]): void {
    this.#live.set(pid, metrics as Snapshot);
  }

  /** A worker exited: keep what it counted, forget its gauges. */
  async retire(pid: number): Promise<void> {
    const last = this.#live.get(pid);
    this.#live.delete(pid);
    if (!last) return;
    const keep = last.filter((m) => (m.type as unknown as string) !== 'gauge');
    const merged = AggregatorRegistry.aggregate([this.#retired, keep] as never);
    this.#retired = (await merged.getMetricsAsJSON()) as Snapshot;
  }

  async render(): Promise<{ contentType: string; body: string }> {
    const own = (await this.own.registry.getMetricsAsJSON()) as Snapshot;
    const reg = AggregatorRegistry.aggregate([own, this.#retired, ...this.#live.values()] as never);
    return { contentType: reg.contentType, body: await reg.metrics() };
  }
}
