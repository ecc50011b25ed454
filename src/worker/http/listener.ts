// The HTTP/1.1 side of a listener. Node's http.Server parses (llhttp), but
// it never listens itself: the worker's accept loop hands it connections
// with emit('connection'), so the same path serves accepted and (later)
// migrated connections, and each one is tracked in the registry.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type net from 'node:net';
import type { Listener, Route, VirtualHost } from '../../config/types.js';
import type { ErrorCode } from '../../common/errors.js';
import { activateHttpServer, detachHttpSocket, httpAtBoundary, idleHttpParsers } from '../../common/node-internals.js';
import type { WorkerContext } from '../context.js';
import type { Tunnel } from '../l4/tunnel.js';
import type { ConnectionExport, ConnKind, ConnState, TrackedConnection } from '../registry.js';
import { upstreamRequestHeaders, statusClass } from './headers.js';
import { ProxyExchange } from './proxy.js';
import { Router } from './router.js';
import { endWithResponse } from './raw-response.js';
import { handleUpgrade } from './upgrade.js';

const kConn = Symbol('mosn.connection');

export class HttpConnection implements TrackedConnection {
  readonly id: number;
  readonly listener: string;
  kind: ConnKind = 'http';
  inflight = 0;
  /** The newest response not yet finished (what goes out last on this connection). */
  latest: ServerResponse | undefined;
  /** Close at the next message boundary (stop, or polite drain). */
  closing = false;
  /** Set when the connection became an Upgrade tunnel. */
  tunnel: Tunnel | undefined;
  upstream: string | undefined;
  #readMark = 0;
  #writeMark = 0;

  constructor(
    id: number,
    readonly owner: HttpListener,
    readonly socket: net.Socket,
    /** Generations that served this connection before this one. */
    readonly migrations: number,
  ) {
    this.id = id;
    this.listener = owner.config.name;
  }

  get state(): ConnState {
    if (this.kind === 'tunnel') return 'tunnel';
    return this.inflight > 0 ? 'in_request' : 'idle';
  }

  closeGracefully(): void {
    this.closing = true;
    this.#closeAfterLatest();
    if (this.kind === 'http' && this.inflight === 0) this.socket.end();
  }

  drainPolitely(): void {
    // The next response says `Connection: close`; an idle connection is
    // left alone, since a request may be on the wire right now.
    this.closing = true;
    this.#closeAfterLatest();
  }

  /**
   * A response still to be written is this connection's next one: it says
   * `Connection: close` (Node then closes after it). Closing after a
   * response that already said keep-alive would race the client's next
   * request.
   */
  #closeAfterLatest(): void {
    const res = this.latest;
    if (res && !res.headersSent && !res.writableEnded) res.shouldKeepAlive = false;
  }

  export(): ConnectionExport | undefined {
    if (this.kind === 'tunnel') {
      const frozen = this.tunnel?.freeze();
      if (!frozen) return undefined;
      this.owner.forget(this);
      return {
        kind: 'l4',
        frozen,
        meta: { kind: 'tunnel', listener: this.listener, session: `${process.pid}:${this.id}`, upstream: this.upstream, migrations: this.migrations + 1 },
      };
    }
    if (this.inflight > 0 || this.closing || !httpAtBoundary(this.socket, this.owner.idleParsers())) return undefined;
    this.owner.forget(this);
    detachHttpSocket(this.socket);
    return { kind: 'http', socket: this.socket, meta: { kind: 'http', listener: this.listener, migrations: this.migrations + 1 } };
  }

  destroy(): void {
    if (this.tunnel) this.tunnel.destroy();
    else this.socket.destroy();
  }

  /** Bytes read/written since the last call (metrics, access log). */
  takeBytes(): { read: number; written: number } {
    const r = this.socket.bytesRead;
    const w = this.socket.bytesWritten;
    const out = { read: r - this.#readMark, written: w - this.#writeMark };
    this.#readMark = r;
    this.#writeMark = w;
    return out;
  }
}

export function connectionOf(socket: net.Socket): HttpConnection | undefined {
  return (socket as unknown as Record<symbol, HttpConnection | undefined>)[kConn];
}

/** The per-listener metric children, looked up once (labels() hashes its arguments on every call). */
function listenerMetrics(ctx: WorkerContext, name: string) {
  const m = ctx.metrics;
  return {
    connectionsTotal: m.connectionsTotal.labels(name),
    connectionsActive: m.connectionsActive.labels(name),
    bytesIn: m.bytesIn.labels(name),
    bytesOut: m.bytesOut.labels(name),
    duration: m.httpDuration.labels(name),
  };
}

export class HttpListener {
  readonly server: http.Server;
  readonly #router: Router;
  readonly #m: ReturnType<typeof listenerMetrics>;
  readonly #statusCounters = new Map<string, { inc(): void }>();
  #idleParsers: Set<unknown> | undefined;

  constructor(
    readonly config: Listener,
    readonly ctx: WorkerContext,
  ) {
    this.#router = new Router(config.virtual_hosts);
    this.#m = listenerMetrics(ctx, config.name);
    this.server = http.createServer({
      keepAliveTimeout: config.timeouts.idle,
      headersTimeout: config.timeouts.request_headers,
      requestTimeout: 0,
      connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(config.timeouts.request_headers / 4))),
      noDelay: true,
    });
    this.server.timeout = 0;
    activateHttpServer(this.server);
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: net.Socket, head: Buffer) => {
      const conn = connectionOf(socket);
      const match = this.#router.route(req.headers.host, req.url ?? '/', req.headers);
      handleUpgrade(this, conn, req, socket, head, match);
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => this.#onClientError(err, socket));
  }

  /**
   * Takes a paused socket: freshly accepted, or imported from another
   * worker (`migrations` > 0) at a message boundary.
   */
  accept(socket: net.Socket, migrations = 0): void {
    const ctx = this.ctx;
    const conn = new HttpConnection(ctx.registry.allocateId(), this, socket, migrations);
    (socket as unknown as Record<symbol, HttpConnection>)[kConn] = conn;
    this.#tracked.add(conn);
    ctx.registry.add(conn);
    if (migrations === 0) this.#m.connectionsTotal.inc();
    this.#m.connectionsActive.inc();
    socket.once('close', () => {
      this.forget(conn);
      ctx.registry.remove(conn);
    });
    this.server.emit('connection', socket);
    socket.resume();
  }

  /** The connection closed or moved away: settle its metrics once. */
  forget(conn: HttpConnection): void {
    if (!this.#tracked.delete(conn)) return;
    this.#countBytes(conn);
    this.#m.connectionsActive.dec();
  }

  readonly #tracked = new WeakSet<HttpConnection>();

  /** Parsers with no message started, computed once per event-loop turn. */
  idleParsers(): Set<unknown> {
    if (!this.#idleParsers) {
      this.#idleParsers = idleHttpParsers(this.server);
      setImmediate(() => (this.#idleParsers = undefined));
    }
    return this.#idleParsers;
  }

  #countBytes(conn: HttpConnection): { read: number; written: number } {
    const b = conn.takeBytes();
    this.#m.bytesIn.inc(b.read);
    this.#m.bytesOut.inc(b.written);
    return b;
  }

  #onRequest(req: IncomingMessage, res: ServerResponse): void {
    const started = performance.now();
    const conn = connectionOf(req.socket);
    if (conn) {
      conn.inflight++;
      conn.latest = res;
    }
    if (this.ctx.draining || conn?.closing) res.shouldKeepAlive = false;

    const match = this.#router.route(req.headers.host, req.url ?? '/', req.headers);
    // Read now: once the body has streamed upstream, req.socket is null.
    const client = req.socket.remoteAddress;
    const finish = (status: number, error: ErrorCode | undefined, bytesOut: number, upstream?: string): void => {
      this.#record(req, res, conn, match?.vhost, match?.route, status, error, upstream, started, bytesOut, client);
    };
    if (!match) {
      this.#local(res, 404, 'no route matched\n', 'MOSN_ERR_NO_ROUTE');
      finish(404, 'MOSN_ERR_NO_ROUTE', 0);
      return;
    }
    const { route } = match;
    if (route.direct_response) {
      const d = route.direct_response;
      res.writeHead(d.status, { 'content-type': d.content_type, 'content-length': Buffer.byteLength(d.body) });
      res.end(d.body);
      finish(d.status, undefined, Buffer.byteLength(d.body));
      return;
    }
    if (route.redirect) {
      const location = redirectLocation(route, req);
      res.writeHead(route.redirect.status, { location, 'content-length': 0 });
      res.end();
      finish(route.redirect.status, undefined, 0);
      return;
    }
    const action = route.route!;
    const cluster = this.ctx.clusters.get(action.cluster);
    const endpoint = cluster?.pick();
    if (!cluster || !endpoint) {
      this.#local(res, 503, 'no healthy upstream\n', 'MOSN_ERR_NO_HEALTHY_UPSTREAM');
      finish(503, 'MOSN_ERR_NO_HEALTHY_UPSTREAM', 0);
      return;
    }
    const upstream = endpoint.address.text;
    const exchange = new ProxyExchange(
      req,
      res,
      endpoint,
      action.timeout,
      (status, code, connect) => {
        if (connect) this.ctx.metrics.upstreamConnectErrors.labels(cluster.name).inc();
        this.ctx.metrics.upstreamErrors.labels(cluster.name, code).inc();
        this.#local(res, status, `upstream error: ${code}\n`, code);
      },
      (o) => finish(o.status, o.error, o.bytesOut, upstream),
    );
    const headers = upstreamRequestHeaders(
      req.rawHeaders,
      { clientIp: req.socket.remoteAddress ?? '', proto: 'http', host: req.headers.host },
      action.host_rewrite,
    );
    exchange.start(rewritePath(req.url ?? '/', route), headers);
  }

  /** A response generated by the proxy itself. */
  #local(res: ServerResponse, status: number, body: string, code: ErrorCode): void {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), 'x-mosn-error': code });
    res.end(body);
  }

  #record(
    req: IncomingMessage,
    response: ServerResponse,
    conn: HttpConnection | undefined,
    vhost: VirtualHost | undefined,
    route: Route | undefined,
    status: number,
    error: ErrorCode | undefined,
    upstream: string | undefined,
    started: number,
    bytesOut: number,
    client: string | undefined,
  ): void {
    const done = (): void => {
      if (conn) {
        conn.inflight--;
        if (conn.latest === response) conn.latest = undefined;
      }
      const duration = performance.now() - started;
      const cls = statusClass(status);
      const key = `${vhost?.name ?? ''}\0${route?.name ?? ''}\0${cls}`;
      let counter = this.#statusCounters.get(key);
      if (!counter) {
        counter = this.ctx.metrics.httpRequests.labels(this.config.name, vhost?.name ?? '', route?.name ?? '', cls);
        this.#statusCounters.set(key, counter);
      }
      counter.inc();
      this.#m.duration.observe(duration / 1000);
      const bytes = conn ? this.#countBytes(conn) : { read: 0 };
      this.ctx.access.write({
        listener: this.config.name,
        kind: 'http',
        method: req.method ?? '',
        host: req.headers.host ?? '',
        path: req.url ?? '',
        status,
        vhost: vhost?.name,
        route: route?.name,
        upstream,
        duration_ms: Math.round(duration * 1000) / 1000,
        bytes_in: bytes.read,
        bytes_out: bytesOut,
        error,
        client,
      });
      if (conn) {
        if (conn.inflight === 0 && conn.kind === 'http' && !conn.socket.destroyed) {
          // Stopping: close now. Leaving politely: a response that said
          // `Connection: close` is followed by Node's own close; after one
          // that said keep-alive the connection waits, idle, for its next
          // request (answered with `Connection: close`).
          if (conn.closing && this.ctx.draining) conn.socket.end();
          // Let Node finish its own bookkeeping of the response first.
          else if (this.ctx.registry.onBoundary) setImmediate(() => this.ctx.registry.boundary(conn));
        }
      }
    };
    // Record once the response has left (or the connection died).
    if (!response.writableFinished && !response.destroyed) response.once('close', done);
    else done();
  }

  #onClientError(err: NodeJS.ErrnoException, socket: net.Socket): void {
    const timeout = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    const code: ErrorCode = timeout ? 'MOSN_ERR_DOWNSTREAM_HEADERS_TIMEOUT' : err.code === 'ECONNRESET' ? 'MOSN_ERR_DOWNSTREAM_RESET' : 'MOSN_ERR_BAD_REQUEST';
    const status = timeout ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    if (code !== 'MOSN_ERR_DOWNSTREAM_RESET') {
      this.ctx.access.write({ listener: this.config.name, kind: 'http', status, duration_ms: 0, bytes_in: 0, bytes_out: 0, error: code, client: socket.remoteAddress });
    }
    if (socket.writable && !(socket as unknown as { _httpMessage?: unknown })._httpMessage) {
      endWithResponse(socket, status, http.STATUS_CODES[status] ?? 'Bad Request', code);
    }
    socket.destroySoon();
  }
}

function rewritePath(url: string, route: Route): string {
  let path = url;
  if (!path.startsWith('/')) {
    // absolute-form (http://host/path): forward origin-form
    try {
      const u = new URL(path);
      path = u.pathname + u.search;
    } catch {
      path = '/';
    }
  }
  const rw = route.route?.prefix_rewrite;
  if (rw !== undefined) path = rewritePrefix(path, route, rw);
  return path;
}

/** prefix_rewrite replaces the matched prefix, or the whole path for a path match; the query stays. */
function rewritePrefix(url: string, route: Route, rw: string): string {
  const { prefix, path: exact } = route.match;
  if (prefix !== undefined && url.startsWith(prefix)) return rw + url.slice(prefix.length);
  if (exact !== undefined) {
    const q = url.indexOf('?');
    if ((q < 0 ? url : url.slice(0, q)) === exact) return rw + (q < 0 ? '' : url.slice(q));
  }
  return url;
}

function redirectLocation(route: Route, req: IncomingMessage): string {
  const r = route.redirect!;
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  let path = q < 0 ? url : url.slice(0, q);
  const query = q < 0 || r.strip_query ? '' : url.slice(q);
  if (r.path !== undefined) path = r.path;
  else if (r.prefix_rewrite !== undefined) path = rewritePrefix(path, route, r.prefix_rewrite);
  if (r.scheme === undefined && r.host === undefined) return path + query;
  const scheme = r.scheme ?? 'http';
  const host = r.host ?? req.headers.host ?? 'localhost';
  return `${scheme}://${host}${path}${query}`;
}
