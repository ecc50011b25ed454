// Structured logs: pino JSON to stdout with role, pid and generation bound.
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

export type Role = 'supervisor' | 'worker' | 'cli';

export function createLogger(role: Role, bindings: Record<string, unknown> = {}, level = process.env['MOSN_LOG_LEVEL'] ?? 'info'): Logger {
  return pino({
    level,
    base: { role, pid: process.pid, ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}

/**
 * A named-phase state machine that logs every transition (STYLE: lifecycle
 * phases are named states, logged on every transition, exported as metric).
 */
export class PhaseTracker<P extends string> {
  #phase: P;
  readonly #log: Logger;
  readonly #what: string;
  readonly #onChange: ((p: P) => void) | undefined;
  readonly history: P[] = [];

  constructor(what: string, initial: P, log: Logger, onChange?: (p: P) => void) {
    this.#what = what;
    this.#phase = initial;
    this.#log = log;
    this.#onChange = onChange;
    this.history.push(initial);
    log.info({ phase: initial }, `${what} phase ${initial}`);
    onChange?.(initial);
  }

  get phase(): P {
    return this.#phase;
  }

  to(next: P, details: Record<string, unknown> = {}): void {
    if (next === this.#phase) return;
    const from = this.#phase;
    this.#phase = next;
    this.history.push(next);
    this.#log.info({ ...details, phase: next, from }, `${this.#what} phase ${from} -> ${next}`);
    this.#onChange?.(next);
  }
}
