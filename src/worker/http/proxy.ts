// One proxied HTTP exchange: the request streams to an upstream pool
// (upstream/h1-pool.ts), the response streams back, both with backpressure and never
// buffered whole. Failures before the response starts become 502/503/504
// with a stable code; after it started, the client connection is cut so the
// truncation is visible.
import type { ErrorCode } from '../../common/errors.js';
import { TimerEntry, timerList } from '../../common/timer-list.js';
import type { Endpoint } from '../upstream/cluster.js';
import { UpstreamError, type Exchange, type UpstreamHandler } from '../upstream/h1-pool.js';
import type { H1Request, H1Response } from './h1-server.js';

export interface ExchangeOutcome {
  status: number;
  error: ErrorCode | undefined;
  bytesOut: number;
}

export function classifyUpstreamError(err: unknown): { status: number; code: ErrorCode; connect: boolean } {
  const code = (err as { code?: string } | null)?.code;
  switch (code) {
    case 'MOSN_ROUTE_TIMEOUT':
      return { status: 504, code: 'MOSN_ERR_UPSTREAM_REQUEST_TIMEOUT', connect: false };
    case 'MOSN_UPSTREAM_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return { status: 504, code: 'MOSN_ERR_UPSTREAM_CONNECT_TIMEOUT', connect: true };
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EADDRNOTAVAIL':
      return { status: 502, code: 'MOSN_ERR_UPSTREAM_CONNECT', connect: true };
    case 'MOSN_UPSTREAM_HEADERS_TIMEOUT':
      return { status: 504, code: 'MOSN_ERR_UPSTREAM_HEADERS_TIMEOUT', connect: false };
    case 'MOSN_DOWNSTREAM_GONE':
      return { status: 499, code: 'MOSN_ERR_DOWNSTREAM_RESET', connect: false };
    case 'MOSN_UPSTREAM_PROTOCOL':
      return { status: 502, code: 'MOSN_ERR_UPSTREAM_PROTOCOL', connect: false };
    default:
      return { status: 502, code: 'MOSN_ERR_UPSTREAM_RESET', connect: false };
  }
}

const NO_BYTES = Buffer.alloc(0);

export class ProxyExchange implements UpstreamHandler {
  private readonly onDone: (o: ExchangeOutcome) => void;
  #exchange: Exchange | undefined;
  #timeout: TimerEntry | undefined;
  #settled = false;
  #bytesOut = 0;

  constructor(
    private readonly req: H1Request,
    private readonly res: H1Response,
    private readonly endpoint: Endpoint,
    timeoutMs: number,
    private readonly onLocalError: (status: number, code: ErrorCode, connect: boolean) => void,
    onDone: (o: ExchangeOutcome) => void,
  ) {
    this.onDone = onDone;
    endpoint.active++;
    if (timeoutMs > 0) {
      this.#timeout = new TimerEntry(() => this.#cancel(new UpstreamError('MOSN_ROUTE_TIMEOUT', 'route timeout')));
      timerList(timeoutMs).add(this.#timeout);
    }
    res.onAbort = () => this.#cancel(new UpstreamError('MOSN_DOWNSTREAM_GONE', 'downstream closed'));
  }

  start(path: string, headers: string[]): void {
    const req = this.req;
    this.#exchange = this.endpoint.pool.dispatch({ method: req.method, path, headers, body: req.body }, this);
  }

  /** Timed out, or the client left: wherever the exchange is (queued, connecting, in flight), it ends here. */
  #cancel(err: UpstreamError): void {
    if (this.#settled) return;
    if (this.#exchange) this.#exchange.abort(err);
    else this.onError(err);
  }

  onHeaders(statusCode: number, statusText: string, rawHeaders: string[]): void {
    this.#timeout?.cancel();
    const res = this.res;
    if (res.destroyed) return;
    res.writeHead(statusCode, statusText, rawHeaders, true);
  }

  /**
   * Body chunks parsed from one upstream read are held until the parser is
   * done with that read (onReadDone): when the response also completed
   * there, it leaves in a single write with its headers and end. (Not a
   * microtask: the native parser's callbacks each run microtasks when they
   * return, so one would flush before onComplete.) Backpressure still counts
   * the held bytes.
   */
  #held: Buffer[] | undefined;
  #heldBytes = 0;

  onData(chunk: Buffer): boolean {
    this.#bytesOut += chunk.length;
    if (this.#held) this.#held.push(chunk);
    else this.#held = [chunk];
    this.#heldBytes += chunk.length;
    const ok = this.#heldBytes + this.res.writableLength < this.res.writableHighWaterMark;
    if (!ok) this.#pauseUpstream();
    return ok;
  }

  #pausedUpstream = false;

  /** Upstream reads stop until the client takes the bytes ('drain'; a listener only for responses that need it). */
  #pauseUpstream(): void {
    if (this.#pausedUpstream) return;
    this.#pausedUpstream = true;
    this.res.onceDrain(() => this.#resumeUpstream());
  }

  #resumeUpstream(): void {
    if (!this.#pausedUpstream) return;
    this.#pausedUpstream = false;
    this.#exchange?.resume();
  }

  #takeHeld(): Buffer | undefined {
    const h = this.#held;
    this.#held = undefined;
    this.#heldBytes = 0;
    if (!h) return undefined;
    return h.length === 1 ? h[0] : Buffer.concat(h);
  }

  onReadDone(): void {
    const data = this.#takeHeld();
    if (this.res.destroyed) return;
    if (!data) {
      // Only the head so far (a stream, a long poll): the client gets it now,
      // not with the first body bytes (an empty write sends a pending head, if any).
      this.res.write(NO_BYTES);
      return;
    }
    // Room left: resume now; otherwise 'drain' will.
    if (this.res.write(data)) this.#resumeUpstream();
    else this.#pauseUpstream();
  }

  onComplete(): void {
    if (this.#settled) return;
    this.#settle();
    const data = this.#takeHeld();
    if (data) this.res.end(data);
    else this.res.end();
    this.onDone({ status: this.res.statusCode, error: undefined, bytesOut: this.#bytesOut });
  }

  onError(err: UpstreamError): void {
    if (this.#settled) return;
    this.#settle();
    const c = classifyUpstreamError(err);
    if (c.code === 'MOSN_ERR_DOWNSTREAM_RESET') {
      this.onDone({ status: this.res.headersSent ? this.res.statusCode : 499, error: c.code, bytesOut: this.#bytesOut });
      return;
    }
    if (!this.res.headersSent) {
      this.onLocalError(c.status, c.code, c.connect);
      this.onDone({ status: c.status, error: c.code, bytesOut: this.#bytesOut });
    } else {
      // The response already started: cut the client connection so the
      // truncation cannot pass for a complete response.
      this.res.destroy();
      this.onDone({ status: this.res.statusCode, error: c.code, bytesOut: this.#bytesOut });
    }
  }

  #settle(): void {
    this.#settled = true;
    this.endpoint.active--;
    this.#timeout?.cancel();
  }
}
