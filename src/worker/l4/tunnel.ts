// A bidirectional byte pump between two sockets: the TCP proxy session and
// the HTTP Upgrade tunnel. Backpressure per direction (pause the source
// while the destination's buffer is full), half-close honoured (EOF from one
// side becomes FIN to the other, the other direction keeps flowing), resets
// propagated, and an idle timeout over both directions.
//
// Migration (docs/upgrade.md): `freeze()` stops reading both sockets for
// good and returns what was read but not passed on; the old owner then only
// finishes the writes it already started. A tunnel built from an import
// starts reading at once but holds a *fenced* direction's bytes (bounded by
// a high-water mark) until the old owner's writes in that direction are
// done, then writes the carried bytes first: no byte lost, duplicated or
// reordered.
import type net from 'node:net';
import type { ErrorCode } from '../../common/errors.js';
import { readEofSeen, stopReading, takeBuffered } from '../../common/node-internals.js';

/** Per-direction bytes a tunnel holds before it pauses its source. */
export const TUNNEL_HIGH_WATER = 64 * 1024;

export interface TunnelResult {
  readonly bytesDownToUp: number;
  readonly bytesUpToDown: number;
  /** undefined for a clean close (both sides finished). */
  readonly error: ErrorCode | undefined;
}

export interface TunnelImport {
  readonly carried: { readonly d2u: Buffer; readonly u2d: Buffer };
  readonly fenced: { readonly d2u: boolean; readonly u2d: boolean };
}

export interface FrozenTunnel {
  readonly down: net.Socket;
  readonly up: net.Socket;
  readonly carried: { readonly d2u: Buffer; readonly u2d: Buffer };
  /** This process still has writes in flight towards the direction's destination. */
  readonly pending: { readonly d2u: boolean; readonly u2d: boolean };
}

const EMPTY = Buffer.alloc(0);

class Direction {
  bytes = 0;
  /** EOF from the source was seen. */
  ended = false;
  #fenced: boolean;
  #carried: Buffer;
  #queue: Buffer[] = [];
  #queued = 0;

  constructor(
    readonly src: net.Socket,
    readonly dst: net.Socket,
    private readonly tunnel: Tunnel,
    carried: Buffer,
    fenced: boolean,
  ) {
    this.#carried = carried;
    this.#fenced = fenced;
  }

  start(): void {
    const { src, dst } = this;
    src.on('data', (chunk: Buffer) => {
      this.bytes += chunk.length;
      this.tunnel.touch();
      if (this.#fenced) {
        this.#queue.push(chunk);
        this.#queued += chunk.length;
        if (this.#queued >= TUNNEL_HIGH_WATER) src.pause();
      } else if (!dst.write(chunk)) src.pause();
    });
    dst.on('drain', () => {
      if (!this.#fenced) src.resume();
    });
    src.on('end', () => {
      this.ended = true;
      // Half-close: pass the FIN on once everything before it is written.
      if (!this.#fenced && !dst.destroyed) dst.end();
    });
    if (this.#fenced) src.resume();
    else this.#flushHeld();
  }

  /** The previous owner finished its writes: ours may go now, carried first. */
  release(): void {
    if (!this.#fenced) return;
    this.#fenced = false;
    this.#flushHeld();
  }

  #flushHeld(): void {
    const { src, dst } = this;
    let ok = true;
    if (this.#carried.length > 0) ok = dst.write(this.#carried);
    this.#carried = EMPTY;
    for (const c of this.#queue) ok = dst.write(c) && ok;
    this.#queue = [];
    this.#queued = 0;
    if (this.ended) {
      if (!dst.destroyed) dst.end();
    } else if (ok) src.resume();
    else src.pause();
  }

  /** Everything this owner read and did not write (for the next owner). */
  held(): Buffer {
    const parts = [this.#carried, ...this.#queue, takeBuffered(this.src)].filter((b) => b.length > 0);
    return parts.length === 0 ? EMPTY : parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  get fenced(): boolean {
    return this.#fenced;
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
  #frozen = false;
  readonly #onDone: (r: TunnelResult) => void;

  constructor(downstream: net.Socket, upstream: net.Socket, idleMs: number, onDone: (r: TunnelResult) => void, imported?: TunnelImport) {
    this.#down = downstream;
    this.#up = upstream;
    this.#idleMs = idleMs;
    this.#onDone = onDone;
    this.#d2u = new Direction(downstream, upstream, this, imported?.carried.d2u ?? EMPTY, imported?.fenced.d2u ?? false);
    this.#u2d = new Direction(upstream, downstream, this, imported?.carried.u2d ?? EMPTY, imported?.fenced.u2d ?? false);
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
        if (this.#closedSockets === 2) this.#finish();
        else if (!(sock.readableEnded && sock.writableFinished)) {
          // One side went away without finishing both directions: an
          // abortive close, passed on as one.
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

  /** A fence from the previous owner was released. */
  release(dir: 'd2u' | 'u2d'): void {
    if (this.#frozen) return; // moved on: the next owner gets the release
    (dir === 'd2u' ? this.#d2u : this.#u2d).release();
  }

  /**
   * Stops this tunnel for a move to another process. Returns undefined when
   * it cannot move now (finished, or half-closed: such sessions finish here).
   */
  freeze(): FrozenTunnel | undefined {
    if (this.#done || this.#frozen) return undefined;
    const down = this.#down;
    const up = this.#up;
    if (this.#d2u.ended || this.#u2d.ended || readEofSeen(down) || readEofSeen(up) || down.writableEnded || up.writableEnded) return undefined;
    if (down.destroyed || up.destroyed) return undefined;
    this.#frozen = true;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    stopReading(down);
    stopReading(up);
    for (const s of [down, up]) {
      for (const ev of ['data', 'end', 'close', 'error', 'drain']) s.removeAllListeners(ev);
      s.on('error', () => undefined);
    }
    return {
      down,
      up,
      carried: { d2u: this.#d2u.held(), u2d: this.#u2d.held() },
      // A fenced direction never wrote here: nothing of ours is in flight.
      pending: { d2u: !this.#d2u.fenced && up.writableLength > 0, u2d: !this.#u2d.fenced && down.writableLength > 0 },
    };
  }

  /** Close both sides now. */
  destroy(code: ErrorCode | undefined = undefined): void {
    if (code) this.#error ??= code;
    this.#down.destroy();
    this.#up.destroy();
  }

  #armIdle(): void {
    const check = (): void => {
      if (this.#done || this.#frozen) return;
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
    if (this.#done || this.#frozen) return;
    this.#error ??= code;
    for (const s of [this.#down, this.#up]) if (!s.destroyed) abortSocket(s);
  }

  #finish(): void {
    if (this.#done || this.#frozen) return;
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
