// The access log: one JSON line per HTTP request or L4 session, to stdout or
// to a file that is reopened on SIGUSR1 (the supervisor forwards it).
import { pino, type Logger } from 'pino';
import type { ErrorCode } from '../common/errors.js';

export interface AccessEntry {
  listener: string;
  kind: 'http' | 'tcp' | 'tunnel';
  method?: string;
  host?: string;
  path?: string;
  status?: number;
  vhost?: string;
  route?: string;
  upstream?: string;
  duration_ms: number;
  bytes_in: number;
  bytes_out: number;
  error?: ErrorCode;
  /** What exactly was wrong with a malformed request (the parser's code). */
  detail?: string;
  client?: string;
}

export class AccessLog {
  /** False with `access_log: off`: callers on the request path skip building entries. */
  readonly enabled: boolean;
  readonly #logger: Logger | undefined;
  readonly #dest: ReturnType<typeof pino.destination> | undefined;

  constructor(target: string, bindings: Record<string, unknown>) {
    this.enabled = target !== 'off';
    if (!this.enabled) return;
    this.#dest = pino.destination(target === 'stdout' ? { dest: 1, sync: false } : { dest: target, sync: false, mkdir: true, append: true });
    this.#logger = pino({ base: bindings, timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: () => ({ log: 'access' }) } }, this.#dest);
  }

  write(e: AccessEntry): void {
    this.#logger?.info(e);
  }

  reopen(): void {
    this.#dest?.reopen();
  }

  flush(): void {
    try {
      this.#dest?.flushSync();
    } catch {
      // not ready yet (async destination still opening): nothing to flush
    }
  }
}
