// Worker process entry: receives its config and listening handles from the
// supervisor over IPC, accepts and proxies, reports metrics, drains on
// request. Lifecycle phases: starting -> ready -> serving -> draining ->
// stopped, logged on every transition and reported to the supervisor.
import net from 'node:net';
import { detectInternals } from '../common/node-internals.js';
import { checkMessage, assertNever, unrecognized, type SupervisorToWorker, type WorkerToSupervisor, type WorkerPhase } from '../common/ipc.js';
import { createLogger, PhaseTracker, type Logger } from '../common/log.js';
import { WorkerMetrics } from './metrics.js';
import type { Config, Listener } from '../config/types.js';
import { AccessLog } from './access-log.js';
import type { WorkerContext } from './context.js';
import { HttpListener } from './http/listener.js';
import { TcpListener } from './l4/tcp-listener.js';
import { Migrator } from './migration.js';
import { ConnectionRegistry } from './registry.js';
import { ClusterManager } from './upstream/cluster.js';

function send(msg: WorkerToSupervisor, handle?: object, cb?: (err: Error | null) => void): void {
  if (!process.connected) {
    cb?.(new Error('IPC channel closed'));
    return;
  }
  if (handle) process.send!(msg, handle as net.Socket, cb);
  else process.send!(msg, undefined, undefined, cb);
}

const internals = detectInternals();

interface ActiveListener {
  readonly config: Listener;
  readonly server: net.Server;
  readonly accept: (socket: net.Socket) => void;
}

class Worker {
  readonly log: Logger;
  readonly phase: PhaseTracker<WorkerPhase>;
  readonly ctx: WorkerContext;
  readonly #config: Config;
  readonly #listeners = new Map<string, ActiveListener>();
  /** Protocol handlers by listener name (kept after accepting stops: imports and drains use them). */
  readonly #handlers = new Map<string, HttpListener | TcpListener>();
  readonly #expected: Set<string>;
  readonly migrator: Migrator;
  #drainTimer: NodeJS.Timeout | undefined;
  #metricsTimer: NodeJS.Timeout;

  constructor(msg: Extract<SupervisorToWorker, { t: 'init' }>) {
    this.#config = msg.config;
    const bindings = { generation: msg.generation, worker: msg.workerId };
    this.log = createLogger('worker', bindings, msg.config.log.level);
    this.phase = new PhaseTracker<WorkerPhase>('worker', 'starting', this.log, (phase) => send({ v: 1, t: 'phase', phase }));
    const access = new AccessLog(msg.config.log.access_log, { pid: process.pid, ...bindings });
    this.ctx = {
      log: this.log,
      access,
      metrics: new WorkerMetrics(),
      registry: new ConnectionRegistry(),
      clusters: new ClusterManager(msg.config.clusters),
      draining: false,
    };
    this.#expected = new Set(msg.listeners.map((l) => l.name));
    this.migrator = new Migrator(this.ctx, send, {
      http: (name) => {
        const h = this.#handlers.get(name);
        return h instanceof HttpListener ? h : undefined;
      },
      idleTimeout: (name) => this.#config.listeners.find((l) => l.name === name)?.timeouts.idle,
    });
    if (!internals.liveMigration) this.log.warn({ missing: internals.missing }, 'live migration unavailable on this Node.js: leaving workers will drain politely');
    if (internals.httpParser && !internals.parserConsume) this.log.info('HTTP parsers are fed from socket data events (parser.consume unavailable or disabled)');
    // Periodic snapshots keep the supervisor's copy fresh, so a crash loses
    // at most one interval of counts.
    this.#metricsTimer = setInterval(() => this.sendMetrics(null), 5000);
    this.#metricsTimer.unref();
  }

  addListener(name: string, handle: unknown): void {
    const cfg = this.#config.listeners.find((l) => l.name === name);
    if (!cfg || !handle) {
      this.log.error({ listener: name }, 'received a listening handle for an unknown listener');
      return;
    }
    const proto = cfg.protocol === 'http' ? new HttpListener(cfg, this.ctx) : new TcpListener(cfg, this.ctx);
    this.#handlers.set(name, proto);
    const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true, noDelay: true });
    const accept = (socket: net.Socket): void => proto.accept(socket);
    server.on('connection', accept);
    server.on('error', (err) => this.log.error({ err, listener: name }, 'listener error'));
    server.listen(handle as net.Server, () => {
      this.#listeners.set(name, { config: cfg, server, accept });
      this.#expected.delete(name);
      if (this.#expected.size === 0 && this.phase.phase === 'starting') {
        this.phase.to('ready');
        send({ v: 1, t: 'ready', listeners: [...this.#listeners.keys()] });
        this.phase.to('serving');
      }
    });
  }

  sendMetrics(id: number | null): void {
    send({ v: 1, t: 'metrics', id, snapshot: { metrics: this.ctx.metrics.snapshot() }, connections: this.ctx.registry.counts() });
  }

  stopAccepting(): void {
    for (const l of this.#listeners.values()) l.server.close();
    this.#listeners.clear();
  }

  /** Graceful stop: finish in-flight work, close at message boundaries, exit. */
  drain(timeoutMs: number): void {
    if (this.phase.phase === 'draining' || this.phase.phase === 'stopped') return;
    this.phase.to('draining', { connections: this.ctx.registry.size, timeout_ms: timeoutMs });
    this.ctx.draining = true;
    this.stopAccepting();
    this.#countRemovals();
    for (const c of [...this.ctx.registry.values()]) c.closeGracefully();
    this.#exitWhenEmpty(timeoutMs);
  }

  /**
   * Leaving the serving set for a newer generation: stop accepting, move
   * what can move, drain the rest, exit when nothing is left.
   */
  startExport(msg: Extract<SupervisorToWorker, { t: 'export' }>, report = true): void {
    if (this.phase.phase !== 'serving' && this.phase.phase !== 'ready' && this.phase.phase !== 'starting') return;
    const before = this.ctx.registry.size;
    this.phase.to('exporting', { connections: before, migrate: msg.migrate && internals.liveMigration });
    this.stopAccepting();
    this.#countRemovals();
    this.migrator.begin(msg.listeners, msg.migrate && internals.liveMigration);
    if (report) send({ v: 1, t: 'export_done', migrated: this.migrator.migrated, remaining: this.ctx.registry.size });
    this.log.info({ migrated: this.migrator.migrated, remaining: this.ctx.registry.size }, 'first export sweep done');
    this.#exitWhenEmpty(msg.drain_timeout_ms);
  }

  /** Counts connections that finish in a leaving worker (not moved, not forced). */
  #countRemovals(): void {
    this.ctx.registry.onRemove = (c, reason) => {
      if (reason !== 'exported') this.ctx.metrics.connectionsDrained.labels(c.kind).inc();
    };
  }

  /**
   * Closes every connection now, counted as force-closed here (their close
   * events come after the final metrics snapshot).
   */
  #forceClose(): void {
    this.ctx.registry.onRemove = undefined;
    for (const c of [...this.ctx.registry.values()]) {
      this.ctx.metrics.connectionsForceClosed.labels(c.kind).inc();
      c.destroy();
    }
  }

  #exitWhenEmpty(timeoutMs: number): void {
    if (this.#drainTimer) return;
    this.#drainTimer = setTimeout(() => {
      const left = this.ctx.registry.size;
      this.log.warn({ connections: left }, 'drain timeout: closing what remains');
      this.#forceClose();
      void this.migrator.whenIdle().then(() => this.exit());
    }, timeoutMs);
    void this.ctx.registry
      .whenEmpty()
      .then(() => this.migrator.whenIdle())
      .then(() => this.exit());
  }

  shutdown(): void {
    this.stopAccepting();
    this.#forceClose();
    this.exit();
  }

  #exiting = false;

  exit(): void {
    if (this.#exiting) return;
    this.#exiting = true;
    if (this.#drainTimer) clearTimeout(this.#drainTimer);
    clearInterval(this.#metricsTimer);
    this.ctx.clusters.destroy();
    // Last snapshot so the supervisor keeps every count this worker made;
    // leave once it is written (IPC keeps order: everything before it is too).
    const metrics = this.ctx.metrics.snapshot();
    this.phase.to('stopped');
    this.ctx.access.flush();
    const leave = (): never => process.exit(0);
    setTimeout(leave, 1000).unref();
    send({ v: 1, t: 'metrics', id: null, snapshot: { metrics }, connections: this.ctx.registry.counts() }, undefined, leave);
  }
}

let worker: Worker | undefined;
const pendingHandles: { name: string; handle: unknown }[] = [];

function onMessage(raw: unknown, handle: unknown): void {
  const checked = checkMessage<SupervisorToWorker>(raw);
  if (!checked.ok) {
    send(unrecognized(checked.of, checked.reason));
    return;
  }
  const msg = checked.msg;
  switch (msg.t) {
    case 'init':
      worker = new Worker(msg);
      for (const p of pendingHandles.splice(0)) worker.addListener(p.name, p.handle);
      return;
    case 'listener':
      if (worker) worker.addListener(msg.name, handle);
      else pendingHandles.push({ name: msg.name, handle });
      return;
    case 'metrics_request':
      worker?.sendMetrics(msg.id);
      return;
    case 'status_request':
      send({ v: 1, t: 'status', id: msg.id, connections: worker?.ctx.registry.counts() ?? { active: 0, idle: 0, in_request: 0, tunnel: 0 } });
      return;
    case 'stop_accepting':
      worker?.stopAccepting();
      return;
    case 'drain':
      if (worker) worker.drain(msg.timeout_ms);
      else process.exit(0);
      return;
    case 'shutdown':
      if (worker) worker.shutdown();
      else process.exit(0);
      return;
    case 'log_reopen':
      worker?.ctx.access.reopen();
      return;
    case 'export':
      if (worker) worker.startExport(msg);
      else process.exit(0);
      return;
    case 'conn_import':
      if (worker) {
        worker.ctx.metrics.connectionsImported.labels(msg.conn.kind).inc();
        worker.migrator.import(msg, handle);
      } else (handle as { close?: () => void } | undefined)?.close?.();
      return;
    case 'fence_release':
      worker?.migrator.releaseFence(msg.session, msg.dir);
      return;
    case 'unrecognized':
      worker?.log.warn({ of: msg.of, reason: msg.reason }, 'supervisor did not recognise a message');
      return;
    default:
      assertNever(msg, 'supervisor message');
  }
}

process.on('message', onMessage);
// The supervisor is gone (crash, SIGKILL): nobody can hand us work or take
// our connections. Leave politely: stop accepting, answer what comes with
// `Connection: close` (never close an idle connection a request may be
// travelling to), exit when empty or after 5 s.
process.on('disconnect', () => {
  if (worker && (worker.phase.phase === 'serving' || worker.phase.phase === 'ready' || worker.phase.phase === 'starting')) {
    worker.log.warn('supervisor gone: leaving politely');
    worker.startExport({ v: 1, t: 'export', listeners: [], drain_timeout_ms: 5000, migrate: false }, false);
  } else if (!worker) process.exit(0);
});
// Signals are the supervisor's business (KillMode=mixed sends SIGTERM to
// the whole group): the supervisor tells us what to do over IPC.
process.on('SIGTERM', () => undefined);
process.on('SIGINT', () => undefined);
process.on('SIGHUP', () => undefined);
process.on('SIGUSR1', () => undefined);
process.on('SIGUSR2', () => undefined);
