// One worker process as the supervisor sees it: the child, its phase, its
// request/reply bookkeeping over IPC.
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { checkMessage, unrecognized, assertNever, type ConnectionCounts, type ListenerBinding, type SupervisorToWorker, type WorkerPhase, type WorkerToSupervisor } from '../common/ipc.js';
import type { Logger } from '../common/log.js';
import type { Config } from '../config/types.js';
import type { BoundListener } from './listeners.js';

export interface WorkerSpawnOptions {
  readonly script: string;
  readonly execPath: string;
  readonly generation: number;
  readonly slot: number;
  readonly config: Config;
  readonly listeners: readonly BoundListener[];
  readonly log: Logger;
}

const EMPTY_COUNTS: ConnectionCounts = { active: 0, idle: 0, in_request: 0, tunnel: 0 };

/**
 * Events: 'ready', 'exit' (code, signal), 'metrics' (snapshot), 'phase'.
 */
/**
 * Node flags for worker processes (bench/RESULTS.md has the measurements):
 * - A 4 MB young generation (V8's default grows to 16 MB) keeps a worker
 *   holding 10,000 idle connections about 18 MB smaller at no measured cost
 *   in req/s.
 * - No allocation-site pretenuring. V8 watches which allocation sites'
 *   objects survive a young-generation GC and then allocates straight into
 *   the old generation from the sites that look long-lived. A proxy's
 *   per-request objects (header arrays, the request's closures) are often
 *   in flight when a GC runs, and V8 misjudges them: a worker under load
 *   promoted ~140 KB per scavenge and needed a full mark-compact every
 *   second. Without pretenuring: under 1 KB per scavenge, no mark-compact,
 *   37 % less scavenge time.
 * Extra flags come from MOSN_WORKER_NODE_ARGS (profiling, heap limits; later
 * flags win): MOSN_WORKER_NODE_ARGS="--cpu-prof --max-semi-space-size=16".
 */
export function workerNodeArgs(env: NodeJS.ProcessEnv = process.env): string[] {
  return ['--max-semi-space-size=4', '--no-allocation-site-pretenuring', ...(env['MOSN_WORKER_NODE_ARGS'] ?? '').split(/\s+/).filter((a) => a !== '')];
}

/**
 * glibc's malloc gives the top of its heap back to the kernel whenever more
 * than 128 KiB are free there. A worker proxying bodies frees tens of MB of
 * body chunks at each GC and allocates them again right after, so with the
 * default every chunk landed on freshly zeroed pages: 1.3-6 page faults per
 * 64 KiB response and 55-87 per 1 MiB upload, up to twice the CPU per
 * request (bench/RESULTS.md). Workers keep up to this much free heap.
 */
export const WORKER_MALLOC_TRIM_THRESHOLD = 64 * 1024 * 1024;

/**
 * The environment of a worker process: the supervisor's, with MOSN_ROLE and
 * MALLOC_TRIM_THRESHOLD_ (unless the operator set the trim threshold, as
 * MALLOC_TRIM_THRESHOLD_ or in GLIBC_TUNABLES). Other C libraries ignore it.
 */
export function workerEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env, MOSN_ROLE: 'worker' };
  if (env['MALLOC_TRIM_THRESHOLD_'] === undefined && !/glibc\.malloc\.trim_threshold=/.test(env['GLIBC_TUNABLES'] ?? '')) {
    out['MALLOC_TRIM_THRESHOLD_'] = String(WORKER_MALLOC_TRIM_THRESHOLD);
  }
  return out;
}

export class WorkerProcess extends EventEmitter {
  readonly child: ChildProcess;
  readonly slot: number;
  readonly generation: number;
  readonly startedAt = Date.now();
  phase: WorkerPhase | 'spawned' | 'exited' = 'spawned';
  connections: ConnectionCounts = EMPTY_COUNTS;
  /** Set when the supervisor asked it to leave (not a crash). */
  stopping = false;
  exited = false;
  /** performance.now() at exit. */
  exitedAt = 0;
  readonly #pending = new Map<number, (msg: WorkerToSupervisor) => void>();
  #nextId = 1;
  readonly #log: Logger;

  constructor(o: WorkerSpawnOptions) {
    super();
    this.slot = o.slot;
    this.generation = o.generation;
    this.#log = o.log;
    this.child = fork(o.script, [], {
      execPath: o.execPath,
      execArgv: workerNodeArgs(),
      serialization: 'json',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: workerEnv(),
    });
    this.child.on('message', (raw, handle) => this.#onMessage(raw, handle));
    this.child.on('error', (err) => this.#log.error({ err, slot: this.slot }, 'worker process error'));
    this.child.on('exit', (code, signal) => {
      this.exited = true;
      this.exitedAt = performance.now();
      this.phase = 'exited';
      for (const cb of this.#pending.values()) cb({ v: 1, t: 'status', id: -1, connections: EMPTY_COUNTS });
      this.#pending.clear();
      this.emit('exit', code, signal);
    });
    const bindings: ListenerBinding[] = o.listeners.map((l) => ({ name: l.name, address: l.address, port: l.port }));
    this.send({ v: 1, t: 'init', generation: o.generation, workerId: o.slot, config: o.config, listeners: bindings });
    for (const l of o.listeners) this.sendHandle({ v: 1, t: 'listener', name: l.name }, l.handle);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  send(msg: SupervisorToWorker): void {
    if (!this.child.connected) return;
    this.child.send(msg, (err) => {
      if (err && !this.exited) this.#log.debug({ err, slot: this.slot }, 'IPC send failed');
    });
  }

  sendHandle(msg: SupervisorToWorker, handle: unknown, cb?: (err: Error | null) => void): void {
    if (!this.child.connected) {
      cb?.(new Error('worker IPC channel closed'));
      return;
    }
    this.child.send(msg, handle as never, (err) => {
      if (err && !this.exited) this.#log.error({ err, slot: this.slot, t: msg.t }, 'could not send a handle');
      cb?.(err);
    });
  }

  /** Asks for a fresh metrics snapshot; resolves undefined on timeout/exit. */
  request<T extends WorkerToSupervisor>(make: (id: number) => SupervisorToWorker, timeoutMs: number): Promise<T | undefined> {
    if (this.exited || !this.child.connected) return Promise.resolve(undefined);
    const id = this.#nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.#pending.set(id, (m) => {
        clearTimeout(timer);
        resolve(m.t === 'status' && m.id === -1 ? undefined : (m as T));
      });
      this.send(make(id));
    });
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.exited) this.child.kill(signal);
  }

  #onMessage(raw: unknown, handle: unknown): void {
    const checked = checkMessage<WorkerToSupervisor>(raw);
    if (!checked.ok) {
      this.send(unrecognized(checked.of, checked.reason));
      return;
    }
    const msg = checked.msg;
    switch (msg.t) {
      case 'ready':
        this.emit('ready', msg.listeners);
        return;
      case 'phase':
        this.phase = msg.phase;
        this.emit('phase', msg.phase);
        return;
      case 'metrics':
        this.connections = msg.connections;
        this.emit('metrics', msg.snapshot.metrics);
        if (msg.id !== null) this.#resolve(msg.id, msg);
        return;
      case 'status':
        this.connections = msg.connections;
        this.#resolve(msg.id, msg);
        return;
      case 'fatal':
        this.#log.error({ slot: this.slot, code: msg.code }, `worker fatal: ${msg.message}`);
        return;
      case 'unrecognized':
        this.#log.warn({ slot: this.slot, of: msg.of, reason: msg.reason }, 'worker did not recognise a message');
        return;
      case 'conn_export':
        this.emit('conn_export', msg.conn, handle);
        return;
      case 'fence_release':
        this.emit('fence_release', msg.session, msg.dir);
        return;
      case 'export_done':
        this.emit('export_done', msg.migrated, msg.remaining);
        return;
      default:
        assertNever(msg, 'worker message');
    }
  }

  #resolve(id: number, msg: WorkerToSupervisor): void {
    const cb = this.#pending.get(id);
    if (cb) {
      this.#pending.delete(id);
      cb(msg);
    }
  }
}
