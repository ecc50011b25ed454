// A worker's data-plane metrics, without prom-client. Workers only count and
// send snapshots over IPC; the supervisor aggregates them with prom-client
// (AggregatorRegistry.aggregate) and renders the text format. So a worker
// needs no registry, no text rendering and no label hashing per update:
// prom-client (with @opentelemetry/api, tdigest and bintrees, ~90 modules)
// cost every worker ~4 MB of RSS just by being loaded (bench/RESULTS.md).
//
// A child (one label set) is a plain number: callers look it up once and
// keep it, so the per-request path is an addition. Snapshots have the shape
// of prom-client's getMetricsAsJSON() (test/worker/metrics.test.ts checks
// that aggregating one renders exactly as prom-client's own metric would).

/** One metric in a snapshot, as prom-client's getMetricsAsJSON() gives it. */
export interface MetricSnapshot {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram';
  readonly aggregator: 'sum';
  readonly values: MetricSample[];
}

export interface MetricSample {
  readonly labels: Record<string, string | number>;
  readonly value: number;
  /** Histograms: which series (`_bucket`, `_sum`, `_count`). */
  readonly metricName?: string;
  readonly exemplar?: null;
}

interface SnapshotSource {
  snapshot(): MetricSnapshot;
}

/**
 * The child of `children` for these label values, made by `make` from the
 * label set the first time (look it up once and keep it: this builds a key).
 */
function childFor<C>(children: Map<string, C>, metric: string, labelNames: readonly string[], values: readonly string[], make: (labels: Record<string, string>) => C): C {
  const key = values.join('\0');
  let c = children.get(key);
  if (!c) {
    if (values.length !== labelNames.length) throw new Error(`${metric}: ${labelNames.length} label values expected, got ${values.length}`);
    const labels: Record<string, string> = {};
    labelNames.forEach((n, i) => (labels[n] = values[i]!));
    c = make(labels);
    children.set(key, c);
  }
  return c;
}

/** One label set of a counter or gauge. */
export class Tally {
  value = 0;
  constructor(readonly labels: Readonly<Record<string, string>>) {}

  inc(n = 1): void {
    this.value += n;
  }

  /** Gauges only. */
  dec(n = 1): void {
    this.value -= n;
  }
}

/** A counter or a gauge: children are Tallies (look one up once, keep it). */
export class SimpleMetric<L extends string> implements SnapshotSource {
  readonly #children = new Map<string, Tally>();

  constructor(
    readonly type: 'counter' | 'gauge',
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
  ) {}

  labels(...values: string[]): Tally {
    return childFor(this.#children, this.name, this.labelNames, values, (labels) => new Tally(labels));
  }

  snapshot(): MetricSnapshot {
    const values: MetricSample[] = [];
    for (const c of this.#children.values()) values.push({ value: c.value, labels: { ...c.labels } });
    return { name: this.name, help: this.help, type: this.type, values, aggregator: 'sum' };
  }
}

/** One label set of a FastHistogram. */
export class HistogramChild {
  /** Observations per bucket (not cumulative); the last slot is above every bound. */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Readonly<Record<string, string>>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

/** A histogram whose observe() is an array increment; read out as prom-client's Histogram is. */
export class FastHistogram<L extends string> implements SnapshotSource {
  readonly type = 'histogram' as const;
  readonly #children = new Map<string, HistogramChild>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
    readonly buckets: readonly number[],
  ) {}

  /** The child for these label values (look it up once and keep it: this call builds a key). */
  labels(...values: string[]): HistogramChild {
    return childFor(this.#children, this.name, this.labelNames, values, (labels) => new HistogramChild(labels, this.buckets));
  }

  snapshot(): MetricSnapshot {
    const values: MetricSample[] = [];
    const bucket = `${this.name}_bucket`;
    for (const c of this.#children.values()) {
      let acc = 0;
      this.buckets.forEach((le, i) => {
        acc += c.counts[i]!;
        values.push({ labels: { le, ...c.labels }, value: acc, metricName: bucket, exemplar: null });
      });
      values.push({ labels: { le: '+Inf', ...c.labels }, value: c.count, metricName: bucket, exemplar: null });
      values.push({ labels: { ...c.labels }, value: c.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...c.labels }, value: c.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: 'sum' };
  }

  reset(): void {
    this.#children.clear();
  }
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class WorkerMetrics {
  readonly #all: SnapshotSource[] = [];
  readonly #beforeSnapshot: (() => void)[] = [];

  #counter<L extends string>(name: string, help: string, labelNames: readonly L[]): SimpleMetric<L> {
    const m = new SimpleMetric('counter', name, help, labelNames);
    this.#all.push(m);
    return m;
  }

  #gauge<L extends string>(name: string, help: string, labelNames: readonly L[]): SimpleMetric<L> {
    const m = new SimpleMetric('gauge', name, help, labelNames);
    this.#all.push(m);
    return m;
  }

  #histogram<L extends string>(name: string, help: string, labelNames: readonly L[], buckets: readonly number[]): FastHistogram<L> {
    const m = new FastHistogram(name, help, labelNames, buckets);
    this.#all.push(m);
    return m;
  }

  readonly httpRequests = this.#counter(
    'mosn_http_requests_total',
    'HTTP requests completed, by listener, virtual host, route and status class.',
    ['listener', 'vhost', 'route', 'status_class'] as const,
  );
  readonly httpDuration = this.#histogram('mosn_http_request_duration_seconds', 'Time from request start to response end, by listener.', ['listener'] as const, LATENCY_BUCKETS);
  readonly upstreamConnectErrors = this.#counter('mosn_upstream_connect_errors_total', 'Upstream connection failures (refused, reset, timeout), by cluster.', ['cluster'] as const);
  readonly upstreamErrors = this.#counter('mosn_upstream_errors_total', 'Upstream failures by cluster and stable error code.', ['cluster', 'code'] as const);
  readonly connectionsActive = this.#gauge('mosn_downstream_connections_active', 'Open downstream connections, by listener.', ['listener'] as const);
  readonly connectionsTotal = this.#counter('mosn_downstream_connections_total', 'Downstream connections accepted, by listener.', ['listener'] as const);
  readonly bytesIn = this.#counter('mosn_downstream_bytes_received_total', 'Bytes received from downstream clients, by listener.', ['listener'] as const);
  readonly bytesOut = this.#counter('mosn_downstream_bytes_sent_total', 'Bytes sent to downstream clients, by listener.', ['listener'] as const);
  readonly tcpSessions = this.#counter(
    'mosn_tcp_sessions_total',
    'Completed L4 sessions (TCP proxy and HTTP Upgrade tunnels), by listener and outcome.',
    ['listener', 'outcome'] as const,
  );
  readonly connectionsDrained = this.#counter(
    'mosn_connections_drained_total',
    'Connections that finished in a leaving (old-generation) worker instead of moving, by kind.',
    ['kind'] as const,
  );
  readonly connectionsForceClosed = this.#counter('mosn_connections_force_closed_total', 'Connections closed by a leaving worker at drain_timeout, by kind.', ['kind'] as const);
  readonly connectionsImported = this.#counter('mosn_connections_imported_total', 'Connections a worker took over from an older generation, by kind.', ['kind'] as const);
  readonly tcpDuration = this.#histogram('mosn_tcp_session_duration_seconds', 'Duration of L4 sessions, by listener.', ['listener'] as const, [0.01, 0.1, 1, 10, 60, 600, 3600]);

  /** Runs `fn` before every snapshot (to bring counts kept elsewhere up to date). */
  onCollect(fn: () => void): void {
    this.#beforeSnapshot.push(fn);
  }

  /** Every metric, in the shape of prom-client's getMetricsAsJSON() (what workers send over IPC). */
  snapshot(): MetricSnapshot[] {
    for (const fn of this.#beforeSnapshot) fn();
    return this.#all.map((m) => m.snapshot());
  }
}
