// The worker's registry of downstream connections. Protocol-neutral: every
// kind of connection reports its state and knows how to close itself
// gracefully or at once. Migration (src/upgrade) exports from here.
import type { ConnectionCounts } from '../common/ipc.js';

export type ConnKind = 'http' | 'tcp' | 'tunnel';
/** idle: between requests; in_request: an exchange is in flight; tunnel: an L4 byte stream. */
export type ConnState = 'idle' | 'in_request' | 'tunnel';

export interface TrackedConnection {
  readonly id: number;
  readonly listener: string;
  readonly kind: ConnKind;
  readonly state: ConnState;
  /** Finish what is in flight, then close at the next message boundary. */
  closeGracefully(): void;
  /** Close now (drain deadline, fast stop). */
  destroy(): void;
}

export class ConnectionRegistry {
  readonly #conns = new Map<number, TrackedConnection>();
  #nextId = 1;
  #onEmpty: (() => void)[] = [];

  allocateId(): number {
    return this.#nextId++;
  }

  add(c: TrackedConnection): void {
    this.#conns.set(c.id, c);
  }

  remove(c: TrackedConnection): void {
    if (!this.#conns.delete(c.id)) return;
    if (this.#conns.size === 0 && this.#onEmpty.length > 0) {
      const waiters = this.#onEmpty;
      this.#onEmpty = [];
      for (const w of waiters) w();
    }
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
