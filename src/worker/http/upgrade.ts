// HTTP `Upgrade` (WebSocket and friends): the handshake request goes to the
// upstream as-is (hop-by-hop headers removed but Upgrade/Connection kept),
// and from then on both sockets are joined by an L4 tunnel. The upstream's
// answer is passed through byte for byte, whatever it is.
import net from 'node:net';
import type { ErrorCode } from '../../common/errors.js';
import { Tunnel } from '../l4/tunnel.js';
import type { RouteResult } from './router.js';
import type { H1Request } from './h1-server.js';
import type { HttpConnection, HttpListener } from './listener.js';
import { upstreamRequestHeaders } from './headers.js';
import { endWithResponse } from './raw-response.js';

const KEEP_FOR_UPGRADE = new Set(['upgrade', 'connection']);

export function handleUpgrade(
  listener: HttpListener,
  conn: HttpConnection | undefined,
  req: H1Request,
  socket: net.Socket,
  head: Buffer,
  match: RouteResult | undefined,
): void {
  const ctx = listener.ctx;
  const started = performance.now();
  const name = listener.config.name;
  const log = (status: number, error: ErrorCode | undefined, upstream: string | undefined, bytesIn: number, bytesOut: number): void => {
    ctx.access.write({
      listener: name,
      kind: 'tunnel',
      method: req.method,
      host: req.host ?? '',
      path: req.url,
      status,
      vhost: match?.vhost.name,
      route: match?.route.name,
      upstream,
      duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
      bytes_in: bytesIn,
      bytes_out: bytesOut,
      error,
      client: conn?.remoteAddress,
    });
  };
  socket.pause();
  const route = match?.route;
  if (!route) {
    endWithResponse(socket, 404, 'Not Found', 'MOSN_ERR_NO_ROUTE');
    log(404, 'MOSN_ERR_NO_ROUTE', undefined, 0, 0);
    return;
  }
  if (route.direct_response || route.redirect) {
    const status = route.direct_response?.status ?? route.redirect!.status;
    endWithResponse(socket, status, 'Not Upgraded', undefined);
    log(status, undefined, undefined, 0, 0);
    return;
  }
  const cluster = ctx.clusters.get(route.route!.cluster);
  const endpoint = cluster?.pick();
  if (!cluster || !endpoint) {
    endWithResponse(socket, 503, 'Service Unavailable', 'MOSN_ERR_NO_HEALTHY_UPSTREAM');
    log(503, 'MOSN_ERR_NO_HEALTHY_UPSTREAM', undefined, 0, 0);
    return;
  }
  const upstreamAddr = endpoint.address.text;
  endpoint.active++;
  const upstream = net.connect({ host: endpoint.address.host, port: endpoint.address.port, allowHalfOpen: true, noDelay: true });
  const connectTimer = setTimeout(() => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), cluster.config.connect_timeout);
  if (conn) {
    conn.kind = 'tunnel';
    conn.upstream = upstreamAddr;
  }
  upstream.once('error', (err: NodeJS.ErrnoException) => {
    clearTimeout(connectTimer);
    endpoint.active--;
    const timeout = err.code === 'ETIMEDOUT';
    const code: ErrorCode = timeout ? 'MOSN_ERR_UPSTREAM_CONNECT_TIMEOUT' : 'MOSN_ERR_UPSTREAM_CONNECT';
    ctx.metrics.upstreamConnectErrors.labels(cluster.name).inc();
    ctx.metrics.upstreamErrors.labels(cluster.name, code).inc();
    if (timeout) endWithResponse(socket, 504, 'Gateway Timeout', code);
    else endWithResponse(socket, 502, 'Bad Gateway', code);
    log(timeout ? 504 : 502, code, upstreamAddr, 0, 0);
  });
  upstream.once('connect', () => {
    clearTimeout(connectTimer);
    upstream.removeAllListeners('error');
    const action = route.route!;
    const headers = upstreamRequestHeaders(
      req.rawHeaders,
      { clientIp: conn?.remoteAddress ?? '', proto: 'http', host: req.host },
      action.host_rewrite,
      KEEP_FOR_UPGRADE,
    );
    let headText = `${req.method} ${req.url} HTTP/1.1\r\n`;
    for (let i = 0; i < headers.length; i += 2) headText += `${headers[i]!}: ${headers[i + 1]!}\r\n`;
    upstream.write(headText + '\r\n');
    if (head.length > 0) upstream.write(head);
    let status = 0;
    upstream.once('data', (first: Buffer) => {
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(first.subarray(0, 16).toString('latin1'));
      status = m ? Number(m[1]) : 0;
    });
    const tunnel = new Tunnel(socket, upstream, listener.config.timeouts.idle, (r) => {
      endpoint.active--;
      ctx.metrics.tcpSessions.labels(name, r.error ? 'error' : 'ok').inc();
      ctx.metrics.tcpDuration.labels(name).observe((performance.now() - started) / 1000);
      log(status, r.error, upstreamAddr, r.bytesDownToUp + head.length, r.bytesUpToDown);
    });
    if (conn) conn.tunnel = tunnel;
    tunnel.start();
  });
}
