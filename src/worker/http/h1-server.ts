// The client side of an HTTP/1.1 listener, on Node's native llhttp binding
// (the parser http.Server uses) but without http.Server, IncomingMessage or
// ServerResponse: a connection owns its parser, reads with plain 'data'
// events, answers one request at a time in order (pipelined requests wait,
// reading paused) and writes each response head together with its first
// body bytes. Because the connection itself knows when it sits at a message
// boundary, it can be detached and sent to another process there
// (`detach()`), which is what live migration needs.
//
// What it keeps from http.Server: request-headers timeout (also for a fresh
// connection that sends nothing), keep-alive idle timeout, 400 / 431 / 408
// for malformed, oversized or slow request heads, `Expect: 100-continue`,
// HEAD / 204 / 304 framing, chunked responses to HTTP/1.1 clients and
// read-until-close ones to HTTP/1.0 clients, `Connection` / `Keep-Alive`
// response headers, a `Date` header when the response has none, the
// Upgrade hand-off, and discarding an unread request body after an early
// response so the connection stays usable.
//
// Reading: a connection's parser consumes its socket (parser.consume(), as
// http.Server does): bytes go from libuv into llhttp with no JS Buffer,
// stream push or 'data' event per read, and each read's result comes back
// through kOnExecute. Reading is then stopped and started on the handle
// (pipelined requests waiting, request body backpressure). Where consume is
// unavailable, 'data' events feed the same parser.
//
// Parsers (~2 KB of native memory each) are pooled: a connection idle for
// PARK_AFTER_MS gives its parser back (its next bytes arrive as a 'data'
// event, take a parser and consume again), so idle keep-alive connections
// cost only their socket.
import type net from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import {
  consumeSocket,
  nativeHttpMethods,
  nativeHttpParser,
  setHandleReading,
  setReading,
  stopReading,
  unconsumeSocket,
  type NativeHttpParser,
  type NativeHttpParserClass,
} from '../../common/node-internals.js';
import { connectionTokens, isHopByHop, nameIs } from './headers.js';

export interface H1Timeouts {
  /** ms a keep-alive connection may sit idle; 0 = no limit. */
  readonly idle: number;
  /** ms from the first byte of a request (or from accept) to the end of its head; 0 = no limit. */
  readonly requestHeaders: number;
}

export type ClientErrorKind = 'bad_request' | 'header_overflow' | 'headers_timeout';

/** What a listener does with the connections' events. */
export interface H1Handler {
  request(conn: H1Connection, req: H1Request, res: H1Response): void;
  /** An Upgrade (or CONNECT) request: the socket is detached and `head` holds the bytes after the request head. */
  upgrade(conn: H1Connection, req: H1Request, head: Buffer): void;
  /** Malformed, oversized or slow request head. `answered` is false when a response was still being written (the connection just closes). */
  clientError(conn: H1Connection, kind: ClientErrorKind, detail: string, answered: boolean): void;
  /** The connection reached a message boundary and stays open (migration may take it now). */
  idle(conn: H1Connection): void;
  closed(conn: H1Connection): void;
}

/** Request body bytes buffered before the client's socket stops being read (one socket read). */
const BODY_HIGH_WATER_MARK = 64 * 1024;

/** The request body as a stream (backpressure reaches the client's socket). */
export class RequestBody extends Readable {
  constructor(private readonly conn: H1Connection) {
    super({ highWaterMark: BODY_HIGH_WATER_MARK });
  }

  override _read(): void {
    this.conn.bodyWanted();
  }
}

export class H1Request {
  /** The whole message (with its body) has been read. */
  complete = false;
  /** The response ended before the body was read: the rest is read and dropped. */
  discard = false;
  #headers: IncomingHttpHeaders | undefined;

  constructor(
    readonly method: string,
    readonly url: string,
    /** 1 for HTTP/1.1, 0 for HTTP/1.0. */
    readonly versionMinor: number,
    /** Flat [name, value, ...] as received. */
    readonly rawHeaders: string[],
    readonly host: string | undefined,
    /** The client allows keep-alive (HTTP/1.1 without `Connection: close`, or 1.0 with keep-alive). */
    readonly keepAlive: boolean,
    readonly body: RequestBody | null,
    readonly expectContinue: boolean,
  ) {}

  /** Lower-cased headers, repeated ones joined with ", " (built on first use: route header matchers). */
  get headers(): IncomingHttpHeaders {
    if (!this.#headers) {
      const h: Record<string, string> = {};
      const raw = this.rawHeaders;
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i]!.toLowerCase();
        const prev = h[name];
        h[name] = prev === undefined ? raw[i + 1]! : `${prev}, ${raw[i + 1]!}`;
      }
      this.#headers = h;
    }
    return this.#headers;
  }
}

let dateCache = '';
let dateSecond = -1;

/** The `Date` header value, formatted once per second. */
function httpDate(): string {
  const now = Date.now();
  const s = Math.floor(now / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateCache = new Date(now).toUTCString();
  }
  return dateCache;
}

/** Below this many bytes, a head and its body are copied into one buffer (one write) rather than corked. */
const COALESCE_BYTES = 16 * 1024;

export class H1Response {
  statusCode = 200;
  headersSent = false;
  /** end() was called. */
  ended = false;
  /** Flushed to the kernel, or abandoned because the connection died. */
  done = false;
  /** Whether the connection stays open after this response; settable until the head is written. */
  keepAlive: boolean;
  /** Called once, when the connection dies before the response is done. */
  onAbort: (() => void) | undefined;
  #head: string | undefined;
  #chunked = false;
  #noBody: boolean;
  /** What runs once the response is done: mostly one function (the access record), so no array for it. */
  #finished: (() => void) | (() => void)[] | undefined;

  constructor(
    readonly conn: H1Connection,
    readonly req: H1Request,
  ) {
    this.keepAlive = req.keepAlive;
    this.#noBody = req.method === 'HEAD';
  }

  get destroyed(): boolean {
    return this.conn.socket.destroyed;
  }

  get writableLength(): number {
    return this.conn.socket.writableLength;
  }

  get writableHighWaterMark(): number {
    return this.conn.socket.writableHighWaterMark;
  }

  /**
   * Sets the status line and headers (flat [name, value, ...]); they are
   * written with the first body bytes. `headers` must hold no hop-by-hop
   * headers, unless `dropHopByHop` asks for them to be left out here (a
   * response passed on from an upstream: no stripped copy of its headers).
   * Framing and `Connection` are the server's: content-length passes
   * through, otherwise HTTP/1.1 clients get chunked encoding and HTTP/1.0
   * clients a body that ends with the connection.
   */
  writeHead(status: number, reason: string, headers: readonly string[], dropHopByHop = false): void {
    if (this.headersSent) return;
    this.headersSent = true;
    this.statusCode = status;
    if (status === 204 || status === 304 || status < 200) this.#noBody = true;
    let head = `HTTP/1.1 ${status} ${reason}\r\n`;
    let length = false;
    let date = false;
    const extra = dropHopByHop ? connectionTokens(headers) : undefined;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      if (dropHopByHop && isHopByHop(name, extra)) continue;
      if (!length && nameIs(name, 'content-length')) length = true;
      else if (!date && nameIs(name, 'date')) date = true;
      head += `${name}: ${headers[i + 1]!}\r\n`;
    }
    if (!date) head += `date: ${httpDate()}\r\n`;
    const req = this.req;
    if (!this.#noBody && !length) {
      if (req.versionMinor >= 1) {
        this.#chunked = true;
        head += 'transfer-encoding: chunked\r\n';
      } else this.keepAlive = false;
    }
    this.#head = head;
  }

  /** The head has not left yet: `keepAlive` can still change. */
  get headPending(): boolean {
    return !this.headersSent || this.#head !== undefined;
  }

  #connectionLines(): string {
    if (!this.keepAlive) return 'connection: close\r\n\r\n';
    if (this.req.versionMinor >= 1) return this.conn.keepAliveHeaders;
    return 'connection: keep-alive\r\n\r\n';
  }

  /** Writes a body chunk; false when the socket's buffer is full (wait for onceDrain). */
  write(chunk: Buffer): boolean {
    if (this.ended || this.done || this.destroyed) return false;
    if (this.#noBody || chunk.length === 0) {
      if (this.#head !== undefined) return this.#out(undefined, false, undefined);
      return true;
    }
    return this.#out(chunk, false, undefined);
  }

  /** Ends the response (with a last chunk); the connection carries on once it is flushed. */
  end(chunk?: Buffer): void {
    if (this.ended || this.done) return;
    this.ended = true;
    if (!this.headersSent) this.writeHead(200, 'OK', ['content-length', String(chunk?.length ?? 0)]);
    if (this.destroyed) return;
    const body = this.#noBody || !chunk || chunk.length === 0 ? undefined : chunk;
    this.#out(body, true, () => this.#flushed());
  }

  /** Cuts the connection (a response that cannot be completed must not look complete). */
  destroy(): void {
    this.conn.socket.destroy();
  }

  onceDrain(fn: () => void): void {
    this.conn.drainWaiter = fn;
  }

  /** Runs `fn` once the response is done (flushed, or the connection died). */
  onFinished(fn: () => void): void {
    const f = this.#finished;
    if (this.done) fn();
    else if (f === undefined) this.#finished = fn;
    else if (typeof f === 'function') this.#finished = [f, fn];
    else f.push(fn);
  }

  /** One write (or one corked batch) of: pending head, chunk framing, chunk, terminator. */
  #out(chunk: Buffer | undefined, last: boolean, cb: (() => void) | undefined): boolean {
    const socket = this.conn.socket;
    const head = this.#head;
    this.#head = undefined;
    let pre = head === undefined ? '' : head + this.#connectionLines();
    let post = '';
    if (this.#chunked) {
      if (chunk) {
        pre += `${chunk.length.toString(16)}\r\n`;
        post = last ? '\r\n0\r\n\r\n' : '\r\n';
      } else if (last) pre += '0\r\n\r\n';
    }
    if (!chunk) {
      // Nothing left to send (the end of a body already written): no empty
      // write (a syscall). With nothing pending in the socket, the earlier
      // writes are in the kernel and their callbacks queued in nextTick
      // order, so `cb` follows them; otherwise an empty write waits for them.
      if (pre.length === 0 && socket.writableLength === 0) {
        if (cb) process.nextTick(cb);
        return true;
      }
      return socket.write(pre, 'latin1', cb);
    }
    if (pre.length + chunk.length + post.length <= COALESCE_BYTES) {
      const buf = Buffer.allocUnsafe(pre.length + chunk.length + post.length);
      let at = buf.write(pre, 0, 'latin1');
      at += chunk.copy(buf, at);
      if (post.length > 0) buf.write(post, at, 'latin1');
      return socket.write(buf, cb);
    }
    socket.cork();
    if (pre.length > 0) socket.write(pre, 'latin1');
    let ok: boolean;
    if (post.length > 0) {
      socket.write(chunk);
      ok = socket.write(post, 'latin1', cb);
    } else ok = socket.write(chunk, cb);
    socket.uncork();
    return ok;
  }

  #flushed(): void {
    if (this.done) return;
    this.done = true;
    // Finish callbacks (the access log) first: a pipelined next request may start in responseDone.
    this.#runFinished();
    this.conn.responseDone(this);
  }

  /** The connection died first. */
  abandon(): void {
    if (this.done) return;
    this.done = true;
    const a = this.onAbort;
    this.onAbort = undefined;
    a?.();
    this.#runFinished();
  }

  #runFinished(): void {
    const f = this.#finished;
    this.#finished = undefined;
    if (typeof f === 'function') f();
    else if (f) for (const fn of f) fn();
  }
}

// ---- parser pool ------------------------------------------------------------
// Callbacks are set once per parser and find their connection through
// `owner`, so taking a parser costs one initialize() and no closures.

interface OwnedParser extends NativeHttpParser {
  owner: H1Connection | undefined;
}

let P: NativeHttpParserClass | undefined;
let methods: readonly string[] = [];
const freeParsers: OwnedParser[] = [];
/**
 * Parsers kept for reuse. A native parser is ~1.8 KB (llhttp state and 64
 * header slots); idle connections give theirs back after 500 ms, so after a
 * burst of connections the pool would otherwise keep one per connection
 * that was busy in that half second (Node's http keeps up to 1,000).
 */
const MAX_FREE_PARSERS = 256;

// The callbacks, one set for all parsers.
function onMessageBegin(this: OwnedParser): void {
  this.owner?.onMessageBegin();
}
function onHeaders(this: OwnedParser, headers: string[], url: string): void {
  this.owner?.onHeaderPart(headers, url);
}
function onHeadersComplete(
  this: OwnedParser,
  _major: number,
  minor: number,
  headers: string[] | undefined,
  method: number,
  url: string | undefined,
  _status: unknown,
  _statusText: unknown,
  upgrade: boolean,
  keepAlive: boolean,
): number {
  return this.owner?.onHeadersComplete(minor, headers, method, url, upgrade, keepAlive) ?? 0;
}
function onBody(this: OwnedParser, chunk: Buffer): void {
  this.owner?.onBody(chunk);
}
function onMessageComplete(this: OwnedParser): void {
  this.owner?.onMessageComplete();
}
/** Called after each read the parser consumed from the socket itself. */
function onExecute(this: OwnedParser, ret: number | Error): void {
  this.owner?.onExecute(ret, this);
}

function newParser(): OwnedParser {
  const p = new P!() as OwnedParser;
  p.owner = undefined;
  p[P!.kOnMessageBegin] = onMessageBegin;
  p[P!.kOnHeaders] = onHeaders;
  p[P!.kOnHeadersComplete] = onHeadersComplete;
  p[P!.kOnBody] = onBody;
  p[P!.kOnMessageComplete] = onMessageComplete;
  p[P!.kOnExecute] = onExecute;
  return p;
}

function takeParser(owner: H1Connection): OwnedParser {
  const p = freeParsers.pop() ?? newParser();
  p.initialize(P!.REQUEST, {}, 0, P!.kLenientNone);
  p.owner = owner;
  return p;
}

/** Gives a parser back (unconsumed; never from inside one of its own callbacks). */
function returnParser(p: OwnedParser): void {
  p.owner = undefined;
  if (freeParsers.length < MAX_FREE_PARSERS) freeParsers.push(p);
  // Native parsers are not garbage collected: close() frees the C++ side
  // (later: the read that led here may still be unwinding through it).
  else setImmediate(() => p.close());
}

/** For tests: parsers waiting in the pool. */
export function freeParserCount(): number {
  return freeParsers.length;
}

// ---- connection ---------------------------------------------------------------

/** What a request body still being read fails with when its client goes. */
function connectionClosed(): Error {
  return Object.assign(new Error('client connection closed'), { code: 'ECONNRESET' });
}

const kConn = Symbol('mosn.h1Connection');
/** A client socket, with the connection reading it. */
type ConnSocket = net.Socket & { [kConn]?: H1Connection };
const ignore = (): void => undefined;

export class H1Connection {
  /** Set by a response waiting for the socket's 'drain'. */
  drainWaiter: (() => void) | undefined;
  /** Close at the next message boundary (stop, or the client sent EOF). */
  closing = false;
  /** The next response is the last: it says `Connection: close` (polite drain). */
  finalResponse = false;
  #parser: OwnedParser | undefined;
  /** The parser reads the socket itself (parser.consume): reading is controlled on the handle. */
  #consumed = false;
  /** Inside the parser (a callback of ours runs): it must not be returned now. */
  #executing = false;
  /** The request being read (headers done, body not yet). */
  #reading: H1Request | undefined;
  /** The response being produced (one at a time). */
  #res: H1Response | undefined;
  /** Pipelined requests waiting for their turn. */
  #queue: H1Request[] = [];
  /** A request has begun (bytes seen) and is not complete. */
  #inMessage = false;
  /** When the current request head began (or the connection was accepted); 0 when no head is pending. */
  #headSince: number;
  #idleSince: number;
  #bodyPaused = false;
  #upgrade: H1Request | undefined;
  /** Bytes after an Upgrade request head (the tunnel's first bytes). */
  #upgradeHead: Buffer | undefined;
  /** The engine stopped: no more parsing (closed, detached, upgraded, or a client error). */
  #gone = false;
  #closed = false;
  #headerParts: string[] | undefined;
  #urlPart = '';

  constructor(
    readonly socket: net.Socket,
    readonly handler: H1Handler,
    readonly timeouts: H1Timeouts,
    /** `Connection` and `Keep-Alive` header lines of a keep-alive HTTP/1.1 response (and the blank line). */
    readonly keepAliveHeaders: string,
    /** True for a connection that was accepted here (not migrated in): its first request head is timed from now. */
    fresh: boolean,
  ) {
    if (!P) {
      P = nativeHttpParser();
      methods = nativeHttpMethods();
    }
    const now = Date.now();
    this.#headSince = fresh ? now : 0;
    this.#idleSince = now;
    // One set of listener functions for all connections (no closures per
    // connection: ~300 bytes less for each idle one); they find theirs
    // through the socket.
    (socket as ConnSocket)[kConn] = this;
    socket.on('data', H1Connection.#socketData);
    socket.on('end', H1Connection.#socketEnd);
    socket.on('drain', H1Connection.#socketDrain);
    socket.on('error', ignore); // 'close' follows
    socket.on('close', H1Connection.#socketClose);
  }

  static readonly #socketData = function (this: ConnSocket, d: Buffer): void {
    const c = this[kConn];
    if (c) c.#data(d);
  };

  static readonly #socketEnd = function (this: ConnSocket): void {
    const c = this[kConn];
    if (c) c.#onEnd();
  };

  static readonly #socketDrain = function (this: ConnSocket): void {
    const c = this[kConn];
    if (!c) return;
    const w = c.drainWaiter;
    c.drainWaiter = undefined;
    w?.();
  };

  static readonly #socketClose = function (this: ConnSocket): void {
    const c = this[kConn];
    if (c) c.#onClose();
  };

  /** Nothing started, nothing owed: the connection may move or close without losing a byte. */
  get atBoundary(): boolean {
    return (
      !this.#gone &&
      !this.#res &&
      !this.#inMessage &&
      this.#queue.length === 0 &&
      !this.#upgrade &&
      !this.socket.destroyed &&
      this.socket.writableLength === 0 &&
      this.socket.readableLength === 0
    );
  }

  /** The response being produced, if its head has not left yet, will say `Connection: close`. */
  closeAfterCurrent(): void {
    const res = this.#res;
    if (res?.headPending) res.keepAlive = false;
  }

  /** A response is being produced or requests wait. */
  get busy(): boolean {
    return this.#res !== undefined || this.#queue.length > 0;
  }

  // ---- reading ----------------------------------------------------------------

  #data(d: Buffer): void {
    if (this.#gone) return;
    if (this.#upgrade) {
      // Waiting for the response ahead of an Upgrade request: keep the bytes for the tunnel.
      this.#upgradeHead = this.#upgradeHead ? Buffer.concat([this.#upgradeHead, d]) : d;
      return;
    }
    const parser = (this.#parser ??= takeParser(this));
    this.#executing = true;
    const r = parser.execute(d);
    this.#executing = false;
    if (this.#afterExecute(r, d)) return;
    // From the next read on, the parser takes the bytes straight from the socket.
    if (!this.#consumed && this.#parser === parser && !this.#gone) this.#consumed = consumeSocket(parser, this.socket);
  }

  /** A read the parser consumed from the socket itself has been parsed. */
  onExecute(r: number | Error, parser: NativeHttpParser): void {
    this.#executing = false;
    if (this.#gone) return;
    // Bytes after an Upgrade request head (only needed then: a copy).
    this.#afterExecute(r, this.#upgrade && typeof r === 'number' ? parser.getCurrentBuffer!() : undefined);
  }

  /** After a read was parsed: errors, and the Upgrade hand-off. True when the engine stopped. */
  #afterExecute(r: number | Error, d: Buffer | undefined): boolean {
    if (this.#gone) return true;
    if (r instanceof Error) {
      const code = (r as NodeJS.ErrnoException).code ?? '';
      this.#clientError(code === 'HPE_HEADER_OVERFLOW' ? 'header_overflow' : 'bad_request', `${code || r.message}`);
      return true;
    }
    const up = this.#upgrade;
    if (!up) return false;
    this.#upgradeHead = d ? d.subarray(r) : Buffer.alloc(0);
    // No more parsing on this connection: later bytes arrive as 'data'
    // events and join the tunnel's first bytes.
    this.#releaseParser();
    if (!this.#res) this.#toUpgrade(up);
    else this.socket.pause();
    return true;
  }

  onMessageBegin(): void {
    this.#executing = true;
    this.#inMessage = true;
    if (this.#headSince === 0) this.#headSince = Date.now();
  }

  onHeaderPart(headers: string[], url: string): void {
    this.#headerParts = this.#headerParts ? this.#headerParts.concat(headers) : headers;
    this.#urlPart += url;
  }

  onHeadersComplete(minor: number, headers: string[] | undefined, method: number, url: string | undefined, upgrade: boolean, keepAlive: boolean): number {
    this.#executing = true;
    this.#headSince = 0;
    if (this.#headerParts) {
      headers = headers ? this.#headerParts.concat(headers) : this.#headerParts;
      this.#headerParts = undefined;
    }
    const raw = headers ?? [];
    const fullUrl = this.#urlPart + (url ?? '');
    this.#urlPart = '';
    let host: string | undefined;
    let hasBody = false;
    let expectContinue = false;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!;
      const n = name.length;
      if (n === 4) {
        if (host === undefined && nameIs(name, 'host')) host = raw[i + 1];
      } else if (n === 14) {
        if (nameIs(name, 'content-length') && raw[i + 1] !== '0') hasBody = true;
      } else if (n === 17) {
        if (nameIs(name, 'transfer-encoding')) hasBody = true;
      } else if (n === 6) {
        if (nameIs(name, 'expect') && raw[i + 1]!.toLowerCase() === '100-continue') expectContinue = minor >= 1;
      }
    }
    const req = new H1Request(methods[method] ?? 'GET', fullUrl, minor, raw, host, keepAlive, hasBody && !upgrade ? new RequestBody(this) : null, expectContinue);
    if (upgrade) {
      // Skip the body; llhttp stops after this message and execute() returns
      // the bytes it used, the rest belongs to the tunnel.
      this.#upgrade = req;
      return 2;
    }
    this.#reading = req;
    if (this.#res || this.#queue.length > 0) {
      this.#queue.push(req);
      this.#updateReading();
    } else this.#dispatch(req);
    return 0;
  }

  onBody(chunk: Buffer): void {
    this.#executing = true;
    const req = this.#reading;
    if (!req || !req.body || req.discard) return;
    if (!req.body.push(chunk)) {
      this.#bodyPaused = true;
      this.#updateReading();
    }
  }

  onMessageComplete(): void {
    this.#executing = true;
    this.#inMessage = false;
    const req = this.#reading;
    if (!req) return;
    this.#reading = undefined;
    req.complete = true;
    if (req.body && !req.discard) req.body.push(null);
    if (this.#bodyPaused) {
      this.#bodyPaused = false;
      this.#updateReading();
    }
    // The response finished before the body was read: carry on now.
    if (!this.#res) this.#next();
  }

  /** The request body's consumer wants more. */
  bodyWanted(): void {
    if (!this.#bodyPaused) return;
    this.#bodyPaused = false;
    this.#updateReading();
  }

  #updateReading(): void {
    if (this.#gone) return;
    setReading(this.socket, this.#consumed, !this.#bodyPaused && this.#queue.length === 0);
  }

  #onEnd(): void {
    if (this.#gone) return;
    // The client sent EOF. As with Node's http.Server (and nginx's
    // client-abort check), a request still open is abandoned: a client that
    // closes while it waits is far more common than one that half-closes
    // and still reads.
    if (this.busy || this.#inMessage || this.#reading) this.socket.destroy();
    else {
      this.closing = true;
      this.socket.end();
    }
  }

  #onClose(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#gone = true;
    this.#releaseParser();
    // Only a body still being read gets an error (building one, with its
    // stack trace, for every closing connection cost ~2 % of a worker's CPU
    // with a new connection per request).
    const reading = this.#reading;
    if (reading?.body && !reading.complete) reading.body.destroy(connectionClosed());
    if (this.#queue.length > 0) {
      for (const q of this.#queue) if (q.body && !q.complete) q.body.destroy(connectionClosed());
      this.#queue = [];
    }
    const res = this.#res;
    this.#res = undefined;
    res?.abandon();
    this.handler.closed(this);
  }

  // ---- requests and responses ----------------------------------------------

  #dispatch(req: H1Request): void {
    const res = new H1Response(this, req);
    if (this.closing || this.finalResponse) res.keepAlive = false;
    this.#res = res;
    if (req.expectContinue) this.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
    this.handler.request(this, req, res);
  }

  /** The response `res` is flushed. */
  responseDone(res: H1Response): void {
    if (this.#res !== res || this.#gone) return;
    this.#res = undefined;
    if (!res.keepAlive) {
      this.closing = true;
      this.#queue = [];
      this.socket.destroySoon();
      return;
    }
    const req = res.req;
    if (!req.complete) {
      // An early response (an error, or the upstream answered before the
      // body ended): read the rest of the body and drop it.
      req.discard = true;
      if (this.#bodyPaused) {
        this.#bodyPaused = false;
        this.#updateReading();
      }
      return;
    }
    this.#next();
  }

  #next(): void {
    const q = this.#queue.shift();
    if (q) {
      this.#updateReading();
      this.#dispatch(q);
      return;
    }
    this.#boundary();
  }

  #boundary(): void {
    const up = this.#upgrade;
    if (up) {
      // An Upgrade request pipelined behind a response: its turn now.
      this.#toUpgrade(up);
      return;
    }
    this.#updateReading();
    this.#idleSince = Date.now();
    if (this.closing) {
      this.socket.end();
      return;
    }
    if (!this.#inMessage) this.handler.idle(this);
  }

  #toUpgrade(req: H1Request): void {
    const head = this.#upgradeHead ?? Buffer.alloc(0);
    this.#upgrade = undefined;
    this.#upgradeHead = undefined;
    this.#detachEngine();
    this.handler.upgrade(this, req, head);
  }

  #clientError(kind: ClientErrorKind, detail: string): void {
    const answered = !this.#res;
    this.handler.clientError(this, kind, detail, answered);
    this.#detachEngine();
    if (!answered) this.socket.destroy();
  }

  // ---- timers (driven by the listener's sweep) -------------------------------

  /** Checks the timeouts; returns false once the connection is gone. */
  sweep(now: number, parkAfterMs: number): boolean {
    if (this.#gone) return false;
    const t = this.timeouts;
    if (this.#headSince > 0 && t.requestHeaders > 0 && now - this.#headSince >= t.requestHeaders) {
      this.#clientError('headers_timeout', `no complete request head within ${t.requestHeaders} ms`);
      return false;
    }
    if (this.#res || this.#inMessage || this.#queue.length > 0 || this.#reading) return true;
    const idleFor = now - this.#idleSince;
    if (t.idle > 0 && idleFor >= t.idle) {
      this.socket.destroy();
      return false;
    }
    if (idleFor >= parkAfterMs && !this.#executing) this.#releaseParser();
    return true;
  }

  #releaseParser(): void {
    const p = this.#parser;
    if (!p) return;
    this.#parser = undefined;
    p.owner = undefined;
    const consumed = this.#consumed;
    this.#consumed = false;
    if (!this.#executing) {
      if (consumed) unconsumeSocket(p, this.socket);
      returnParser(p);
      return;
    }
    // Inside the parser: give it back once it has unwound. Until then no
    // read may reach it (libuv could read again before that).
    if (consumed) setHandleReading(this.socket, false);
    setImmediate(() => {
      if (consumed) unconsumeSocket(p, this.socket);
      returnParser(p);
    });
  }

  /** Stops the engine for good: the socket belongs to someone else now (tunnel, error reply). */
  #detachEngine(): void {
    this.#gone = true;
    this.socket.removeListener('data', H1Connection.#socketData);
    this.#releaseParser();
    this.socket.pause();
  }

  /**
   * Detaches the socket at a boundary so its fd can be sent to another
   * process: reading stops for good and every listener of ours goes.
   * Returns false when the connection is not at a boundary.
   */
  detach(): boolean {
    // Bytes already read into a paused socket's buffer: parse them first
    // (read() hands each chunk to our 'data' listener).
    while (this.socket.readableLength > 0 && !this.#gone && this.socket.read() !== null);
    if (!this.atBoundary || this.closing || this.finalResponse) return false;
    this.#gone = true;
    this.#releaseParser();
    stopReading(this.socket);
    for (const ev of ['data', 'end', 'drain', 'error', 'close'] as const) this.socket.removeAllListeners(ev);
    this.socket.on('error', ignore);
    (this.socket as ConnSocket)[kConn] = undefined;
    return true;
  }
}
