// Worker side of live connection migration (docs/upgrade.md).
//
// Exporting (old generation): every connection that sits at a boundary is
// detached and its fd(s) sent to the supervisor, which relays them to a
// worker of the new generation. HTTP connections busy with a request move
// as soon as their response ends. L4 sessions move at once, both sockets
// together; this process keeps its copies only to finish writes it already
// started, then sends "fence released" per direction and closes them.
//
// Importing (new generation): wrap the fds without reading, hand HTTP
// sockets to their HTTP listener, rebuild L4 sessions with their
// carried bytes and fences.
import type net from 'node:net';
import type { Direction, ExportedConn, L4Export, SupervisorToWorker, WorkerToSupervisor } from '../common/ipc.js';
import { rawHandle, socketFromHandle } from '../common/node-internals.js';
import type { WorkerContext } from './context.js';
import type { HttpListener } from './http/listener.js';
import { L4Session } from './l4/tcp-listener.js';
import type { Tunnel } from './l4/tunnel.js';
import type { ConnectionExport, TrackedConnection } from './registry.js';

type Send = (msg: WorkerToSupervisor, handle?: object, cb?: (err: Error | null) => void) => void;

export interface ListenerLookup {
  http(name: string): HttpListener | undefined;
  /** Idle timeout for L4 sessions of a listener. */
  idleTimeout(name: string): number | undefined;
}

/** How often an exporter checks whether its in-flight writes are done. */
const FENCE_POLL_MS = 2;

interface PendingImport {
  down?: net.Socket;
  up?: net.Socket;
  meta?: L4Export;
  fenced: { d2u: boolean; u2d: boolean };
  released: Set<Direction>;
}

export class Migrator {
  #sendsInFlight = 0;
  #fencesInFlight = 0;
  #idleWaiters: (() => void)[] = [];
  #targets: ReadonlySet<string> = new Set();
  #enabled = false;
  migrated = 0;
  /** Imported L4 sessions by session key (for fence releases). */
  readonly #sessions = new Map<string, Tunnel>();
  readonly #pendingImports = new Map<string, PendingImport>();

  constructor(
    private readonly ctx: WorkerContext,
    private readonly send: Send,
    private readonly listeners: ListenerLookup,
  ) {}

  // ---- export ---------------------------------------------------------

  /** Starts leaving: every connection is offered now and at its next boundary. */
  begin(targets: readonly string[], enabled: boolean): void {
    this.#targets = new Set(targets);
    this.#enabled = enabled;
    this.ctx.registry.onBoundary = (c) => this.offer(c);
    for (const c of [...this.ctx.registry.values()]) this.offer(c);
  }

  /** Moves `c` if it can move now; otherwise it drains politely (or waits for its boundary). */
  offer(c: TrackedConnection): void {
    if (!this.#enabled || !this.#targets.has(c.listener)) {
      c.drainPolitely();
      return;
    }
    const ex = c.export();
    if (!ex) return; // not at a boundary yet: registry.boundary() offers it again
    this.ctx.registry.remove(c, 'exported');
    this.migrated++;
    if (ex.kind === 'http') this.#sendHttp(ex);
    else {
      this.#sessions.delete(ex.meta.session);
      this.#sendL4(ex);
    }
  }

  #sendHandle(msg: WorkerToSupervisor, socket: net.Socket, after: () => void): void {
    const handle = rawHandle(socket);
    if (!handle) {
      after();
      return;
    }
    this.#sendsInFlight++;
    this.send(msg, handle, (err) => {
      this.#sendsInFlight--;
      if (err) this.ctx.log.error({ err }, 'connection export failed to send');
      after();
      this.#checkIdle();
    });
  }

  #sendHttp(ex: Extract<ConnectionExport, { kind: 'http' }>): void {
    // Our copy of the fd closes once the supervisor holds its own.
    this.#sendHandle({ v: 1, t: 'conn_export', conn: ex.meta }, ex.socket, () => ex.socket.destroy());
  }

  #sendL4(ex: Extract<ConnectionExport, { kind: 'l4' }>): void {
    const f = ex.frozen;
    const down: L4Export = {
      ...ex.meta,
      part: 'down',
      carried: { d2u: f.carried.d2u.toString('base64'), u2d: f.carried.u2d.toString('base64') },
      pending: f.pending,
    };
    const up: L4Export = { ...ex.meta, part: 'up' };
    // Both parts are sent before any fence release (IPC keeps order).
    let sent = 0;
    const afterBoth = (): void => {
      if (++sent < 2) return;
      this.#fence(ex.meta.session, 'd2u', f.up, f.pending.d2u);
      this.#fence(ex.meta.session, 'u2d', f.down, f.pending.u2d);
    };
    this.#sendHandle({ v: 1, t: 'conn_export', conn: down }, f.down, afterBoth);
    this.#sendHandle({ v: 1, t: 'conn_export', conn: up }, f.up, afterBoth);
  }

  /**
   * Our writes into `dst` (direction `dir`) must finish before the new owner
   * writes there. When they have (or failed: the new owner will see the
   * error itself), release the fence and close our copy.
   */
  #fence(session: string, dir: Direction, dst: net.Socket, pending: boolean): void {
    if (!pending) {
      dst.destroy();
      return;
    }
    this.#fencesInFlight++;
    const started = Date.now();
    const check = (): void => {
      if (dst.writableLength > 0 && !dst.destroyed) {
        setTimeout(check, FENCE_POLL_MS);
        return;
      }
      dst.destroy();
      this.send({ v: 1, t: 'fence_release', session, dir });
      this.#fencesInFlight--;
      const waited = Date.now() - started;
      if (waited > 100) this.ctx.log.info({ session, dir, waited_ms: waited }, 'fence released after a slow peer');
      this.#checkIdle();
    };
    check();
  }

  /** True when nothing this process sent or still writes is outstanding. */
  get idle(): boolean {
    return this.#sendsInFlight === 0 && this.#fencesInFlight === 0;
  }

  whenIdle(): Promise<void> {
    if (this.idle) return Promise.resolve();
    return new Promise((r) => this.#idleWaiters.push(r));
  }

  #checkIdle(): void {
    if (!this.idle) return;
    const w = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const r of w) r();
  }

  // ---- import ---------------------------------------------------------

  import(msg: Extract<SupervisorToWorker, { t: 'conn_import' }>, handle: unknown): void {
    if (!handle) {
      this.ctx.log.error({ conn: msg.conn }, 'conn_import without a handle');
      return;
    }
    const socket = socketFromHandle(handle);
    const conn: ExportedConn = msg.conn;
    if (conn.kind === 'http') {
      const l = this.listeners.http(conn.listener);
      if (!l) {
        this.ctx.log.error({ listener: conn.listener }, 'imported connection for a listener this worker does not have; closing');
        socket.destroy();
        return;
      }
      l.accept(socket, conn.migrations);
      return;
    }
    let p = this.#pendingImports.get(conn.session);
    if (!p) {
      p = { fenced: { d2u: false, u2d: false }, released: new Set() };
      this.#pendingImports.set(conn.session, p);
    }
    if (conn.part === 'down') {
      p.down = socket;
      p.meta = conn;
      p.fenced = msg.fenced ?? { d2u: false, u2d: false };
    } else p.up = socket;
    if (p.down && p.up && p.meta) {
      this.#pendingImports.delete(conn.session);
      this.#startImported(p.meta, p.down, p.up, p.fenced, p.released);
    }
  }

  #startImported(meta: L4Export, down: net.Socket, up: net.Socket, fenced: { d2u: boolean; u2d: boolean }, released: Set<Direction>): void {
    const idle = this.listeners.idleTimeout(meta.listener) ?? 0;
    const session = new L4Session(this.ctx, this.ctx.registry.allocateId(), meta.listener, meta.kind, down, meta.migrations, meta.session);
    session.upstream = meta.upstream;
    const carried = {
      d2u: Buffer.from(meta.carried?.d2u ?? '', 'base64'),
      u2d: Buffer.from(meta.carried?.u2d ?? '', 'base64'),
    };
    const tunnel = session.run(up, idle, { carried, fenced: { d2u: fenced.d2u && !released.has('d2u'), u2d: fenced.u2d && !released.has('u2d') } });
    this.#sessions.set(meta.session, tunnel);
    down.once('close', () => {
      if (this.#sessions.get(meta.session) === tunnel) this.#sessions.delete(meta.session);
    });
  }

  releaseFence(session: string, dir: Direction): void {
    const t = this.#sessions.get(session);
    if (t) {
      t.release(dir);
      return;
    }
    const p = this.#pendingImports.get(session);
    if (p) p.released.add(dir);
    // Otherwise the session already moved on or ended: nothing to do.
  }

}

