// Clusters: a set of endpoints, a load-balancing policy, and one keep-alive
// connection pool (h1-pool.ts) per endpoint for HTTP. L4 sessions connect
// directly and use only the endpoint selection.
import { H1Pool } from './h1-pool.js';
import type { Cluster as ClusterConfig, HostPort, LbPolicy } from '../../config/types.js';

export class Endpoint {
  readonly address: HostPort;
  /** Requests or sessions in flight (least_request). */
  active = 0;
  #pool: H1Pool | undefined;
  readonly #cfg: ClusterConfig;

  constructor(address: HostPort, cfg: ClusterConfig) {
    this.address = address;
    this.#cfg = cfg;
  }

  /** The HTTP keep-alive pool, created on first use. */
  get pool(): H1Pool {
    this.#pool ??= new H1Pool({
      host: this.address.host,
      port: this.address.port,
      connections: this.#cfg.max_connections_per_endpoint,
      idleTimeout: this.#cfg.idle_timeout,
      headersTimeout: this.#cfg.headers_timeout,
      connectTimeout: this.#cfg.connect_timeout,
    });
    return this.#pool;
  }

  destroy(): void {
    this.#pool?.destroy();
  }
}

type Picker = (eps: readonly Endpoint[]) => Endpoint;

function roundRobin(): Picker {
  // Start each worker at a random offset so workers do not move in lockstep.
  let next = Math.floor(Math.random() * 1024);
  return (eps) => eps[next++ % eps.length]!;
}

const random: Picker = (eps) => eps[Math.floor(Math.random() * eps.length)]!;

/** Power of two choices on the in-flight count. */
const leastRequest: Picker = (eps) => {
  if (eps.length === 1) return eps[0]!;
  const a = eps[Math.floor(Math.random() * eps.length)]!;
  const b = eps[Math.floor(Math.random() * eps.length)]!;
  return b.active < a.active ? b : a;
};

function picker(lb: LbPolicy): Picker {
  switch (lb) {
    case 'round_robin':
      return roundRobin();
    case 'random':
      return random;
    case 'least_request':
      return leastRequest;
  }
}

export class Cluster {
  readonly name: string;
  readonly config: ClusterConfig;
  readonly endpoints: readonly Endpoint[];
  readonly #pick: Picker;

  constructor(cfg: ClusterConfig) {
    this.name = cfg.name;
    this.config = cfg;
    this.endpoints = cfg.endpoints.map((a) => new Endpoint(a, cfg));
    this.#pick = picker(cfg.lb);
  }

  pick(): Endpoint | undefined {
    return this.endpoints.length === 0 ? undefined : this.#pick(this.endpoints);
  }

  destroy(): void {
    for (const e of this.endpoints) e.destroy();
  }
}

export class ClusterManager {
  readonly #clusters = new Map<string, Cluster>();

  constructor(configs: readonly ClusterConfig[]) {
    for (const c of configs) this.#clusters.set(c.name, new Cluster(c));
  }

  get(name: string): Cluster | undefined {
    return this.#clusters.get(name);
  }

  destroy(): void {
    for (const c of this.#clusters.values()) c.destroy();
  }
}
