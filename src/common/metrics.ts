// Metric definitions. Workers own the data-plane metrics in their own
// registry and send snapshots over IPC; the supervisor aggregates them
// (prom-client's AggregatorRegistry.aggregate, no node:cluster needed) and
// adds its own lifecycle metrics.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class WorkerMetrics {
  readonly registry = new Registry();
  readonly httpRequests = new Counter({
    name: 'mosn_http_requests_total',
    help: 'HTTP requests completed, by listener, virtual host, route and status class.',
    labelNames: ['listener', 'vhost', 'route', 'status_class'] as const,
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'mosn_http_request_duration_seconds',
    help: 'Time from request start to response end, by listener.',
    labelNames: ['listener'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
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
  });
  readonly connectionsTotal = new Counter({
    name: 'mosn_downstream_connections_total',
    help: 'Downstream connections accepted, by listener.',
    labelNames: ['listener'] as const,
    registers: [this.registry],
  });
  readonly bytesIn = new Counter({
    name: 'mosn_downstream_bytes_received_total',
    help: 'Bytes received from downstream clients, by listener.',
    labelNames: ['listener'] as const,
    registers: [this.registry],
  });
  readonly bytesOut = new Counter({
    name: 'mosn_downstream_bytes_sent_total',
    help: 'Bytes sent to downstream clients, by listener.',
    labelNames: ['listener'] as const,
    registers: [this.registry],
  });
  readonly tcpSessions = new Counter({
    name: 'mosn_tcp_sessions_total',
    help: 'Completed L4 sessions (TCP proxy and HTTP Upgrade tunnels), by listener and outcome.',
    labelNames: ['listener', 'outcome'] as const,
    registers: [this.registry],
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
  readonly tcpDuration = new Histogram({
    name: 'mosn_tcp_session_duration_seconds',
    help: 'Duration of L4 sessions, by listener.',
    labelNames: ['listener'] as const,
    buckets: [0.01, 0.1, 1, 10, 60, 600, 3600],
    registers: [this.registry],
  });
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
  readonly phase = new Gauge({
    name: 'mosn_supervisor_phase',
    help: 'The supervisor lifecycle phase (1 for the current phase).',
    labelNames: ['phase'] as const,
    registers: [this.registry],
  });
}
