// The IPC protocol between supervisor and workers (and, later, between
// supervisors of different releases). One typed, versioned file: every
// message carries `v` (protocol version) and `t` (its type). Receivers
// dispatch with an exhaustive switch; an unknown type or version gets an
// explicit `unrecognized` reply, never silence.
import type { Config } from '../config/types.js';

export const IPC_VERSION = 1;

export interface MetricSnapshot {
  /** Every metric of the worker, in the shape of prom-client's `getMetricsAsJSON()` (src/worker/metrics.ts). */
  readonly metrics: unknown[];
}

export interface ConnectionCounts {
  readonly active: number;
  readonly idle: number;
  readonly in_request: number;
  readonly tunnel: number;
}

export interface ListenerBinding {
  readonly name: string;
  /** The actual bound address (port 0 resolved). */
  readonly address: string;
  readonly port: number;
}

export type Direction = 'd2u' | 'u2d';

/** An idle HTTP/1.1 keep-alive connection at a message boundary (one fd). */
export interface HttpExport {
  readonly kind: 'http';
  readonly listener: string;
  /** Generations this connection has been served by before. */
  readonly migrations: number;
}

/**
 * One half of an L4 session (TCP proxy or Upgrade tunnel): two messages,
 * part 'down' (client socket, carries the session's data) then 'up'
 * (upstream socket). Both go to the same importer.
 */
export interface L4Export {
  readonly kind: 'tcp' | 'tunnel';
  readonly listener: string;
  /** Stable across chained migrations: "<first pid>:<id>". */
  readonly session: string;
  readonly part: 'down' | 'up';
  /** base64 bytes read from one side and not yet written to the other. */
  readonly carried?: { readonly d2u: string; readonly u2d: string };
  /** The exporter still has writes in flight in that direction; a fence_release follows. */
  readonly pending?: { readonly d2u: boolean; readonly u2d: boolean };
  readonly upstream?: string;
  readonly migrations: number;
}

export type ExportedConn = HttpExport | L4Export;

// ---- supervisor -> worker ------------------------------------------------
export type SupervisorToWorker =
  | { v: 1; t: 'init'; generation: number; workerId: number; config: Config; listeners: readonly ListenerBinding[] }
  /** Carries a listening handle (bound, not yet listening) for `name`. */
  | { v: 1; t: 'listener'; name: string }
  | { v: 1; t: 'metrics_request'; id: number }
  | { v: 1; t: 'status_request'; id: number }
  /** Stop accepting on every listener; keep serving existing connections. */
  | { v: 1; t: 'stop_accepting' }
  /** Graceful stop: stop accepting, finish in-flight work, close, exit by deadline. */
  | { v: 1; t: 'drain'; timeout_ms: number }
  /** Fast stop. */
  | { v: 1; t: 'shutdown' }
  | { v: 1; t: 'log_reopen' }
  /**
   * Leave the serving set: stop accepting, move every connection that can
   * move (to the listeners named, same protocol) out through the supervisor,
   * drain the rest politely, exit when empty or at the deadline.
   */
  | { v: 1; t: 'export'; listeners: readonly string[]; drain_timeout_ms: number; migrate: boolean }
  /** Carries a connection's fd; `fenced` directions must not be written until released. */
  | { v: 1; t: 'conn_import'; conn: ExportedConn; fenced?: { d2u: boolean; u2d: boolean } }
  | { v: 1; t: 'fence_release'; session: string; dir: Direction }
  | { v: 1; t: 'unrecognized'; of: string; reason: string };

// ---- worker -> supervisor ------------------------------------------------
export type WorkerToSupervisor =
  | { v: 1; t: 'ready'; listeners: readonly string[] }
  | { v: 1; t: 'phase'; phase: WorkerPhase }
  | { v: 1; t: 'metrics'; id: number | null; snapshot: MetricSnapshot; connections: ConnectionCounts }
  | { v: 1; t: 'status'; id: number; connections: ConnectionCounts }
  | { v: 1; t: 'fatal'; code: string; message: string }
  /** Carries a connection's fd (see ExportedConn). */
  | { v: 1; t: 'conn_export'; conn: ExportedConn }
  /** The exporter's writes in `dir` are done and its copy of that socket closed. */
  | { v: 1; t: 'fence_release'; session: string; dir: Direction }
  /** First export sweep finished: what moved, what stays to drain here. */
  | { v: 1; t: 'export_done'; migrated: number; remaining: number }
  | { v: 1; t: 'unrecognized'; of: string; reason: string };

export type WorkerPhase = 'starting' | 'ready' | 'serving' | 'exporting' | 'draining' | 'stopped';

export type IpcMessage = SupervisorToWorker | WorkerToSupervisor;

/** Parses an incoming message: returns it typed, or the reason it is not ours. */
export function checkMessage<M extends { v: number; t: string }>(raw: unknown): { ok: true; msg: M } | { ok: false; of: string; reason: string } {
  if (typeof raw !== 'object' || raw === null) return { ok: false, of: typeof raw, reason: 'not an object' };
  const r = raw as { v?: unknown; t?: unknown };
  const of = typeof r.t === 'string' ? r.t : '?';
  if (r.v !== IPC_VERSION) return { ok: false, of, reason: `unsupported protocol version ${String(r.v)} (this side speaks ${IPC_VERSION})` };
  if (typeof r.t !== 'string') return { ok: false, of, reason: 'missing message type' };
  return { ok: true, msg: raw as M };
}

export function unrecognized(of: string, reason: string): { v: 1; t: 'unrecognized'; of: string; reason: string } {
  return { v: 1, t: 'unrecognized', of, reason };
}

/** For exhaustive switches: a compile error when a message type is unhandled. */
export function assertNever(x: never, what: string): never {
  throw new Error(`unhandled ${what}: ${JSON.stringify(x)}`);
}

// ---- supervisor <-> supervisor (handover) ---------------------------------
// Between the running supervisor ("old") and its successor ("new"), which
// may be another release on another Node.js: JSON, versioned, and every
// unknown message answered with `unrecognized`. Sequence (docs/upgrade.md):
// new: sup_hello -> old: sup_state + sup_listener (with handles) -> new:
// sup_ready | sup_failed -> old: sup_commit -> new: sup_committed -> old:
// conn_relay / fence_release while its workers move out -> old: sup_metrics
// (final counters) -> old exits.

export interface HandoverState {
  /** The generation counter: the successor's first generation is this + 1. */
  readonly generation: number;
  /** Listener handles that follow as sup_listener messages. */
  readonly listeners: readonly ListenerBinding[];
  readonly started_at: string;
  readonly migrated: { readonly http: number; readonly tcp: number; readonly tunnel: number };
  readonly last_reload: unknown;
}

export type PeerMessage =
  | { v: 1; t: 'sup_hello'; pid: number; version: string; node: string }
  | { v: 1; t: 'sup_state'; state: HandoverState }
  /** Carries a listening handle (bound, listening) for `name`. */
  | { v: 1; t: 'sup_listener'; name: string }
  | { v: 1; t: 'sup_ready'; generation: number; listeners: readonly string[] }
  | { v: 1; t: 'sup_failed'; code: string; message: string }
  /** The old supervisor released the lock and the admin port: take them, and the control socket path. */
  | { v: 1; t: 'sup_commit'; metrics: unknown[] }
  /** Carries the admin endpoint's listening handle (sent right before sup_commit). */
  | { v: 1; t: 'sup_admin' }
  | { v: 1; t: 'sup_committed'; pid: number }
  /** A connection leaving an old worker, relayed to the successor (carries its fd). */
  | { v: 1; t: 'conn_relay'; conn: ExportedConn }
  | { v: 1; t: 'fence_release'; session: string; dir: Direction }
  /** Counters of the old side once its workers are gone (replaces the commit-time baseline). */
  | { v: 1; t: 'sup_metrics'; metrics: unknown[] }
  | { v: 1; t: 'unrecognized'; of: string; reason: string };
