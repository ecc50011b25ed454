// A keep-alive HTTP/1.1 connection pool to one upstream endpoint, lean on
// purpose: request heads are written from the flat header list the proxy
// already has, and responses are parsed by Node's native llhttp binding (the
// one http.Server uses), handing raw header strings and body slices to one
// handler per exchange. One request per connection at a time (no
// pipelining); a connection goes back to the pool only after a complete
// response to a completely sent request, and is closed after `idleTimeout`
// (or earlier, when the upstream's `Keep-Alive: timeout=N` says so).
//
// Reads land in one buffer shared by the worker's upstream connections
// (net's `onread`: no Buffer or 'data' event per read). Each response is
// parsed by the JS head parser of h1-response.ts when it is simple (the
// common case: a plain head and a Content-Length body, the head in its
// first read), by llhttp otherwise, from its first byte; a read is parsed
// before the next one can land. A connection that once needed llhttp (an
// upstream that answers chunked, say) stays with it: from then on the
// parser reads the socket itself (parser.consume(), as in the HTTP
// listener), which is what that kind of response costs least with.
import net from 'node:net';
import type { Readable } from 'node:stream';
import { TimerEntry, timerList } from '../../common/timer-list.js';
import { nameIs } from '../http/headers.js';
import { consumeSocket, nativeHttpParser, setReading, type NativeHttpParser, type NativeHttpParserClass } from '../../common/node-internals.js';
import { parseSimpleHead } from './h1-response.js';

export interface UpstreamRequest {
  readonly method: string;
  readonly path: string;
  /** Flat [name, value, ...] list, hop-by-hop headers already removed. */
  readonly headers: readonly string[];
  /** The request body, or null. Sent as is when `headers` has content-length, chunked otherwise. */
  readonly body: Readable | null;
}

export interface UpstreamHandler {
  /** Final (>= 200) response headers of `exchange` (what dispatch() returned). */
  onHeaders(status: number, statusText: string, rawHeaders: string[], exchange: Exchange): void;
  /** A body chunk; false asks to stop reading until the exchange's resume() is called. */
  onData(chunk: Buffer): boolean;
  onComplete(): void;
  /**
   * Every chunk parsed from one upstream read has been given to onData: the
   * moment to pass them on in one write. (Not called for the read that
   * completed the response: onComplete comes instead.)
   */
  onReadDone?(): void;
  /** Called at most once, never after onComplete. `err.code` says what failed. */
  onError(err: UpstreamError): void;
}

/** Error codes of the pool (the socket's own errno codes pass through as is). */
export type UpstreamErrorCode = 'MOSN_UPSTREAM_CONNECT_TIMEOUT' | 'MOSN_UPSTREAM_HEADERS_TIMEOUT' | 'MOSN_UPSTREAM_PROTOCOL' | 'MOSN_UPSTREAM_CLOSED' | 'MOSN_UPSTREAM_ABORTED';

export class UpstreamError extends Error {
  constructor(
    /** An UpstreamErrorCode, or the socket's errno code (ECONNREFUSED, ECONNRESET, ...). */
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface PoolOptions {
  readonly host: string;
  readonly port: number;
  /** Most connections open or opening at once; more requests wait in order. */
  readonly connections: number;
  /** ms an idle pooled connection is kept; 0 = no limit. */
  readonly idleTimeout: number;
  /** ms from the end of the request to the response headers; 0 = no limit. */
  readonly headersTimeout: number;
  /** ms to establish a connection. */
  readonly connectTimeout: number;
}

/** A dispatched exchange: abort() cancels it wherever it is (queued, connecting, in flight). */
export interface Exchange {
  abort(err: UpstreamError): void;
  /** Undoes a pause asked for by onData returning false (a no-op once the exchange is over). */
  resume(): void;
}

let P: NativeHttpParserClass | undefined;

/** Where every upstream connection of this process reads into; each read is parsed before the next. */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** How the current response is parsed. */
const enum Parse {
  /** Nothing of it has arrived. */
  NotBegun,
  /** Its head was simple (h1-response.ts): only body bytes are left to count. */
  Simple,
  /** By llhttp, from its first byte to its end. */
  Llhttp,
}

class Pending implements Exchange {
  conn: Connection | undefined;
  done = false;

  constructor(
    readonly pool: H1Pool,
    readonly req: UpstreamRequest,
    readonly handler: UpstreamHandler,
  ) {}

  abort(err: UpstreamError): void {
    if (this.done) return;
    this.pool.abort(this, err);
  }

  resume(): void {
    // A late resume (after this exchange ended) must not undo the next exchange's pause.
    const c = this.conn;
    if (c && c.current === this) c.resumeReading();
  }

  fail(err: UpstreamError): void {
    if (this.done) return;
    this.done = true;
    this.handler.onError(err);
  }
}

class Connection {
  readonly socket: net.Socket;
  readonly parser: NativeHttpParser;
  current: Pending | undefined;
  connected = false;
  dead = false;
  #parse = Parse.NotBegun;
  /** Parse.Simple: body bytes still to come. */
  #bodyLeft = 0;
  /** llhttp reads the socket itself (for good): reading is controlled on the handle. */
  #consumed = false;
  /** The request body finished (or there was none). */
  #sent = false;
  /** Final response headers seen for the current exchange. */
  #responded = false;
  #informational = false;
  /** A response completed in the read being parsed: the connection goes back to the pool once that read is done. */
  #parkAfterRead = false;
  /** A message began that no exchange asked for (bytes after a response, or on an idle connection). */
  #unasked = false;
  #keepAlive = false;
  #idleMs: number;
  /** The one timeout armed at a time: connect, then response headers or idle. */
  readonly #timer = new TimerEntry(() => this.#timedOut());
  #timerKind: 'connect' | 'headers' | 'idle' = 'connect';
  #headerParts: string[] | undefined;
  #body: Readable | undefined;
  #bodyListeners: { data: (c: Buffer) => void; end: () => void; error: () => void } | undefined;

  constructor(
    readonly pool: H1Pool,
    first: Pending,
  ) {
    const o = pool.options;
    this.#idleMs = o.idleTimeout;
    this.current = first;
    first.conn = this;
    const parser = new P!();
    parser.initialize(P!.RESPONSE, {}, 0, P!.kLenientNone);
    parser[P!.kOnHeaders] = (headers: string[]) => {
      this.#headerParts = this.#headerParts ? this.#headerParts.concat(headers) : headers;
    };
    parser[P!.kOnHeadersComplete] = (
      _major: number,
      _minor: number,
      headers: string[] | undefined,
      _method: unknown,
      _url: unknown,
      status: number,
      statusText: string,
      upgrade: boolean,
      keepAlive: boolean,
    ): number => this.#onHeadersComplete(headers, status, statusText, upgrade, keepAlive);
    parser[P!.kOnMessageBegin] = () => {
      // Bytes nothing asked for: the connection is unusable (checked when the read is parsed).
      if (!this.current) this.#unasked = true;
    };
    parser[P!.kOnBody] = (chunk: Buffer) => {
      const p = this.current;
      if (p && !p.done && !p.handler.onData(chunk)) this.#setReading(false);
    };
    parser[P!.kOnMessageComplete] = () => this.#onMessageComplete();
    // After each read the parser consumed from the socket itself.
    parser[P!.kOnExecute] = (r: number | Error) => this.#parsed(r);
    this.parser = parser;
    const socket = net.connect({
      host: o.host,
      port: o.port,
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        // Reading is paused with socket.pause(), never by returning false.
        callback: (n: number, buf: Uint8Array) => {
          this.#onRead(buf as Buffer, n);
          return true;
        },
      },
    });
    this.socket = socket;
    this.#arm('connect', o.connectTimeout);
    socket.once('connect', () => {
      this.connected = true;
      this.#disarm();
      const p = this.current;
      if (p) this.#send(p);
    });
    socket.on('drain', () => this.#body?.resume());
    socket.on('end', () => this.#onEnd());
    socket.on('error', (err: NodeJS.ErrnoException) => this.#kill(new UpstreamError(err.code ?? 'MOSN_UPSTREAM_CLOSED', err.message)));
    socket.on('close', () => {
      this.#kill(new UpstreamError('MOSN_UPSTREAM_CLOSED', 'upstream closed the connection'));
      // Native parsers are not garbage collected (~2 KB each): free it, outside any parser callback.
      setImmediate(() => this.parser.close());
    });
  }

  /** Starts an exchange on this (connected, idle) connection. */
  run(p: Pending): void {
    this.#disarm();
    this.current = p;
    p.conn = this;
    this.#send(p);
  }

  #send(p: Pending): void {
    this.#sent = false;
    this.#responded = false;
    this.#keepAlive = false;
    // Where the next response is parsed: set here, where every exchange starts.
    this.#parse = this.#consumed ? Parse.Llhttp : Parse.NotBegun;
    const { method, path, headers, body } = p.req;
    let head = `${method} ${path} HTTP/1.1\r\n`;
    let host = false;
    let length = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (!host && nameIs(name, 'host')) host = true;
      else if (nameIs(name, 'content-length')) length = true;
      head += `${name}: ${headers[i + 1]!}\r\n`;
    }
    if (!host) head += `host: ${this.pool.hostHeader}\r\n`;
    const chunked = body !== null && !length;
    if (chunked) head += 'transfer-encoding: chunked\r\n';
    this.socket.write(head + '\r\n', 'latin1');
    if (body === null) this.#requestSent();
    else this.#pipeBody(body, chunked);
  }

  #pipeBody(body: Readable, chunked: boolean): void {
    const socket = this.socket;
    const data = (c: Buffer): void => {
      if (c.length === 0) return;
      let ok: boolean;
      if (chunked) {
        socket.cork();
        socket.write(`${c.length.toString(16)}\r\n`, 'latin1');
        socket.write(c);
        ok = socket.write('\r\n', 'latin1');
        socket.uncork();
      } else ok = socket.write(c);
      if (!ok) body.pause();
    };
    const end = (): void => {
      this.#unpipeBody();
      if (chunked) socket.write('0\r\n\r\n', 'latin1');
      this.#requestSent();
    };
    // The client went away mid-body: the proxy aborts the exchange on its own.
    const error = (): void => undefined;
    this.#body = body;
    this.#bodyListeners = { data, end, error };
    body.on('data', data);
    body.once('end', end);
    body.on('error', error);
    body.resume();
  }

  #unpipeBody(): void {
    const b = this.#body;
    const l = this.#bodyListeners;
    if (!b || !l) return;
    b.off('data', l.data);
    b.off('end', l.end); // the no-op 'error' listener stays: a late error must not throw
    this.#body = undefined;
    this.#bodyListeners = undefined;
  }

  #requestSent(): void {
    this.#sent = true;
    const t = this.pool.options.headersTimeout;
    if (!this.#responded && t > 0) this.#arm('headers', t);
  }

  /** `n` bytes were read into `buf` (READ_BUFFER: nothing may keep a view of it). */
  #onRead(buf: Buffer, n: number): void {
    if (this.dead) return;
    const p = this.current;
    if (!p) {
      // Bytes from an idle connection (nothing asked for them): unusable.
      this.#killUnasked();
      return;
    }
    let i = 0;
    if (this.#parse === Parse.NotBegun) {
      const h = parseSimpleHead(buf, 0, n, p.req.method === 'HEAD');
      if (!h) this.#parse = Parse.Llhttp;
      else {
        this.#parse = Parse.Simple;
        this.#bodyLeft = h.bodyLength;
        i = h.headLength;
        this.#respond(p, h.status, h.statusText, h.headers, h.keepAlive);
        if (this.current !== p || p.done) return; // aborted from onHeaders
      }
    }
    if (this.#parse === Parse.Llhttp) {
      // execute() copies what it hands on; the view does not outlive it.
      const r = this.parser.execute(buf.subarray(0, n));
      // Later reads go straight to llhttp (where Node has consume()).
      if (!this.#consumed && !this.dead && !(r instanceof Error)) this.#consumed = consumeSocket(this.parser, this.socket);
      this.#parsed(r);
      return;
    }
    const take = Math.min(this.#bodyLeft, n - i);
    if (take > 0) {
      const chunk = Buffer.allocUnsafe(take);
      buf.copy(chunk, 0, i, i + take);
      i += take;
      this.#bodyLeft -= take;
      if (!p.handler.onData(chunk)) this.#setReading(false);
      if (this.current !== p || p.done) return;
    }
    if (this.#bodyLeft === 0) {
      this.#onMessageComplete();
      // Bytes behind the response: a message nothing asked for.
      if (i < n) this.#unasked = true;
    }
    this.#parsed(0);
  }

  #killUnasked(): void {
    this.#kill(new UpstreamError('MOSN_UPSTREAM_PROTOCOL', 'the upstream sent data nothing asked for'));
  }

  /**
   * A read has been parsed. Only now is a connection whose response
   * completed in it known to be clean: bytes behind that response in the
   * same read (a second, unasked response) would otherwise reach the next
   * exchange, which the pool may have put on this connection meanwhile.
   * `r`: the parser's result for the read (consumed or executed here).
   */
  #parsed(r: number | Error): void {
    if (r instanceof Error) {
      this.#protocolError(r);
      return;
    }
    if (this.#unasked) {
      this.#parkAfterRead = false;
      this.#killUnasked();
      return;
    }
    if (this.#parkAfterRead) {
      this.#parkAfterRead = false;
      if (!this.dead) this.pool.idle(this);
      return;
    }
    const p = this.current;
    if (p && !p.done) p.handler.onReadDone?.();
  }

  #protocolError(r: Error): void {
    this.#kill(new UpstreamError('MOSN_UPSTREAM_PROTOCOL', `bad response from upstream: ${(r as NodeJS.ErrnoException).code ?? r.message}`));
  }

  #setReading(on: boolean): void {
    setReading(this.socket, this.#consumed, on);
  }

  #onEnd(): void {
    // Read-until-close bodies complete here; anything else was cut short.
    if (this.current && !this.dead && this.#parse !== Parse.NotBegun) {
      // A simple response ends by its length, never at EOF.
      if (this.#parse === Parse.Simple || this.parser.finish() instanceof Error) {
        this.#kill(new UpstreamError('MOSN_UPSTREAM_CLOSED', 'upstream closed the connection mid-response'));
        return;
      }
    }
    this.#kill(new UpstreamError('MOSN_UPSTREAM_CLOSED', 'upstream closed the connection'));
  }

  #onHeadersComplete(headers: string[] | undefined, status: number, statusText: string, upgrade: boolean, keepAlive: boolean): number {
    const p = this.current;
    if (this.#headerParts) {
      headers = headers ? this.#headerParts.concat(headers) : this.#headerParts;
      this.#headerParts = undefined;
    }
    if (status < 200 && status !== 101) {
      this.#informational = true; // 1xx interim responses are not forwarded
      return 0;
    }
    if (upgrade || status === 101 || !p || p.done) {
      queueMicrotask(() => this.#kill(new UpstreamError('MOSN_UPSTREAM_PROTOCOL', `unexpected ${status} response`)));
      return 1;
    }
    this.#respond(p, status, statusText, headers ?? [], keepAlive);
    // A HEAD response has no body whatever its headers say.
    return p.req.method === 'HEAD' ? 1 : 0;
  }

  /** Final response headers for `p`, from either parser. */
  #respond(p: Pending, status: number, statusText: string, raw: string[], keepAlive: boolean): void {
    this.#disarm();
    this.#responded = true;
    this.#keepAlive = keepAlive;
    if (keepAlive) this.#idleMs = keepAliveHint(raw, this.pool.options.idleTimeout);
    p.handler.onHeaders(status, statusText, raw, p);
  }

  /** Reading resumes after a pause an exchange asked for (Pending.resume). */
  resumeReading(): void {
    this.#setReading(true);
  }

  #onMessageComplete(): void {
    if (this.#informational) {
      this.#informational = false;
      return;
    }
    const p = this.current;
    if (!p || p.done) return;
    p.done = true;
    this.current = undefined;
    const reusable = this.#keepAlive && this.#sent && !this.dead;
    if (!reusable) {
      this.#unpipeBody();
      this.dead = true;
      this.socket.destroy();
      this.pool.released(this);
    }
    p.handler.onComplete();
    if (reusable) this.#parkAfterRead = true;
  }

  /** Parks this connection in the pool. */
  park(): void {
    this.#setReading(true);
    if (this.#idleMs > 0) this.#arm('idle', this.#idleMs);
  }

  close(): void {
    if (this.dead) return;
    this.dead = true;
    this.#disarm();
    this.#unpipeBody();
    this.socket.destroy();
    this.pool.released(this);
  }

  /** The connection is unusable: fail its exchange (if any) and leave the pool. */
  #kill(err: UpstreamError): void {
    if (this.dead) return;
    this.dead = true;
    this.#disarm();
    this.#unpipeBody();
    this.socket.destroy();
    const p = this.current;
    this.current = undefined;
    this.pool.released(this);
    p?.fail(err);
  }

  /** Abandons the current exchange (aborted by the proxy). */
  abandon(): void {
    this.current = undefined;
    this.close();
  }

  #arm(kind: 'connect' | 'headers' | 'idle', ms: number): void {
    this.#timerKind = kind;
    if (ms > 0) timerList(ms).add(this.#timer);
    else this.#timer.cancel();
  }

  #disarm(): void {
    this.#timer.cancel();
  }

  #timedOut(): void {
    const o = this.pool.options;
    switch (this.#timerKind) {
      case 'connect':
        this.#kill(new UpstreamError('MOSN_UPSTREAM_CONNECT_TIMEOUT', `connect to ${o.host}:${o.port} timed out`));
        break;
      case 'headers':
        this.#kill(new UpstreamError('MOSN_UPSTREAM_HEADERS_TIMEOUT', `no response headers within ${o.headersTimeout} ms`));
        break;
      case 'idle':
        this.close();
        break;
    }
  }

}

let lastKeepAlive = '';
let lastTimeout = -1;

/** N of `timeout=N` in a Keep-Alive value, or -1. An upstream sends the same value every time: the last one is remembered. */
function keepAliveTimeout(value: string): number {
  if (value !== lastKeepAlive) {
    const m = /timeout\s*=\s*(\d+)/i.exec(value);
    lastKeepAlive = value;
    lastTimeout = m ? Number(m[1]) : -1;
  }
  return lastTimeout;
}

/** The upstream's `Keep-Alive: timeout=N` (seconds), less a second of margin, caps our idle time. */
function keepAliveHint(raw: readonly string[], configured: number): number {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (!nameIs(name, 'keep-alive')) continue;
    const seconds = keepAliveTimeout(raw[i + 1]!);
    if (seconds < 0) return configured;
    const hint = Math.max(0, seconds * 1000 - 1000);
    if (hint === 0) return 1; // closes at once when parked: no margin left
    return configured > 0 ? Math.min(configured, hint) : hint;
  }
  return configured;
}

export class H1Pool {
  readonly hostHeader: string;
  #idle: Connection[] = [];
  #queue: Pending[] = [];
  #open = 0;
  #destroyed = false;

  constructor(readonly options: PoolOptions) {
    P ??= nativeHttpParser();
    this.hostHeader = options.host.includes(':') ? `[${options.host}]:${options.port}` : `${options.host}:${options.port}`;
  }

  /** Connections open or opening, and how many of them are idle (for tests and status). */
  get stats(): { open: number; idle: number; queued: number } {
    return { open: this.#open, idle: this.#idle.length, queued: this.#queue.length };
  }

  dispatch(req: UpstreamRequest, handler: UpstreamHandler): Exchange {
    const p = new Pending(this, req, handler);
    if (this.#destroyed) {
      queueMicrotask(() => p.fail(new UpstreamError('MOSN_UPSTREAM_ABORTED', 'the upstream pool is closed')));
      return p;
    }
    let c: Connection | undefined;
    while ((c = this.#idle.pop())) {
      if (!c.dead) {
        c.run(p);
        return p;
      }
    }
    if (this.#open < this.options.connections) this.#connect(p);
    else this.#queue.push(p);
    return p;
  }

  #connect(p: Pending): void {
    this.#open++;
    new Connection(this, p);
  }

  /** A connection finished an exchange and can take another. */
  idle(c: Connection): void {
    if (c.dead) return;
    if (this.#destroyed) {
      c.close();
      return;
    }
    const next = this.#queue.shift();
    if (next) {
      c.run(next);
      return;
    }
    this.#idle.push(c);
    c.park();
  }

  /** A connection closed: room for a queued exchange. */
  released(c: Connection): void {
    this.#open--;
    const i = this.#idle.indexOf(c);
    if (i >= 0) this.#idle.splice(i, 1);
    const next = this.#queue.shift();
    if (next && !this.#destroyed) this.#connect(next);
  }

  abort(p: Pending, err: UpstreamError): void {
    const i = this.#queue.indexOf(p);
    if (i >= 0) this.#queue.splice(i, 1);
    const c = p.conn;
    p.fail(err);
    // Mid-exchange (or mid-connect): the connection's state is unknown now.
    if (c && c.current === p) c.abandon();
  }

  destroy(): void {
    this.#destroyed = true;
    const queued = this.#queue;
    this.#queue = [];
    for (const p of queued) p.fail(new UpstreamError('MOSN_UPSTREAM_ABORTED', 'the upstream pool is closed'));
    for (const c of [...this.#idle]) c.close();
  }
}
