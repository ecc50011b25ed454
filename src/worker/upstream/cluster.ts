// Clusters: a set of endpoints, a load-balancing policy, and one keep-alive
// connection pool (undici) per endpoint for HTTP. L4 sessions connect
// directly and use only the endpoint selection.
import { Pool } from 'undici';
import type { Cluster as ClusterConfig, HostPort, LbPolicy } from '../../config/types.js';

export class Endpoint {
  readonly address: HostPort;
  /** Requests or sessions in flight (least_request). */
  active = 0;
  #pool: Pool | undefined;
  readonly #cfg: ClusterConfig;

  constructor(address: HostPort, cfg: ClusterConfig) {
    this.address = address;
    this.#cfg = cfg;
  }

  /** The HTTP keep-alive pool, created on first use. */
  get pool(): Pool {
    this.#pool ??= new Pool(`http://${this.address.text}`, {
      connections: this.#cfg.max_connections_per_endpoint,
      pipelining: 1,
      keepAliveTimeout: this.#cfg.idle_timeout,
      keepAliveMaxTimeout: Math.max(this.#cfg.idle_timeout, 1000),
      headersTimeout: this.#cfg.headers_timeout,
      bodyTimeout: 0,
      connect: { timeout: this.#cfg.connect_timeout, noDelay: true },
      strictContentLength: true,
    });
    return this.#pool;
  }

  async close(): Promise<void> {
    await this.#pool?.close();
  }

  destroy(): void {
    void this.#pool?.destroy().catch(() => undefined);
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

  async close(): Promise<void> {
    await Promise.all(this.endpoints.map((e) => e.close()));
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

  async close(): Promise<void> {
    await Promise.all([...this.#clusters.values()].map((c) => c.close()));
  }

  destroy(): void {
    for (const c of this.#clusters.values()) c.destroy();
  }
}
