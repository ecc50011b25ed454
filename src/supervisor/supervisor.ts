// The supervisor: owns the listening sockets, the config, the worker
// generations, the control socket, the admin endpoint and metrics
// aggregation. It never touches request bytes.
import type net from 'node:net';
import type http from 'node:http';
import { fileURLToPath } from 'node:url';
import { MosnError, errorMessage } from '../common/errors.js';
import type { ControlRequest } from '../common/control.js';
import type { ConnectionCounts } from '../common/ipc.js';
import { PhaseTracker, type Logger } from '../common/log.js';
import { SupervisorMetrics } from '../common/metrics.js';
import { detectInternals } from '../common/node-internals.js';
import { VERSION } from '../common/version.js';
import type { Config } from '../config/types.js';
import { startAdmin } from './admin.js';
import { startControlServer, type ControlContext } from './control-server.js';
import { bindAll, type BoundListener } from './listeners.js';
import { acquireInstanceLock } from './lock.js';
import { MetricsAggregator } from './metrics-agg.js';
import { WorkerProcess } from './worker-process.js';

export type SupervisorPhase = 'starting' | 'binding' | 'spawning' | 'running' | 'stopping' | 'stopped';
const PHASES: readonly SupervisorPhase[] = ['starting', 'binding', 'spawning', 'running', 'stopping', 'stopped'];

export type GenerationState = 'starting' | 'current' | 'draining' | 'gone';

export class Generation {
  state: GenerationState = 'starting';
  readonly workers: WorkerProcess[] = [];
  constructor(
    readonly id: number,
    readonly config: Config,
    readonly listeners: readonly BoundListener[],
    readonly release: { script: string; execPath: string },
  ) {}

  live(): WorkerProcess[] {
    return this.workers.filter((w) => !w.exited);
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
  readonly draining: Generation[] = [];
  readonly listeners = new Map<string, BoundListener>();
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
  }

  async start(): Promise<void> {
    const internals = detectInternals();
    if (!internals.httpMigration) this.log.warn({ missing: internals.missing }, 'Node internals for live connection migration are missing: reloads will drain politely instead');
    this.#releaseLock = await acquireInstanceLock(this.config.control_socket, this.log);
    try {
      this.phase.to('binding');
      for (const b of bindAll(this.config.listeners)) {
        this.listeners.set(b.name, b);
        this.log.info({ listener: b.name, address: b.address, port: b.port, protocol: b.config.protocol }, 'listener bound');
      }
      this.#control = await startControlServer(this.config.control_socket, (req, ctx) => this.#onControl(req, ctx), this.log);
      this.#admin = await startAdmin(
        this.config.admin.address,
        {
          metrics: () => this.#renderMetrics(),
          ready: () => this.phase.phase === 'running',
          configDump: () => this.config,
          status: () => this.status(),
        },
        this.log,
      ).catch((err: unknown) => {
        throw new MosnError('MOSN_ERR_LISTEN', `admin: cannot bind ${this.config.admin.address.text}: ${errorMessage(err)}`, { cause: err });
      });
      const a = this.#admin.address() as net.AddressInfo;
      this.#admin_address = { address: a.address, port: a.port };
      this.log.info({ admin: `${a.address}:${a.port}`, control_socket: this.config.control_socket }, 'admin and control endpoints up');
      this.phase.to('spawning');
      const gen = this.#newGeneration(this.config, [...this.listeners.values()]);
      await this.#waitReady(gen, this.config.upgrade.ready_timeout);
      gen.state = 'current';
      this.current = gen;
      this.metrics.generation.set(gen.id);
      this.#updateWorkerGauge();
      this.phase.to('running', { generation: gen.id, workers: gen.workers.length });
    } catch (err) {
      await this.#teardown();
      throw err;
    }
  }

  #release(): { script: string; execPath: string } {
    return { script: fileURLToPath(new URL('../worker/main.js', import.meta.url)), execPath: process.execPath };
  }

  #newGeneration(config: Config, listeners: readonly BoundListener[]): Generation {
    const gen = new Generation(++this.#generationCounter, config, listeners, this.#release());
    for (let slot = 0; slot < config.workers; slot++) this.#spawn(gen, slot);
    return gen;
  }

  #spawn(gen: Generation, slot: number): WorkerProcess {
    const w = new WorkerProcess({
      script: gen.release.script,
      execPath: gen.release.execPath,
      generation: gen.id,
      slot,
      config: gen.config,
      listeners: gen.listeners,
      log: this.log,
    });
    gen.workers[slot] = w;
    w.on('metrics', (m: unknown[]) => this.aggregator.update(w.pid, m));
    w.on('exit', (code: number | null, signal: string | null) => this.#onWorkerExit(gen, w, code, signal));
    this.log.info({ generation: gen.id, slot, worker_pid: w.pid }, 'worker spawned');
    return w;
  }

  #waitReady(gen: Generation, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      let pending = gen.workers.length;
      const timer = setTimeout(() => {
        reject(new MosnError('MOSN_ERR_WORKER_START', `generation ${gen.id}: ${pending} of ${gen.workers.length} workers not ready within ${timeoutMs} ms`));
      }, timeoutMs);
      for (const w of gen.workers) {
        w.once('ready', () => {
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
      if (gen.state !== 'current' || this.phase.phase !== 'running') return;
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
    return this.aggregator.render();
  }

  #allWorkers(): WorkerProcess[] {
    const gens = [...(this.current ? [this.current] : []), ...this.draining];
    return gens.flatMap((g) => g.live());
  }

  async status(): Promise<unknown> {
    const gens = [...(this.current ? [this.current] : []), ...this.draining];
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
        workers: g.workers.map((w) => ({ slot: w.slot, pid: w.pid, phase: w.phase, connections: w.connections })),
      })),
      listeners: [...this.listeners.values()].map((l) => ({ name: l.name, protocol: l.config.protocol, address: l.address, port: l.port })),
      connections: total,
    };
  }

  async #onControl(req: ControlRequest, _ctx: ControlContext): Promise<unknown> {
    switch (req.command) {
      case 'status':
        return this.status();
      case 'stop':
        if (this.phase.phase === 'stopping') throw new MosnError('MOSN_ERR_SHUTTING_DOWN', 'the supervisor is already stopping');
        setImmediate(() => void this.stop(true));
        return { stopping: true, drain_timeout_ms: this.config.upgrade.drain_timeout };
      case 'reload':
      case 'upgrade':
        throw new MosnError('MOSN_ERR_RELOAD_FAILED', `${req.command} is not available in this release`);
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

  async #teardown(): Promise<void> {
    for (const l of this.listeners.values()) l.handle.close();
    this.listeners.clear();
    await Promise.all([closeServer(this.#control), closeServer(this.#admin)]);
    if (this.#control) {
      const fs = await import('node:fs');
      fs.rmSync(this.config.control_socket, { force: true });
    }
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
