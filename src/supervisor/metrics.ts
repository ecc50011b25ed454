// The supervisor's own metrics (prom-client). Workers count with the plain
// types of src/worker/metrics.ts and send snapshots over IPC; the supervisor
// aggregates them with these (src/supervisor/metrics-agg.ts) and renders
// the text format.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

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
