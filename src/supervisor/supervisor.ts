// The supervisor: owns the listening sockets, the config, the worker
// generations, the control socket, the admin endpoint and metrics
// aggregation. It never touches request bytes.
import type net from 'node:net';
import type http from 'node:http';
import { ConfigError, MosnError, errorMessage, isMosnError } from '../common/errors.js';
import type { ControlRequest } from '../common/control.js';
import type { ConnectionCounts, Direction, ExportedConn, HandoverState, PeerMessage } from '../common/ipc.js';
import { PhaseTracker, type Logger } from '../common/log.js';
import { SupervisorMetrics } from './metrics.js';
import { detectInternals } from '../common/node-internals.js';
import { VERSION } from '../common/version.js';
import { loadConfig } from '../config/index.js';
import type { Config } from '../config/types.js';
import { ConnectionRelay } from '../upgrade/relay.js';
import { PeerInbox, spawnSuccessor, type Peer } from '../upgrade/handover.js';
import fs from 'node:fs';
import { resolveRelease, type Release } from '../upgrade/release.js';
import { startAdmin } from './admin.js';
import { startControlServer, type ControlContext } from './control-server.js';
import { bindAll, type BoundListener } from './listeners.js';
import { acquireInstanceLock } from './lock.js';
import { MetricsAggregator } from './metrics-agg.js';
import { SdNotify } from './sd-notify.js';
import { activatedSockets } from './socket-activation.js';
import { WorkerProcess } from './worker-process.js';

export type SupervisorPhase = 'starting' | 'binding' | 'spawning' | 'taking_over' | 'running' | 'reloading' | 'handing_over' | 'handed_over' | 'stopping' | 'stopped';
const PHASES: readonly SupervisorPhase[] = ['starting', 'binding', 'spawning', 'taking_over', 'running', 'reloading', 'handing_over', 'handed_over', 'stopping', 'stopped'];

export type ReloadKind = 'reload' | 'upgrade';
export type Progress = (p: Record<string, unknown>) => void;

export interface ReloadResult {
  readonly kind: ReloadKind;
  readonly ok: boolean;
  readonly at: string;
  readonly duration_ms: number;
  readonly generation?: number;
  readonly previous_generation?: number;
  readonly release?: string;
  readonly version?: string;
  /** Connections moved to the new generation during the first sweep. */
  readonly migrated?: number;
  /** Connections the old generation still held after its first sweep. */
  readonly remaining?: number;
  readonly old_generation_exited?: boolean;
  /** Milliseconds from the request to the end of each step. */
  readonly timings?: { readonly validated: number; readonly ready: number; readonly handed_over: number; readonly old_exited: number | null; readonly committed?: number };
  /** For an upgrade: the supervisor process that took over. */
  readonly supervisor?: { readonly previous_pid: number; readonly pid: number; readonly node: string };
  readonly error?: { code: string; message: string };
}

/** How long a reload waits for the old generation to exit before it reports (it keeps draining after). */
const SETTLE_MS = 2000;

export type GenerationState = 'starting' | 'current' | 'draining' | 'gone';

export class Generation {
  state: GenerationState = 'starting';
  readonly workers: WorkerProcess[] = [];
  constructor(
    readonly id: number,
    readonly config: Config,
    readonly listeners: readonly BoundListener[],
    readonly release: Release,
  ) {}

  live(): WorkerProcess[] {
    return this.workers.filter((w) => !w.exited);
  }
}

/** VmRSS of a process in bytes; undefined when it is gone or there is no /proc. */
function vmRssBytes(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Restart delays after unexpected worker exits: 250 ms doubling to 30 s. */
const RESTART_BASE_MS = 250;
const RESTART_MAX_MS = 30_000;
/** A worker that lived this long resets the backoff. */
const HEALTHY_AFTER_MS = 10_000;
const CRASH_LOOP_EXITS = 5;
const CRASH_LOOP_WINDOW_MS = 60_000;

export class Supervisor {
  readonly log: Logger;
  readonly phase: PhaseTracker<SupervisorPhase>;
  readonly metrics = new SupervisorMetrics();
  readonly aggregator = new MetricsAggregator(this.metrics);
  config: Config;
  current: Generation | undefined;
  /** A generation being started by a reload (not serving yet). */
  starting: Generation | undefined;
  readonly draining: Generation[] = [];
  listeners = new Map<string, BoundListener>();
  lastReload: ReloadResult | undefined;
  readonly migratedTotal = { http: 0, tcp: 0, tunnel: 0 };
  readonly relay: ConnectionRelay;
  readonly #sd: SdNotify;
  #statusTimer: NodeJS.Timeout | undefined;
  #reloading: ReloadKind | undefined;
  /** Set once a successor supervisor took over: old workers' connections go to it. */
  #successor: Peer | undefined;
  #successorSends = 0;
  readonly startedAt = new Date();
  #generationCounter = 0;
  #releaseLock: (() => Promise<void>) | undefined;
  #control: net.Server | undefined;
  #admin: http.Server | undefined;
  #admin_address: { address: string; port: number } | undefined;
  #consecutiveFailures = 0;
  #recentExits: number[] = [];
  #lastCrashLoopLog = 0;
  #stopPromise: Promise<void> | undefined;
  #stopGraceful = false;
  readonly #restartTimers = new Set<NodeJS.Timeout>();
  #markStopped!: () => void;
  /** Resolves once a stop (graceful or fast) has completed. */
  readonly stopped = new Promise<void>((resolve) => (this.#markStopped = resolve));

  constructor(config: Config, log: Logger) {
    this.config = config;
    this.log = log;
    this.phase = new PhaseTracker<SupervisorPhase>('supervisor', 'starting', log, (p) => {
      for (const ph of PHASES) this.metrics.phase.labels(ph).set(ph === p ? 1 : 0);
    });
    this.#sd = new SdNotify(log);
    this.relay = new ConnectionRelay(
      () => (this.current ? this.current.live().filter((w) => w.phase === 'serving') : []),
      log,
      (kind) => {
        this.migratedTotal[kind]++;
        this.metrics.migrated.labels(kind).inc();
      },
    );
  }

  async start(): Promise<void> {
    const internals = detectInternals();
    if (!internals.liveMigration) this.log.warn({ missing: internals.missing }, 'Node internals for live connection migration are missing: reloads will drain politely instead');
    this.#releaseLock = await acquireInstanceLock(this.config.control_socket, this.log);
    try {
      this.phase.to('binding');
      for (const b of bindAll(this.config.listeners, activatedSockets(this.config.listeners, this.log))) {
        this.listeners.set(b.name, b);
        this.log.info({ listener: b.name, address: b.address, port: b.port, protocol: b.config.protocol }, 'listener bound');
      }
      this.#control = await startControlServer(this.config.control_socket, (req, ctx) => this.#onControl(req, ctx), this.log);
      await this.#startAdmin();
      this.phase.to('spawning');
      const gen = this.#newGeneration(this.config, [...this.listeners.values()], resolveRelease());
      await this.#waitReady(gen, this.config.upgrade.ready_timeout);
      this.#makeCurrent(gen);
      this.phase.to('running', { generation: gen.id, workers: gen.workers.length });
      void this.#sd.ready(this.#statusLine());
      this.#startStatusUpdates();
    } catch (err) {
      await this.#teardown();
      throw err;
    }
  }

  /** One line for systemd's STATUS=. */
  #statusLine(): string {
    const conns = this.#allWorkers().reduce((n, w) => n + w.connections.active, 0);
    const m = this.migratedTotal;
    return `generation ${this.current?.id ?? '-'}, ${this.current?.live().length ?? 0} workers, ${conns} connections, ${m.http + m.tcp + m.tunnel} migrated`;
  }

  #startStatusUpdates(): void {
    if (!this.#sd.enabled) return;
    this.#statusTimer = setInterval(() => void this.#sd.status(this.#statusLine()), 10_000);
    this.#statusTimer.unref();
  }

  async #startAdmin(handle?: unknown): Promise<void> {
    this.#admin = await startAdmin(
      this.config.admin.address,
      {
        metrics: () => this.#renderMetrics(),
        ready: () => this.phase.phase === 'running' || this.phase.phase === 'reloading',
        configDump: () => this.config,
        status: () => this.status(),
      },
      this.log,
      handle,
    ).catch((err: unknown) => {
      throw new MosnError('MOSN_ERR_LISTEN', `admin: cannot bind ${this.config.admin.address.text}: ${errorMessage(err)}`, { cause: err });
    });
    const a = this.#admin.address() as net.AddressInfo;
    this.#admin_address = { address: a.address, port: a.port };
    this.log.info({ admin: `${a.address}:${a.port}`, control_socket: this.config.control_socket }, 'admin and control endpoints up');
  }

  #makeCurrent(gen: Generation): void {
    gen.state = 'current';
    this.current = gen;
    this.metrics.generation.set(gen.id);
    this.#updateWorkerGauge();
  }

  /**
   * Start as the successor of a running supervisor (docs/upgrade.md,
   * "Supervisor handover"): take its listening sockets, start our workers,
   * and only once they are ready take the control socket, the admin port
   * and the lock; then its workers' connections move to ours.
   */
  async takeover(peer: Peer): Promise<void> {
    const inbox = new PeerInbox(peer);
    const fail = (code: string, err: unknown): never => {
      peer.send({ v: 1, t: 'sup_failed', code, message: errorMessage(err) });
      throw err;
    };
    const tempControl = `${this.config.control_socket}.takeover-${process.pid}`;
    let gen: Generation | undefined;
    try {
      this.phase.to('taking_over');
      peer.send({ v: 1, t: 'sup_hello', pid: process.pid, version: VERSION, node: process.version });
      const { msg: st } = await inbox.next(['sup_state'], 10_000, 'the handover state');
      const state = st.state;
      this.#generationCounter = state.generation;
      this.migratedTotal.http += state.migrated.http;
      this.migratedTotal.tcp += state.migrated.tcp;
      this.migratedTotal.tunnel += state.migrated.tunnel;
      const received = new Map<string, BoundListener>();
      for (let i = 0; i < state.listeners.length; i++) {
        const { msg, handle } = await inbox.next(['sup_listener'], 10_000, 'listening sockets');
        const b = state.listeners.find((l) => l.name === msg.name);
        if (!b || !handle) continue;
        const cfg = this.config.listeners.find((l) => l.name === msg.name);
        received.set(msg.name, { name: msg.name, config: cfg ?? this.config.listeners[0]!, handle: handle as BoundListener['handle'], address: b.address, port: b.port });
      }
      this.phase.to('binding');
      // Same name and address: the predecessor's socket; anything else is bound here.
      const reuse = new Map<string, BoundListener>();
      for (const l of this.config.listeners) {
        const r = received.get(l.name);
        if (r && r.address === l.address.host && (l.address.port === 0 || l.address.port === r.port)) reuse.set(l.name, { ...r, config: l });
      }
      const bound = bindAll(this.config.listeners, reuse);
      for (const [name, r] of received) if (!reuse.has(name)) r.handle.close();
      for (const b of bound) this.listeners.set(b.name, b);
      this.#control = await startControlServer(tempControl, (req, ctx) => this.#onControl(req, ctx), this.log);
      this.phase.to('spawning');
      gen = this.#newGeneration(this.config, bound, resolveRelease());
      await this.#waitReady(gen, this.config.upgrade.ready_timeout);
      this.#makeCurrent(gen);
      peer.send({ v: 1, t: 'sup_ready', generation: gen.id, listeners: this.config.listeners.map((l) => l.name) });
      const { handle: adminHandle } = await inbox.next(['sup_admin'], this.config.upgrade.ready_timeout + 30_000, 'the admin socket');
      const { msg: commit } = await inbox.next(['sup_commit'], 10_000, 'the commit');
      // Point of no return: the predecessor released the lock; the admin
      // socket and the control socket path are ours.
      fs.renameSync(tempControl, this.config.control_socket);
      this.#releaseLock = await acquireInstanceLock(this.config.control_socket, this.log);
      await this.#startAdmin(adminHandle);
      this.aggregator.setBaseline(commit.metrics);
      inbox.drainTo((m, h) => this.#fromPredecessor(m, h));
      peer.onDisconnect(() => this.log.info('predecessor gone'));
      this.phase.to('running', { generation: gen.id, workers: gen.workers.length, took_over_from: 'predecessor' });
      // We are the service's main process now (NotifyAccess=all lets systemd take it from us).
      await this.#sd.mainPid(this.#statusLine());
      this.#startStatusUpdates();
      peer.send({ v: 1, t: 'sup_committed', pid: process.pid });
    } catch (err) {
      fs.rmSync(tempControl, { force: true });
      await this.#teardown(tempControl);
      for (const w of gen?.workers ?? []) {
        w.stopping = true;
        w.kill('SIGKILL');
      }
      if (peer.connected) fail(isMosnError(err) ? err.code : 'MOSN_ERR_RELOAD_FAILED', err);
      throw err;
    }
  }

  /** Messages from the predecessor after the commit. */
  #fromPredecessor(m: PeerMessage, handle: unknown): void {
    switch (m.t) {
      case 'conn_relay':
        this.relay.onExport(m.conn, handle);
        return;
      case 'fence_release':
        this.relay.onFenceRelease(m.session, m.dir);
        return;
      case 'sup_metrics':
        this.aggregator.setBaseline(m.metrics);
        return;
      default:
        this.log.warn({ t: m.t }, 'unexpected message from the predecessor');
    }
  }

  #newGeneration(config: Config, listeners: readonly BoundListener[], release: Release): Generation {
    const gen = new Generation(++this.#generationCounter, config, listeners, release);
    for (let slot = 0; slot < config.workers; slot++) this.#spawn(gen, slot);
    return gen;
  }

  #spawn(gen: Generation, slot: number): WorkerProcess {
    const w = new WorkerProcess({
      script: gen.release.workerScript,
      execPath: gen.release.node,
      generation: gen.id,
      slot,
      config: gen.config,
      listeners: gen.listeners,
      log: this.log,
    });
    gen.workers[slot] = w;
    w.on('metrics', (m: unknown[]) => this.aggregator.update(w.pid, m));
    w.on('conn_export', (conn: ExportedConn, handle: unknown) => {
      if (this.#successor) this.#relayToSuccessor(conn, handle);
      else this.relay.onExport(conn, handle);
    });
    w.on('fence_release', (session: string, dir: Direction) => {
      if (this.#successor) this.#successor.send({ v: 1, t: 'fence_release', session, dir });
      else this.relay.onFenceRelease(session, dir);
    });
    w.on('exit', (code: number | null, signal: string | null) => this.#onWorkerExit(gen, w, code, signal));
    this.log.info({ generation: gen.id, slot, worker_pid: w.pid }, 'worker spawned');
    return w;
  }

  #waitReady(gen: Generation, timeoutMs: number, progress?: (ready: number) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      let pending = gen.workers.length;
      const timer = setTimeout(() => {
        reject(new MosnError('MOSN_ERR_WORKER_START', `generation ${gen.id}: ${pending} of ${gen.workers.length} workers not ready within ${timeoutMs} ms`));
      }, timeoutMs);
      for (const w of gen.workers) {
        w.once('ready', () => {
          progress?.(gen.workers.length - pending + 1);
          if (--pending === 0) {
            clearTimeout(timer);
            resolve();
          }
        });
        w.once('exit', (code: number | null, signal: string | null) => {
          if (w.phase === 'exited' && pending > 0) {
            clearTimeout(timer);
            reject(new MosnError('MOSN_ERR_WORKER_START', `generation ${gen.id}: worker ${w.slot} (pid ${w.pid}) exited before ready (code ${code}, signal ${signal})`));
          }
        });
      }
    });
  }

  #onWorkerExit(gen: Generation, w: WorkerProcess, code: number | null, signal: string | null): void {
    void this.aggregator.retire(w.pid);
    this.#updateWorkerGauge();
    if (gen.state === 'draining' && gen.live().length === 0) {
      gen.state = 'gone';
      this.draining.splice(this.draining.indexOf(gen), 1);
      this.metrics.generationsDraining.set(this.draining.length);
      this.log.info({ generation: gen.id }, 'old generation gone');
      this.#updateWorkerGauge();
    }
    const expected = w.stopping || this.phase.phase === 'stopping' || this.phase.phase === 'stopped' || gen.state !== 'current';
    if (expected) {
      this.log.info({ generation: gen.id, slot: w.slot, worker_pid: w.pid, code, signal }, 'worker exited');
      return;
    }
    const lived = Date.now() - w.startedAt;
    this.#consecutiveFailures = lived >= HEALTHY_AFTER_MS ? 1 : this.#consecutiveFailures + 1;
    const now = Date.now();
    this.#recentExits = this.#recentExits.filter((t) => now - t < CRASH_LOOP_WINDOW_MS);
    this.#recentExits.push(now);
    const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (this.#consecutiveFailures - 1));
    this.log.error({ generation: gen.id, slot: w.slot, worker_pid: w.pid, code, signal, lived_ms: lived, restart_in_ms: delay }, 'worker died unexpectedly; restarting');
    if (this.#recentExits.length >= CRASH_LOOP_EXITS && now - this.#lastCrashLoopLog > 30_000) {
      this.#lastCrashLoopLog = now;
      this.log.fatal(
        { code: 'MOSN_ERR_WORKER_CRASH_LOOP', exits: this.#recentExits.length, window_s: CRASH_LOOP_WINDOW_MS / 1000, next_restart_ms: delay },
        'workers are crash-looping; restarts are rate-limited',
      );
    }
    this.metrics.workerRestarts.inc();
    const timer = setTimeout(() => {
      this.#restartTimers.delete(timer);
      if (gen.state !== 'current' || (this.phase.phase !== 'running' && this.phase.phase !== 'reloading')) return;
      this.#spawn(gen, w.slot);
      this.#updateWorkerGauge();
    }, delay);
    this.#restartTimers.add(timer);
  }

  #updateWorkerGauge(): void {
    this.metrics.workers.labels('current').set(this.current?.live().length ?? 0);
    this.metrics.workers.labels('draining').set(this.draining.reduce((n, g) => n + g.live().length, 0));
  }

  async #renderMetrics(): Promise<{ contentType: string; body: string }> {
    const workers = this.#allWorkers();
    await Promise.all(workers.map((w) => w.request((id) => ({ v: 1, t: 'metrics_request', id }), 1000)));
    this.#updateMemoryGauge();
    return this.aggregator.render();
  }

  /** RSS of this process and of every live worker (from /proc: workers' memory is what an operator sizes a VM by). */
  #updateMemoryGauge(): void {
    const g = this.metrics.residentMemory;
    g.reset();
    g.set({ role: 'supervisor' }, process.memoryUsage.rss());
    for (const gen of this.#generations()) {
      for (const w of gen.live()) {
        const rss = vmRssBytes(w.pid);
        if (rss !== undefined) g.set({ role: gen.state, generation: String(gen.id), slot: String(w.slot) }, rss);
      }
    }
  }

  #generations(): Generation[] {
    return [...(this.starting ? [this.starting] : []), ...(this.current ? [this.current] : []), ...this.draining];
  }

  #allWorkers(): WorkerProcess[] {
    return this.#generations().flatMap((g) => g.live());
  }

  async status(): Promise<unknown> {
    const gens = this.#generations();
    await Promise.all(this.#allWorkers().map((w) => w.request((id) => ({ v: 1, t: 'status_request', id }), 500)));
    const total: { -readonly [K in keyof ConnectionCounts]: number } = { active: 0, idle: 0, in_request: 0, tunnel: 0 };
    for (const w of this.#allWorkers()) for (const k of Object.keys(total) as (keyof ConnectionCounts)[]) total[k] += w.connections[k];
    return {
      pid: process.pid,
      version: VERSION,
      node: process.version,
      phase: this.phase.phase,
      started_at: this.startedAt.toISOString(),
      config_file: this.config.source,
      control_socket: this.config.control_socket,
      admin: this.#admin_address ?? null,
      generation: this.current?.id ?? null,
      generations: gens.map((g) => ({
        id: g.id,
        state: g.state,
        release: g.release.dir,
        version: g.release.version,
        node: g.release.node,
        workers: g.workers.filter((w) => !w.exited).map((w) => ({ slot: w.slot, pid: w.pid, phase: w.phase, connections: w.connections })),
      })),
      migrated: this.migratedTotal,
      draining_generations: this.draining.length,
      reload_in_progress: this.#reloading ?? null,
      last_reload: this.lastReload ?? null,
      listeners: [...this.listeners.values()].map((l) => ({ name: l.name, protocol: l.config.protocol, address: l.address, port: l.port })),
      connections: total,
    };
  }

  async #onControl(req: ControlRequest, ctx: ControlContext): Promise<unknown> {
    switch (req.command) {
      case 'status':
        return this.status();
      case 'stop':
        if (this.phase.phase === 'stopping') throw new MosnError('MOSN_ERR_SHUTTING_DOWN', 'the supervisor is already stopping');
        setImmediate(() => void this.stop(true));
        return { stopping: true, drain_timeout_ms: this.config.upgrade.drain_timeout };
      case 'reload':
        return this.reload('reload', {}, ctx.progress);
      case 'upgrade': {
        const release = req.args?.['release'];
        if (release !== undefined && typeof release !== 'string') throw new MosnError('MOSN_ERR_CONTROL_BAD_REQUEST', '"args.release" must be a path');
        return this.reload('upgrade', { release }, ctx.progress, ctx);
      }
    }
  }

  /**
   * Reload (re-read the config) or upgrade (also fork the workers from a
   * release directory): validate -> bind -> start generation N+1 -> wait
   * ready (else roll back) -> N stops accepting and hands its connections
   * over -> N exits when it holds none (at the latest at drain_timeout).
   */
  async reload(kind: ReloadKind, opts: { release?: string | undefined }, progress: Progress = () => undefined, control?: ControlContext): Promise<ReloadResult> {
    if (this.phase.phase === 'stopping' || this.phase.phase === 'stopped') throw new MosnError('MOSN_ERR_SHUTTING_DOWN', `cannot ${kind}: the supervisor is stopping`);
    if (this.#reloading) throw new MosnError('MOSN_ERR_IN_PROGRESS', `cannot ${kind}: a ${this.#reloading} is already in progress`);
    if (this.phase.phase !== 'running') throw new MosnError('MOSN_ERR_IN_PROGRESS', `cannot ${kind}: the supervisor is ${this.phase.phase}`);
    this.#reloading = kind;
    const t0 = performance.now();
    const at = new Date().toISOString();
    this.phase.to('reloading', { kind });
    if (kind === 'reload') void this.#sd.reloading();
    try {
      const r = kind === 'upgrade' ? await this.#doHandover(opts, progress, t0, at, control) : await this.#doReload(kind, opts, progress, t0, at);
      this.lastReload = r;
      if (!r.supervisor) {
        // (a handover counted itself before passing its counters on)
        this.metrics.reloads.labels(kind, 'success').inc();
        this.metrics.reloadDuration.labels(kind).observe(r.duration_ms / 1000);
      }
      this.log.info(r, `${kind} done`);
      return r;
    } catch (err) {
      const e = isMosnError(err) ? err : new MosnError('MOSN_ERR_RELOAD_FAILED', errorMessage(err));
      this.lastReload = { kind, ok: false, at, duration_ms: Math.round(performance.now() - t0), error: { code: e.code, message: e.message } };
      this.metrics.reloads.labels(kind, 'failure').inc();
      this.log.error({ code: e.code, kind }, `${kind} failed: ${e.message}`);
      throw e;
    } finally {
      // RELOADING=1 ... READY=1 brackets a reload; an upgrade's READY comes
      // from the successor (with MAINPID=), or nothing changed.
      if (kind === 'reload') void this.#sd.ready(this.#statusLine());
      this.#reloading = undefined;
      if ((this.phase.phase as SupervisorPhase) === 'reloading' || (this.phase.phase as SupervisorPhase) === 'handing_over') this.phase.to('running');
    }
  }

  async #doReload(kind: ReloadKind, opts: { release?: string | undefined }, progress: Progress, t0: number, at: string): Promise<ReloadResult> {
    const from = this.current!;
    progress({ phase: 'validate', kind });
    const release = kind === 'upgrade' ? resolveRelease(opts.release, from.release.node === process.execPath ? process.execPath : from.release.node) : from.release;
    const config = await this.#loadValidConfig();
    if (config.control_socket !== this.config.control_socket) {
      throw new MosnError('MOSN_ERR_RELOAD_FAILED', `control_socket changed (${this.config.control_socket} -> ${config.control_socket}): that needs a restart; nothing changed`);
    }
    if (config.admin.address.text !== this.config.admin.address.text) {
      throw new MosnError('MOSN_ERR_RELOAD_FAILED', `admin.address changed (${this.config.admin.address.text} -> ${config.admin.address.text}): that needs a restart; nothing changed`);
    }
    const ms = (): number => Math.round((performance.now() - t0) * 10) / 10;
    const validated = ms();
    progress({ phase: 'bind', listeners: config.listeners.length });
    const bound = bindAll(config.listeners, this.listeners);
    const fresh = bound.filter((b) => this.listeners.get(b.name)?.handle !== b.handle);
    const gen = this.#newGeneration(config, bound, release);
    this.starting = gen;
    progress({ phase: 'start', generation: gen.id, workers: gen.workers.length, ready: 0 });
    try {
      await this.#waitReady(gen, config.upgrade.ready_timeout, (ready) => progress({ phase: 'start', generation: gen.id, workers: gen.workers.length, ready }));
    } catch (err) {
      this.starting = undefined;
      gen.state = 'gone';
      for (const w of gen.workers) {
        w.stopping = true;
        w.kill('SIGKILL');
      }
      for (const b of fresh) b.handle.close();
      throw new MosnError('MOSN_ERR_RELOAD_FAILED', `rolled back, generation ${from.id} keeps serving: ${errorMessage(err)}`);
    }
    const ready = ms();
    // Switch: N+1 serves, N leaves.
    this.starting = undefined;
    const oldListeners = this.listeners;
    this.listeners = new Map(bound.map((b) => [b.name, b]));
    this.config = config;
    gen.state = 'current';
    this.current = gen;
    from.state = 'draining';
    this.draining.push(from);
    this.metrics.generation.set(gen.id);
    this.metrics.generationsDraining.set(this.draining.length);
    this.#updateWorkerGauge();
    this.log.info({ generation: gen.id, previous: from.id, release: release.dir }, 'new generation serving; old one hands over');
    // Connections may move to a listener of the same name and protocol.
    const targets = config.listeners.filter((l) => from.config.listeners.some((o) => o.name === l.name && o.protocol === l.protocol)).map((l) => l.name);
    const leaving = from.live();
    progress({ phase: 'migrate', generation: gen.id, leaving: leaving.length });
    const { migrated, remaining } = await this.#moveOut(leaving, targets);
    const handedOver = ms();
    // Every old worker has stopped accepting: listeners gone from the config close now.
    for (const [name, l] of oldListeners) {
      if (this.listeners.get(name)?.handle !== l.handle) {
        l.handle.close();
        this.log.info({ listener: name }, 'listener closed (removed from config or re-bound)');
      }
    }
    this.#enforceDrainingCap();
    progress({ phase: 'drain', generation: gen.id, migrated, remaining });
    await waitExits(from.workers, SETTLE_MS);
    const exited = from.live().length === 0;
    return {
      kind,
      ok: true,
      at,
      duration_ms: Math.round(performance.now() - t0),
      generation: gen.id,
      previous_generation: from.id,
      release: release.dir,
      version: release.version,
      migrated,
      remaining,
      old_generation_exited: exited,
      timings: { validated, ready, handed_over: handedOver, old_exited: exited ? Math.round(Math.max(...from.workers.map((w) => w.exitedAt - t0))) : null },
    };
  }

  #relayToSuccessor(conn: ExportedConn, handle: unknown): void {
    const h = handle as { close(): void } | undefined;
    if (!h || !this.#successor) return;
    if (conn.kind !== 'tcp' && conn.kind !== 'tunnel') this.migratedTotal.http++;
    else if (conn.part === 'down') this.migratedTotal[conn.kind]++;
    this.#successorSends++;
    this.#successor.send({ v: 1, t: 'conn_relay', conn }, handle, () => {
      this.#successorSends--;
      h.close();
    });
  }

  /**
   * Upgrade: hand the whole service over to a successor supervisor started
   * from `release` (docs/upgrade.md, "Supervisor handover"). Before the
   * successor is ready, any failure rolls back (it is killed, we keep
   * serving). After the commit our workers move their connections out to
   * its workers through both supervisors, and we exit once they are gone.
   */
  async #doHandover(opts: { release?: string | undefined }, progress: Progress, t0: number, at: string, control?: ControlContext): Promise<ReloadResult> {
    const from = this.current!;
    progress({ phase: 'validate', kind: 'upgrade' });
    const release = resolveRelease(opts.release);
    await this.#loadValidConfig();
    progress({ phase: 'start_supervisor', release: release.dir, node: release.node });
    const { peer } = spawnSuccessor(release, this.config.source, this.log);
    const inbox = new PeerInbox(peer);
    let successorPid = 0;
    const ms = (): number => Math.round((performance.now() - t0) * 10) / 10;
    const rollback = (why: string): never => {
      if (successorPid > 0) {
        try {
          process.kill(successorPid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      peer.disconnect();
      throw new MosnError('MOSN_ERR_RELOAD_FAILED', `rolled back, generation ${from.id} keeps serving: ${why}`);
    };
    const limit = this.config.upgrade.ready_timeout + 10_000;
    try {
      const { msg: hello } = await inbox.next(['sup_hello', 'sup_failed'], limit, 'the successor to start');
      if (hello.t === 'sup_failed') rollback(`the successor failed: ${hello.message}`);
      if (hello.t === 'sup_hello') {
        successorPid = hello.pid;
        this.log.info({ successor: hello.pid, version: hello.version, node: hello.node }, 'successor supervisor started');
      }
    } catch (err) {
      rollback(`the successor supervisor did not start: ${errorMessage(err)}`);
    }
    const state: HandoverState = {
      generation: this.#generationCounter,
      listeners: [...this.listeners.values()].map((l) => ({ name: l.name, address: l.address, port: l.port })),
      started_at: this.startedAt.toISOString(),
      migrated: this.migratedTotal,
      last_reload: this.lastReload ?? null,
    };
    peer.send({ v: 1, t: 'sup_state', state });
    for (const l of this.listeners.values()) peer.send({ v: 1, t: 'sup_listener', name: l.name }, l.handle);
    progress({ phase: 'start', successor: successorPid });
    let ready: Extract<PeerMessage, { t: 'sup_ready' }> | undefined;
    try {
      const { msg } = await inbox.next(['sup_ready', 'sup_failed'], limit, 'the successor to be ready');
      if (msg.t === 'sup_failed') rollback(msg.message);
      else ready = msg;
    } catch (err) {
      rollback(errorMessage(err));
    }
    const readyAt = ms();
    // Commit: the admin port and the lock pass to the successor; it takes
    // the control socket path (our listening socket stays open, unreachable,
    // until we exit: closing it would unlink the path it now owns).
    this.phase.to('handing_over', { successor: successorPid });
    if (this.#releaseLock) await this.#releaseLock().catch(() => undefined);
    this.#releaseLock = undefined;
    peer.send({ v: 1, t: 'sup_admin' }, (this.#admin as unknown as { _handle: unknown } | undefined)?._handle);
    peer.send({ v: 1, t: 'sup_commit', metrics: await this.aggregator.counts() });
    try {
      await inbox.next(['sup_committed'], 15_000, 'the successor to commit');
    } catch (err) {
      // It died at the last moment: take everything back.
      this.log.error({ err: errorMessage(err) }, 'successor failed during commit; taking the service back');
      this.#releaseLock = await acquireInstanceLock(this.config.control_socket, this.log);
      rollback(`the successor failed while committing: ${errorMessage(err)}`);
    }
    const committedAt = ms();
    // The successor answers on the admin socket now.
    await closeServer(this.#admin);
    this.#admin = undefined;
    this.#successor = peer;
    this.phase.to('handed_over', { successor: successorPid });
    for (const t of this.#restartTimers) clearTimeout(t);
    this.#restartTimers.clear();
    // Every old worker (current and draining generations) moves out.
    const leaving = this.#allWorkers();
    const targets = ready!.listeners;
    progress({ phase: 'migrate', successor: successorPid, leaving: leaving.length });
    const moved = await this.#moveOut(leaving, targets);
    const handedOver = ms();
    await waitExits(leaving, this.config.upgrade.drain_timeout + 2000);
    for (const w of leaving) w.kill('SIGKILL');
    while (this.#successorSends > 0) await new Promise((r) => setTimeout(r, 5));
    // Count this upgrade before the final counters go to the successor.
    this.metrics.reloads.labels('upgrade', 'success').inc();
    this.metrics.reloadDuration.labels('upgrade').observe((performance.now() - t0) / 1000);
    peer.send({ v: 1, t: 'sup_metrics', metrics: await this.aggregator.counts() });
    const result: ReloadResult = {
      kind: 'upgrade',
      ok: true,
      at,
      duration_ms: Math.round(performance.now() - t0),
      generation: ready!.generation,
      previous_generation: from.id,
      release: release.dir,
      version: release.version,
      migrated: moved.migrated,
      remaining: moved.remaining,
      old_generation_exited: leaving.every((w) => w.exited),
      supervisor: { previous_pid: process.pid, pid: successorPid, node: release.node },
      timings: { validated: 0, ready: readyAt, handed_over: handedOver, old_exited: ms(), committed: committedAt },
    };
    // Leave once the answer is out (or at once when nobody asked).
    const leave = (): void => {
      peer.disconnect();
      this.log.info({ successor: successorPid }, 'handed over; exiting');
      process.exit(0);
    };
    if (control) control.afterReply(leave);
    else setImmediate(leave);
    return result;
  }

  /**
   * Tells leaving workers to stop accepting and move their connections out
   * (to listeners named `targets`); resolves when each reported its first
   * sweep (or exited).
   */
  async #moveOut(leaving: readonly WorkerProcess[], targets: readonly string[]): Promise<{ migrated: number; remaining: number }> {
    const sweeps = leaving.map(
      (w) =>
        new Promise<{ migrated: number; remaining: number }>((resolve) => {
          w.once('export_done', (migrated: number, remaining: number) => resolve({ migrated, remaining }));
          w.once('exit', () => resolve({ migrated: 0, remaining: 0 }));
        }),
    );
    for (const w of leaving) {
      w.stopping = true;
      w.send({ v: 1, t: 'export', listeners: targets, drain_timeout_ms: this.config.upgrade.drain_timeout, migrate: true });
    }
    const done = await Promise.all(sweeps);
    return { migrated: done.reduce((n, d) => n + d.migrated, 0), remaining: done.reduce((n, d) => n + d.remaining, 0) };
  }

  /** Loads and validates the config file; every problem becomes one MOSN_ERR_CONFIG_INVALID. */
  async #loadValidConfig(): Promise<Config> {
    try {
      return await loadConfig(this.config.source);
    } catch (err) {
      if (err instanceof ConfigError) {
        const e = new MosnError('MOSN_ERR_CONFIG_INVALID', `config is invalid; nothing changed:\n${err.message}`);
        (e as MosnError & { details?: unknown }).details = { issues: err.issues };
        throw e;
      }
      throw err;
    }
  }

  /** Past `max_draining_generations`, the oldest draining generation is closed. */
  #enforceDrainingCap(): void {
    while (this.draining.length > this.config.upgrade.max_draining_generations) {
      const oldest = this.draining[0]!;
      this.log.warn({ generation: oldest.id, max: this.config.upgrade.max_draining_generations }, 'too many draining generations: closing the oldest');
      for (const w of oldest.live()) w.send({ v: 1, t: 'shutdown' });
      oldest.state = 'gone';
      this.draining.shift();
      this.metrics.generationsDraining.set(this.draining.length);
    }
  }

  /**
   * Graceful (drain within drain_timeout) or fast stop. Idempotent, except
   * that a fast stop during a graceful one escalates it (SIGINT after SIGTERM).
   */
  stop(graceful: boolean): Promise<void> {
    if (this.#stopPromise) {
      if (!graceful && this.#stopGraceful) {
        this.#stopGraceful = false;
        this.log.warn('fast stop requested during a graceful stop: closing every connection now');
        for (const w of this.#allWorkers()) w.send({ v: 1, t: 'shutdown' });
      }
      return this.#stopPromise;
    }
    this.#stopGraceful = graceful;
    this.#stopPromise = this.#doStop(graceful);
    return this.#stopPromise;
  }

  async #doStop(graceful: boolean): Promise<void> {
    this.phase.to('stopping', { graceful });
    if (this.#statusTimer) clearInterval(this.#statusTimer);
    await this.#sd.stopping();
    for (const t of this.#restartTimers) clearTimeout(t);
    this.#restartTimers.clear();
    const workers = this.#allWorkers();
    const timeout = graceful ? this.config.upgrade.drain_timeout : 2000;
    for (const w of workers) {
      w.stopping = true;
      w.send(graceful ? { v: 1, t: 'drain', timeout_ms: this.config.upgrade.drain_timeout } : { v: 1, t: 'shutdown' });
    }
    // Nobody accepts any more: close our copy of every listening socket now,
    // so new connections are refused at once instead of waiting in a backlog
    // that is reset when we exit.
    for (const l of this.listeners.values()) l.handle.close();
    this.listeners.clear();
    await waitExits(workers, timeout + 2000);
    for (const w of workers) w.kill('SIGKILL');
    await waitExits(workers, 2000);
    await this.#teardown();
    this.phase.to('stopped');
    this.#markStopped();
  }

  async #teardown(controlPath = this.config.control_socket): Promise<void> {
    for (const l of this.listeners.values()) l.handle.close();
    this.listeners.clear();
    await Promise.all([closeServer(this.#control), closeServer(this.#admin)]);
    if (this.#control) fs.rmSync(controlPath, { force: true });
    if (this.#releaseLock) await this.#releaseLock().catch(() => undefined);
    this.#releaseLock = undefined;
  }

  reopenLogs(): void {
    for (const w of this.#allWorkers()) w.send({ v: 1, t: 'log_reopen' });
  }
}

function waitExits(workers: readonly WorkerProcess[], timeoutMs: number): Promise<void> {
  const live = workers.filter((w) => !w.exited);
  if (live.length === 0) return Promise.resolve();
  return new Promise((resolve) => {
    let left = live.length;
    const timer = setTimeout(resolve, timeoutMs);
    for (const w of live) {
      w.once('exit', () => {
        if (--left === 0) {
          clearTimeout(timer);
          resolve();
        }
      });
    }
  });
}

function closeServer(s: net.Server | http.Server | undefined): Promise<void> {
  if (!s) return Promise.resolve();
  return new Promise((resolve) => {
    s.close(() => resolve());
    (s as http.Server).closeAllConnections?.();
  });
}
