// Metric definitions. Workers own the data-plane metrics in their own
// registry and send snapshots over IPC; the supervisor aggregates them
// (prom-client's AggregatorRegistry.aggregate, no node:cluster needed) and
// adds its own lifecycle metrics.
//
// The per-request path never calls prom-client: every prom-client update
// builds a string from its labels and looks it up (measured: ~4 % of a
// worker's instructions per proxied request). Hot counters and gauges are
// Tallies (a number, folded into prom-client when metrics are read), and
// latency histograms are FastHistograms (bucket counts in an array, read
// out in prom-client's own shape).
import { Counter, Gauge, Histogram, Registry, type Metric, type MetricObjectWithValues, type MetricValueWithName } from 'prom-client';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** A counter or gauge child updated by plain additions; folded into prom-client whenever metrics are read. */
export class Tally {
  #n = 0;
  constructor(private readonly child: { inc(n: number): void; dec?(n: number): void }) {}

  inc(n = 1): void {
    this.#n += n;
  }

  /** Gauges only. */
  dec(n = 1): void {
    this.#n -= n;
  }

  flush(): void {
    const n = this.#n;
    if (n === 0) return;
    this.#n = 0;
    if (n > 0) this.child.inc(n);
    else this.child.dec!(-n);
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

/**
 * A histogram for the hot path, registered in a prom-client Registry and
 * read out exactly as prom-client's Histogram would be (so aggregation and
 * the text format are prom-client's); observe() is an array increment.
 */
export class FastHistogram<L extends string> {
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  readonly #children = new Map<string, HistogramChild>();

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly L[],
    readonly buckets: readonly number[],
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Metric);
  }

  /** The child for these label values (look it up once and keep it: this call builds a key). */
  labels(...values: string[]): HistogramChild {
    if (values.length !== this.labelNames.length) throw new Error(`${this.name}: ${this.labelNames.length} label values expected, got ${values.length}`);
    const key = values.join('\0');
    let c = this.#children.get(key);
    if (!c) {
      const labels: Record<string, string> = {};
      this.labelNames.forEach((n, i) => (labels[n] = values[i]!));
      c = new HistogramChild(labels, this.buckets);
      this.#children.set(key, c);
    }
    return c;
  }

  get(): Promise<MetricObjectWithValues<MetricValueWithName<string>>> {
    const values: MetricValueWithName<string>[] = [];
    const bucket = `${this.name}_bucket`;
    for (const c of this.#children.values()) {
      let acc = 0;
      this.buckets.forEach((le, i) => {
        acc += c.counts[i]!;
        values.push({ labels: { le, ...c.labels }, value: acc, metricName: bucket, exemplar: null } as MetricValueWithName<string>);
      });
      values.push({ labels: { le: '+Inf', ...c.labels }, value: c.count, metricName: bucket, exemplar: null } as MetricValueWithName<string>);
      values.push({ labels: { ...c.labels }, value: c.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...c.labels }, value: c.count, metricName: `${this.name}_count` });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type as never, values, aggregator: this.aggregator, collect: () => undefined });
  }

  reset(): void {
    this.#children.clear();
  }
}

export class WorkerMetrics {
  readonly registry = new Registry();
  readonly #tallies: Tally[] = [];
  readonly #byKey = new Map<string, Tally>();
  readonly #beforeFlush: (() => void)[] = [];
  #flushed = false;
  /**
   * Folds every Tally into its metric. prom-client calls it before reading
   * each tallied metric, all in one synchronous stretch: once is enough.
   */
  readonly #flush = (): void => {
    if (this.#flushed) return;
    this.#flushed = true;
    queueMicrotask(() => (this.#flushed = false));
    for (const fn of this.#beforeFlush) fn();
    for (const t of this.#tallies) t.flush();
  };

  /** Runs `fn` whenever metrics are read, before tallies are folded in (to bring tallies up to date). */
  onCollect(fn: () => void): void {
    this.#beforeFlush.push(fn);
  }
  readonly httpRequests = new Counter({
    name: 'mosn_http_requests_total',
    help: 'HTTP requests completed, by listener, virtual host, route and status class.',
    labelNames: ['listener', 'vhost', 'route', 'status_class'] as const,
    registers: [this.registry],
    collect: this.#flush,
  });
  readonly httpDuration = new FastHistogram(
    'mosn_http_request_duration_seconds',
    'Time from request start to response end, by listener.',
    ['listener'] as const,
    LATENCY_BUCKETS,
    this.registry,
  );
  readonly upstreamConnectErrors = new Counter({
    name: 'mosn_upstream_connect_errors_total',
    help: 'Upstream connection failures (refused, reset, timeout), by cluster.',
    labelNames: ['cluster'] as const,
    registers: [this.registry],
  });
  readonly upstreamErrors = new Counter({
    name: 'mosn_upstream_errors_total',
    help: 'Upstream failures by cluster and stable error code.',
    labelNames: ['cluster', 'code'] as const,
    registers: [this.registry],
  });
  readonly connectionsActive = new Gauge({
    name: 'mosn_downstream_connections_active',
    help: 'Open downstream connections, by listener.',
    labelNames: ['listener'] as const,
    registers: [this.registry],
    collect: this.#flush,
  });
  readonly connectionsTotal = new Counter({
    name: 'mosn_downstream_connections_total',
    help: 'Downstream connections accepted, by listener.',
    labelNames: ['listener'] as const,
    registers: [this.registry],
    collect: this.#flush,
  });
  readonly bytesIn = new Counter({
    name: 'mosn_downstream_bytes_received_total',
    help: 'Bytes received from downstream clients, by listener.',
    labelNames: ['listener'] as const,
    registers: [this.registry],
    collect: this.#flush,
  });
  readonly bytesOut = new Counter({
    name: 'mosn_downstream_bytes_sent_total',
    help: 'Bytes sent to downstream clients, by listener.',
    labelNames: ['listener'] as const,
    registers: [this.registry],
    collect: this.#flush,
  });
  readonly tcpSessions = new Counter({
    name: 'mosn_tcp_sessions_total',
    help: 'Completed L4 sessions (TCP proxy and HTTP Upgrade tunnels), by listener and outcome.',
    labelNames: ['listener', 'outcome'] as const,
    registers: [this.registry],
    collect: this.#flush,
  });
  readonly connectionsDrained = new Counter({
    name: 'mosn_connections_drained_total',
    help: 'Connections that finished in a leaving (old-generation) worker instead of moving, by kind.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly connectionsForceClosed = new Counter({
    name: 'mosn_connections_force_closed_total',
    help: 'Connections closed by a leaving worker at drain_timeout, by kind.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly connectionsImported = new Counter({
    name: 'mosn_connections_imported_total',
    help: 'Connections a worker took over from an older generation, by kind.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly tcpDuration = new FastHistogram('mosn_tcp_session_duration_seconds', 'Duration of L4 sessions, by listener.', ['listener'] as const, [0.01, 0.1, 1, 10, 60, 600, 3600], this.registry);

  /** A hot-path child of a counter or gauge (see Tally); keep it, this call hashes the labels. */
  tally(metric: Counter<string> | Gauge<string>, ...labels: string[]): Tally {
    const key = `${(metric as unknown as { name: string }).name}\0${labels.join('\0')}`;
    let t = this.#byKey.get(key);
    if (!t) {
      t = new Tally(metric.labels(...labels));
      this.#byKey.set(key, t);
      this.#tallies.push(t);
    }
    return t;
  }
}

export class SupervisorMetrics {
  readonly registry = new Registry();
  readonly generation = new Gauge({
    name: 'mosn_generation',
    help: 'The current worker generation.',
    registers: [this.registry],
  });
  readonly workers = new Gauge({
    name: 'mosn_workers',
    help: 'Worker processes by generation role (current, draining).',
    labelNames: ['role'] as const,
    registers: [this.registry],
  });
  readonly workerRestarts = new Counter({
    name: 'mosn_worker_restarts_total',
    help: 'Workers restarted after an unexpected exit.',
    registers: [this.registry],
  });
  readonly migrated = new Counter({
    name: 'mosn_connections_migrated_total',
    help: 'Live connections relayed from an old-generation worker to a new one, by kind.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly reloads = new Counter({
    name: 'mosn_reloads_total',
    help: 'Reloads and upgrades by kind (reload, upgrade) and result (success, failure).',
    labelNames: ['kind', 'result'] as const,
    registers: [this.registry],
  });
  readonly reloadDuration = new Histogram({
    name: 'mosn_reload_duration_seconds',
    help: 'Time from a reload/upgrade request to the old generation having handed over, by kind.',
    labelNames: ['kind'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [this.registry],
  });
  readonly generationsDraining = new Gauge({
    name: 'mosn_generations_draining',
    help: 'Old generations still draining.',
    registers: [this.registry],
  });
  readonly residentMemory = new Gauge({
    name: 'mosn_process_resident_memory_bytes',
    help: 'Resident memory (VmRSS) of the supervisor and of each worker, by role (supervisor, or the generation state of the worker: starting, current, draining), generation and slot; read at scrape time.',
    labelNames: ['role', 'generation', 'slot'] as const,
    registers: [this.registry],
  });
  readonly phase = new Gauge({
    name: 'mosn_supervisor_phase',
    help: 'The supervisor lifecycle phase (1 for the current phase).',
    labelNames: ['phase'] as const,
    registers: [this.registry],
  });
}
