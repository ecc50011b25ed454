// The worker's registry of downstream connections. Protocol-neutral: every
// kind of connection reports its state, whether it can move to another
// process right now (and how), and how to close itself gracefully or at
// once. Migration (src/worker/migration.ts) exports from here.
import type net from 'node:net';
import type { ConnectionCounts, HttpExport, L4Export } from '../common/ipc.js';
import type { FrozenTunnel } from './l4/tunnel.js';

export type ConnKind = 'http' | 'tcp' | 'tunnel';
/** idle: between requests; in_request: an exchange is in flight; tunnel: an L4 byte stream. */
export type ConnState = 'idle' | 'in_request' | 'tunnel';

/** A connection detached for migration: its fds and what travels with them. */
export type ConnectionExport =
  | { readonly kind: 'http'; readonly socket: net.Socket; readonly meta: HttpExport }
  | { readonly kind: 'l4'; readonly frozen: FrozenTunnel; readonly meta: Omit<L4Export, 'part' | 'carried' | 'pending'> };

export interface TrackedConnection {
  readonly id: number;
  readonly listener: string;
  readonly kind: ConnKind;
  readonly state: ConnState;
  /** Stop: finish what is in flight, close idle ones now. */
  closeGracefully(): void;
  /**
   * Leaving without migration: finish what is in flight and close at a
   * moment when no request can be on the wire (HTTP: `Connection: close`
   * on the next response; idle ones wait for it).
   */
  drainPolitely(): void;
  /**
   * Detaches the connection for migration when it sits at a boundary now;
   * undefined otherwise. When it reaches a boundary later it calls
   * `registry.boundary(this)`.
   */
  export(): ConnectionExport | undefined;
  /** Close now (drain deadline, fast stop). */
  destroy(): void;
}

export type RemovalReason = 'closed' | 'exported';

export class ConnectionRegistry {
  readonly #conns = new Map<number, TrackedConnection>();
  #nextId = 1;
  #onEmpty: (() => void)[] = [];
  /** Set while the worker leaves: called when a connection reaches a message boundary. */
  onBoundary: ((c: TrackedConnection) => void) | undefined;
  /** Set while the worker leaves: called for every connection that goes away. */
  onRemove: ((c: TrackedConnection, reason: RemovalReason) => void) | undefined;

  allocateId(): number {
    return this.#nextId++;
  }

  add(c: TrackedConnection): void {
    this.#conns.set(c.id, c);
  }

  remove(c: TrackedConnection, reason: RemovalReason = 'closed'): void {
    if (!this.#conns.delete(c.id)) return;
    this.onRemove?.(c, reason);
    if (this.#conns.size === 0 && this.#onEmpty.length > 0) {
      const waiters = this.#onEmpty;
      this.#onEmpty = [];
      for (const w of waiters) w();
    }
  }

  boundary(c: TrackedConnection): void {
    if (this.onBoundary && this.#conns.has(c.id)) this.onBoundary(c);
  }

  get size(): number {
    return this.#conns.size;
  }

  values(): IterableIterator<TrackedConnection> {
    return this.#conns.values();
  }

  /** Resolves once no connection is left. */
  whenEmpty(): Promise<void> {
    if (this.#conns.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#onEmpty.push(resolve));
  }

  counts(): ConnectionCounts {
    let idle = 0;
    let inRequest = 0;
    let tunnel = 0;
    for (const c of this.#conns.values()) {
      if (c.state === 'idle') idle++;
      else if (c.state === 'in_request') inRequest++;
      else tunnel++;
    }
    return { active: this.#conns.size, idle, in_request: inRequest, tunnel };
  }
}
