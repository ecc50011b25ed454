// What every part of the worker's data plane shares.
import type { Logger } from '../common/log.js';
import type { WorkerMetrics } from './metrics.js';
import type { AccessLog } from './access-log.js';
import type { ConnectionRegistry } from './registry.js';
import type { ClusterManager } from './upstream/cluster.js';

export interface WorkerContext {
  readonly log: Logger;
  readonly access: AccessLog;
  readonly metrics: WorkerMetrics;
  readonly registry: ConnectionRegistry;
  readonly clusters: ClusterManager;
  /** True once the worker drains: responses carry `Connection: close`. */
  draining: boolean;
}
