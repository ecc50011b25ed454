// The HTTP/1.1 side of a listener: the worker's accept loop hands it
// connections (freshly accepted, or migrated in from another process), each
// one served by the engine in h1-server.ts and tracked in the registry.
// Requests are routed here: proxied (proxy.ts), answered directly, redirected,
// or handed to the Upgrade tunnel (upgrade.ts).
import http from 'node:http';
import type net from 'node:net';
import type { Listener, Route, VirtualHost } from '../../config/types.js';
import type { ErrorCode } from '../../common/errors.js';
import type { Tally } from '../metrics.js';
import type { WorkerContext } from '../context.js';
import type { Tunnel } from '../l4/tunnel.js';
import type { ConnectionExport, ConnKind, ConnState, TrackedConnection } from '../registry.js';
import { H1Connection, type ClientErrorKind, type H1Handler, type H1Request, type H1Response, type H1Timeouts } from './h1-server.js';
import { upstreamRequestHeaders, statusClass } from './headers.js';
import { ProxyExchange } from './proxy.js';
import { Router } from './router.js';
import { endWithResponse } from './raw-response.js';
import { handleUpgrade } from './upgrade.js';

export class HttpConnection extends H1Connection implements TrackedConnection {
  readonly id: number;
  readonly listener: string;
  kind: ConnKind = 'http';
  /** Set when the connection became an Upgrade tunnel. */
  tunnel: Tunnel | undefined;
  upstream: string | undefined;
  /** The client's address, read once. */
  readonly remoteAddress: string | undefined;
  #readMark = 0;
  #writeMark = 0;

  constructor(
    id: number,
    readonly owner: HttpListener,
    socket: net.Socket,
    /** Generations that served this connection before this one. */
    readonly migrations: number,
  ) {
    super(socket, owner, owner.timeouts, owner.keepAliveHeaders, migrations === 0);
    this.id = id;
    this.listener = owner.config.name;
    this.remoteAddress = socket.remoteAddress;
  }

  get state(): ConnState {
    if (this.kind === 'tunnel') return 'tunnel';
    return this.busy ? 'in_request' : 'idle';
  }

  closeGracefully(): void {
    // Close at the next boundary; the response being written (if its head
    // has not left yet) says `Connection: close`.
    this.closing = true;
    this.finalResponse = true;
    this.closeAfterCurrent();
    if (this.kind === 'http' && !this.busy) this.socket.end();
  }

  drainPolitely(): void {
    // The next response says `Connection: close`; an idle connection is
    // left alone, since a request may be on the wire right now. Closing
    // after a response that already said keep-alive would race the
    // client's next request.
    this.finalResponse = true;
    this.closeAfterCurrent();
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
    if (!this.detach()) return undefined;
    this.owner.forget(this);
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

/** The per-listener metric children, looked up once (a lookup builds a key; an update is an addition). */
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

/** The counter key of requests no virtual host matched. */
const NO_MATCH = {};

/**
 * A connection idle this long gives its parser back to the pool (its next
 * request then takes one again: a few µs, against ~2 KB held per idle
 * connection).
 */
const PARK_PARSER_AFTER_MS = 500;

function reasonOf(status: number): string {
  return http.STATUS_CODES[status] ?? 'Unknown';
}

export class HttpListener implements H1Handler {
  readonly timeouts: H1Timeouts;
  /** `Connection`/`Keep-Alive` lines of a keep-alive HTTP/1.1 response, with the blank line. */
  readonly keepAliveHeaders: string;
  readonly #router: Router;
  readonly #m: ReturnType<typeof listenerMetrics>;
  /** Request counters by route (or virtual host, or NO_MATCH), then status class (index: status / 100). */
  readonly #statusCounters = new Map<object, (Tally | undefined)[]>();
  /** Connections whose engine runs (their timeouts are swept). */
  readonly #live = new Set<HttpConnection>();
  /** Connections counted in connections_active (settled once). */
  readonly #tracked = new WeakSet<HttpConnection>();

  constructor(
    readonly config: Listener,
    readonly ctx: WorkerContext,
  ) {
    this.#router = new Router(config.virtual_hosts);
    this.#m = listenerMetrics(ctx, config.name);
    const idle = config.timeouts.idle;
    const headers = config.timeouts.request_headers;
    this.timeouts = { idle, requestHeaders: headers };
    this.keepAliveHeaders = idle > 0 ? `connection: keep-alive\r\nkeep-alive: timeout=${Math.floor(idle / 1000)}\r\n\r\n` : 'connection: keep-alive\r\n\r\n';
    // One timer per listener checks every connection's head and idle
    // deadlines (as Node's connectionsCheckingInterval does): no timer per
    // request or per connection.
    const shortest = Math.min(idle > 0 ? idle : Infinity, headers > 0 ? headers : Infinity);
    const every = Number.isFinite(shortest) ? Math.min(PARK_PARSER_AFTER_MS / 2, Math.max(25, Math.floor(shortest / 4))) : PARK_PARSER_AFTER_MS / 2;
    setInterval(() => this.#sweep(), every).unref();
    // Byte counters: per request only when the access log needs them;
    // otherwise open connections are counted when metrics are read, and
    // each one when it closes.
    ctx.metrics.onCollect(() => {
      for (const c of this.#live) this.#countBytes(c);
    });
  }

  #sweep(): void {
    const now = Date.now();
    for (const c of this.#live) if (!c.sweep(now, PARK_PARSER_AFTER_MS)) this.#live.delete(c);
  }

  /**
   * Takes a paused socket: freshly accepted, or imported from another
   * worker (`migrations` > 0) at a message boundary.
   */
  accept(socket: net.Socket, migrations = 0): void {
    const ctx = this.ctx;
    const conn = new HttpConnection(ctx.registry.allocateId(), this, socket, migrations);
    this.#tracked.add(conn);
    this.#live.add(conn);
    ctx.registry.add(conn);
    if (migrations === 0) this.#m.connectionsTotal.inc();
    this.#m.connectionsActive.inc();
    socket.resume();
  }

  /** The connection closed or moved away: settle its metrics once. */
  forget(conn: HttpConnection): void {
    this.#live.delete(conn);
    if (!this.#tracked.delete(conn)) return;
    this.#countBytes(conn);
    this.#m.connectionsActive.dec();
  }

  #countBytes(conn: HttpConnection): { read: number; written: number } {
    const b = conn.takeBytes();
    this.#m.bytesIn.inc(b.read);
    this.#m.bytesOut.inc(b.written);
    return b;
  }

  // ---- H1Handler ------------------------------------------------------------

  closed(c: H1Connection): void {
    const conn = c as HttpConnection;
    this.forget(conn);
    this.ctx.registry.remove(conn);
  }

  idle(c: H1Connection): void {
    // Leaving: a connection at a boundary may move now (after the engine's
    // own bookkeeping of this turn).
    if (this.ctx.registry.onBoundary) setImmediate(() => this.ctx.registry.boundary(c as HttpConnection));
  }

  upgrade(c: H1Connection, req: H1Request, head: Buffer): void {
    const conn = c as HttpConnection;
    this.#live.delete(conn);
    if (req.method === 'CONNECT') {
      endWithResponse(conn.socket, 501, reasonOf(501), 'MOSN_ERR_BAD_REQUEST');
      this.ctx.access.write({ listener: this.config.name, kind: 'http', method: req.method, host: req.host ?? '', path: req.url, status: 501, duration_ms: 0, bytes_in: 0, bytes_out: 0, error: 'MOSN_ERR_BAD_REQUEST', client: conn.remoteAddress });
      conn.socket.destroySoon();
      return;
    }
    const match = this.#router.route(req.host, req.url, req);
    handleUpgrade(this, conn, req, conn.socket, head, match);
  }

  clientError(c: H1Connection, kind: ClientErrorKind, detail: string, answered: boolean): void {
    const conn = c as HttpConnection;
    this.#live.delete(conn);
    const code: ErrorCode = kind === 'headers_timeout' ? 'MOSN_ERR_DOWNSTREAM_HEADERS_TIMEOUT' : 'MOSN_ERR_BAD_REQUEST';
    const status = kind === 'headers_timeout' ? 408 : kind === 'header_overflow' ? 431 : 400;
    this.ctx.access.write({ listener: this.config.name, kind: 'http', status, duration_ms: 0, bytes_in: 0, bytes_out: 0, error: code, detail, client: conn.remoteAddress });
    const socket = conn.socket;
    if (answered && socket.writable) endWithResponse(socket, status, reasonOf(status), code);
    socket.destroySoon();
  }

  request(c: H1Connection, req: H1Request, res: H1Response): void {
    const conn = c as HttpConnection;
    const started = performance.now();
    if (this.ctx.draining) res.keepAlive = false;

    const match = this.#router.route(req.host, req.url, req);
    if (!match) {
      this.#local(res, 404, 'no route matched\n', 'MOSN_ERR_NO_ROUTE');
      this.#record(req, res, conn, undefined, undefined, 404, 'MOSN_ERR_NO_ROUTE', undefined, started, 0);
      return;
    }
    const { vhost, route } = match;
    if (route.direct_response) {
      const d = route.direct_response;
      const body = Buffer.from(d.body);
      res.writeHead(d.status, reasonOf(d.status), ['content-type', d.content_type, 'content-length', String(body.length)]);
      res.end(body);
      this.#record(req, res, conn, vhost, route, d.status, undefined, undefined, started, body.length);
      return;
    }
    if (route.redirect) {
      const location = redirectLocation(route, req);
      res.writeHead(route.redirect.status, reasonOf(route.redirect.status), ['location', location, 'content-length', '0']);
      res.end();
      this.#record(req, res, conn, vhost, route, route.redirect.status, undefined, undefined, started, 0);
      return;
    }
    const action = route.route!;
    const cluster = this.ctx.clusters.get(action.cluster);
    const endpoint = cluster?.pick();
    if (!cluster || !endpoint) {
      this.#local(res, 503, 'no healthy upstream\n', 'MOSN_ERR_NO_HEALTHY_UPSTREAM');
      this.#record(req, res, conn, vhost, route, 503, 'MOSN_ERR_NO_HEALTHY_UPSTREAM', undefined, started, 0);
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
      (o) => this.#record(req, res, conn, vhost, route, o.status, o.error, upstream, started, o.bytesOut),
    );
    const headers = upstreamRequestHeaders(req.rawHeaders, { clientIp: conn.remoteAddress ?? '', proto: 'http', host: req.host }, action.host_rewrite);
    exchange.start(rewritePath(req.url, route), headers);
  }

  /** A response generated by the proxy itself. */
  #local(res: H1Response, status: number, body: string, code: ErrorCode): void {
    if (res.headersSent || res.destroyed) return;
    const buf = Buffer.from(body);
    res.writeHead(status, reasonOf(status), ['content-type', 'text/plain; charset=utf-8', 'content-length', String(buf.length), 'x-mosn-error', code]);
    res.end(buf);
  }

  #requestCounter(vhost: VirtualHost | undefined, route: Route | undefined, status: number): Tally {
    const key = route ?? vhost ?? NO_MATCH;
    let byClass = this.#statusCounters.get(key);
    if (!byClass) this.#statusCounters.set(key, (byClass = []));
    const i = Math.floor(status / 100);
    let t = byClass[i];
    if (!t) {
      const m = this.ctx.metrics;
      t = byClass[i] = m.httpRequests.labels(this.config.name, vhost?.name ?? '', route?.name ?? '', statusClass(status));
    }
    return t;
  }

  #record(
    req: H1Request,
    res: H1Response,
    conn: HttpConnection,
    vhost: VirtualHost | undefined,
    route: Route | undefined,
    status: number,
    error: ErrorCode | undefined,
    upstream: string | undefined,
    started: number,
    bytesOut: number,
  ): void {
    // Recorded once the response has left (or the connection died).
    res.onFinished(() => {
      const duration = performance.now() - started;
      this.#requestCounter(vhost, route, status).inc();
      this.#m.duration.observe(duration / 1000);
      if (!this.ctx.access.enabled) return;
      const bytes = this.#countBytes(conn);
      this.ctx.access.write({
        listener: this.config.name,
        kind: 'http',
        method: req.method,
        host: req.host ?? '',
        path: req.url,
        status,
        vhost: vhost?.name,
        route: route?.name,
        upstream,
        duration_ms: Math.round(duration * 1000) / 1000,
        bytes_in: bytes.read,
        bytes_out: bytesOut,
        error,
        client: conn.remoteAddress,
      });
    });
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

function redirectLocation(route: Route, req: H1Request): string {
  const r = route.redirect!;
  const url = req.url;
  const q = url.indexOf('?');
  let path = q < 0 ? url : url.slice(0, q);
  const query = q < 0 || r.strip_query ? '' : url.slice(q);
  if (r.path !== undefined) path = r.path;
  else if (r.prefix_rewrite !== undefined) path = rewritePrefix(path, route, r.prefix_rewrite);
  if (r.scheme === undefined && r.host === undefined) return path + query;
  const scheme = r.scheme ?? 'http';
  const host = r.host ?? req.host ?? 'localhost';
  return `${scheme}://${host}${path}${query}`;
}
