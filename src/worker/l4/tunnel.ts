// A bidirectional byte pump between two sockets: the TCP proxy session and
// the HTTP Upgrade tunnel. Backpressure per direction (pause the source
// while the destination's buffer is full), half-close honoured (EOF from one
// side becomes FIN to the other, the other direction keeps flowing), resets
// propagated, and an idle timeout over both directions.
import type net from 'node:net';
import type { ErrorCode } from '../../common/errors.js';

export interface TunnelResult {
  readonly bytesDownToUp: number;
  readonly bytesUpToDown: number;
  /** undefined for a clean close (both sides finished). */
  readonly error: ErrorCode | undefined;
}

class Direction {
  bytes = 0;
  ended = false;
  constructor(
    readonly src: net.Socket,
    readonly dst: net.Socket,
    private readonly tunnel: Tunnel,
  ) {}

  start(): void {
    const { src, dst } = this;
    src.on('data', (chunk: Buffer) => {
      this.bytes += chunk.length;
      this.tunnel.touch();
      if (!dst.write(chunk)) src.pause();
    });
    dst.on('drain', () => src.resume());
    src.on('end', () => {
      this.ended = true;
      // Half-close: pass the FIN on once everything before it is written.
      if (!dst.destroyed) dst.end();
    });
    src.resume();
  }
}

export class Tunnel {
  readonly #down: net.Socket;
  readonly #up: net.Socket;
  readonly #d2u: Direction;
  readonly #u2d: Direction;
  readonly #idleMs: number;
  #lastActivity = Date.now();
  #idleTimer: NodeJS.Timeout | undefined;
  #closedSockets = 0;
  #error: ErrorCode | undefined;
  #done = false;
  readonly #onDone: (r: TunnelResult) => void;

  constructor(downstream: net.Socket, upstream: net.Socket, idleMs: number, onDone: (r: TunnelResult) => void) {
    this.#down = downstream;
    this.#up = upstream;
    this.#idleMs = idleMs;
    this.#onDone = onDone;
    this.#d2u = new Direction(downstream, upstream, this);
    this.#u2d = new Direction(upstream, downstream, this);
  }

  start(): void {
    for (const [sock, code] of [
      [this.#down, 'MOSN_ERR_DOWNSTREAM_RESET'],
      [this.#up, 'MOSN_ERR_UPSTREAM_RESET'],
    ] as const) {
      sock.on('error', () => this.#fail(code));
      sock.on('close', (hadError: boolean) => {
        if (hadError) this.#fail(code);
        this.#closedSockets++;
        // One side gone for good while the other still has data to pass on:
        // wait for the other to finish; if it cannot (destroyed), close both.
        if (this.#closedSockets === 2) this.#finish();
        else if (!this.#d2u.ended || !this.#u2d.ended) {
          if (sock.readableEnded && sock.writableFinished) return;
          this.#fail(code);
        }
      });
    }
    this.#d2u.start();
    this.#u2d.start();
    if (this.#idleMs > 0) this.#armIdle();
  }

  touch(): void {
    this.#lastActivity = Date.now();
  }

  get bytesDownToUp(): number {
    return this.#d2u.bytes;
  }

  get bytesUpToDown(): number {
    return this.#u2d.bytes;
  }

  /** Close both sides now. */
  destroy(code: ErrorCode | undefined = undefined): void {
    if (code) this.#error ??= code;
    this.#down.destroy();
    this.#up.destroy();
  }

  #armIdle(): void {
    const check = (): void => {
      if (this.#done) return;
      const idleFor = Date.now() - this.#lastActivity;
      if (idleFor >= this.#idleMs) {
        this.destroy('MOSN_ERR_UPSTREAM_IDLE_TIMEOUT');
        return;
      }
      this.#idleTimer = setTimeout(check, this.#idleMs - idleFor);
      this.#idleTimer.unref();
    };
    this.#idleTimer = setTimeout(check, this.#idleMs);
    this.#idleTimer.unref();
  }

  #fail(code: ErrorCode): void {
    if (this.#done) return;
    this.#error ??= code;
    // Propagate an abortive close as an abortive close.
    for (const s of [this.#down, this.#up]) {
      if (!s.destroyed) abortSocket(s);
    }
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#onDone({ bytesDownToUp: this.#d2u.bytes, bytesUpToDown: this.#u2d.bytes, error: this.#error });
  }
}

/** Close with RST when possible (mirrors an abortive close from the other side). */
export function abortSocket(s: net.Socket): void {
  if ((s as unknown as { _handle: unknown })._handle) s.resetAndDestroy();
  else s.destroy();
}
