// The TCP proxy side of a listener: each accepted connection gets an
// upstream connection from the listener's cluster and an L4 tunnel. The
// same session type carries migrated TCP sessions and Upgrade tunnels.
import net from 'node:net';
import type { Listener } from '../../config/types.js';
import type { ErrorCode } from '../../common/errors.js';
import type { WorkerContext } from '../context.js';
import type { ConnectionExport, ConnState, TrackedConnection } from '../registry.js';
import { Tunnel, abortSocket, type TunnelImport, type TunnelResult } from './tunnel.js';

export class L4Session implements TrackedConnection {
  readonly state: ConnState = 'tunnel';
  readonly session: string;
  readonly started = performance.now();
  tunnel: Tunnel | undefined;
  upstream: string | undefined;

  constructor(
    private readonly ctx: WorkerContext,
    readonly id: number,
    readonly listener: string,
    readonly kind: 'tcp' | 'tunnel',
    readonly downstream: net.Socket,
    readonly migrations: number,
    session?: string,
  ) {
    this.session = session ?? `${process.pid}:${id}`;
    ctx.registry.add(this);
    ctx.metrics.connectionsActive.labels(listener).inc();
  }

  /** Joins the two sockets; `imported` for a session moved in from another worker. */
  run(upstream: net.Socket, idleMs: number, imported?: TunnelImport): Tunnel {
    const tunnel = new Tunnel(this.downstream, upstream, idleMs, (r) => this.finish(r), imported);
    this.tunnel = tunnel;
    tunnel.start();
    return tunnel;
  }

  closeGracefully(): void {
    // An L4 stream has no message boundary: it runs until its peers close
    // it or the drain deadline (destroy) comes.
  }

  drainPolitely(): void {}

  export(): ConnectionExport | undefined {
    const frozen = this.tunnel?.freeze();
    if (!frozen) return undefined;
    this.ctx.metrics.connectionsActive.labels(this.listener).dec();
    return {
      kind: 'l4',
      frozen,
      meta: { kind: this.kind, listener: this.listener, session: this.session, upstream: this.upstream, migrations: this.migrations + 1 },
    };
  }

  destroy(): void {
    if (this.tunnel) this.tunnel.destroy();
    else this.downstream.destroy();
  }

  #finished = false;

  /** Session over (not moved away): metrics, access log, registry. Once. */
  finish(r: TunnelResult | { error: ErrorCode; bytesDownToUp: 0; bytesUpToDown: 0 }): void {
    if (this.#finished) return;
    this.#finished = true;
    const { ctx, listener } = this;
    const duration = performance.now() - this.started;
    ctx.metrics.connectionsActive.labels(listener).dec();
    ctx.metrics.bytesIn.labels(listener).inc(r.bytesDownToUp);
    ctx.metrics.bytesOut.labels(listener).inc(r.bytesUpToDown);
    ctx.metrics.tcpSessions.labels(listener, r.error ? 'error' : 'ok').inc();
    ctx.metrics.tcpDuration.labels(listener).observe(duration / 1000);
    ctx.access.write({
      listener,
      kind: this.kind,
      upstream: this.upstream,
      duration_ms: Math.round(duration * 1000) / 1000,
      bytes_in: r.bytesDownToUp,
      bytes_out: r.bytesUpToDown,
      error: r.error,
      client: this.downstream.remoteAddress,
      ...(this.migrations > 0 ? { migrations: this.migrations } : {}),
    });
    ctx.registry.remove(this);
  }
}

export class TcpListener {
  constructor(
    readonly config: Listener,
    readonly ctx: WorkerContext,
  ) {}

  accept(socket: net.Socket): void {
    const { ctx, config } = this;
    const name = config.name;
    ctx.metrics.connectionsTotal.labels(name).inc();
    const session = new L4Session(ctx, ctx.registry.allocateId(), name, 'tcp', socket, 0);
    const cluster = ctx.clusters.get(config.cluster!);
    const endpoint = cluster?.pick();
    if (!cluster || !endpoint) {
      socket.destroy();
      session.finish({ error: 'MOSN_ERR_NO_HEALTHY_UPSTREAM', bytesDownToUp: 0, bytesUpToDown: 0 });
      return;
    }
    session.upstream = endpoint.address.text;
    endpoint.active++;
    // The client's bytes wait in the kernel (pauseOnConnect) until the
    // upstream is connected.
    const upstream = net.connect({ host: endpoint.address.host, port: endpoint.address.port, allowHalfOpen: true, noDelay: true });
    const connectTimer = setTimeout(() => upstream.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), cluster.config.connect_timeout);
    // The client gave up while we were connecting: nothing will ever reach
    // 'connect' or 'error' once we destroy the upstream, so settle here.
    const onEarlyClientError = (): void => {
      clearTimeout(connectTimer);
      upstream.removeAllListeners('connect');
      upstream.removeAllListeners('error');
      upstream.on('error', () => undefined);
      upstream.destroy();
      endpoint.active--;
      session.finish({ error: 'MOSN_ERR_DOWNSTREAM_RESET', bytesDownToUp: 0, bytesUpToDown: 0 });
    };
    socket.once('error', onEarlyClientError);
    upstream.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      socket.removeListener('error', onEarlyClientError);
      socket.on('error', () => undefined);
      endpoint.active--;
      const code: ErrorCode = err.code === 'ETIMEDOUT' ? 'MOSN_ERR_UPSTREAM_CONNECT_TIMEOUT' : 'MOSN_ERR_UPSTREAM_CONNECT';
      ctx.metrics.upstreamConnectErrors.labels(cluster.name).inc();
      ctx.metrics.upstreamErrors.labels(cluster.name, code).inc();
      abortSocket(socket);
      session.finish({ error: code, bytesDownToUp: 0, bytesUpToDown: 0 });
    });
    upstream.once('connect', () => {
      clearTimeout(connectTimer);
      upstream.removeAllListeners('error');
      socket.removeListener('error', onEarlyClientError);
      if (socket.destroyed) {
        endpoint.active--;
        upstream.destroy();
        session.finish({ error: 'MOSN_ERR_DOWNSTREAM_RESET', bytesDownToUp: 0, bytesUpToDown: 0 });
        return;
      }
      // least_request counts the session until it ends or moves away.
      upstream.once('close', () => endpoint.active--);
      session.run(upstream, config.timeouts.idle);
    });
  }
}
