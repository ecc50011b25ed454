// The TCP proxy side of a listener: each accepted connection gets an
// upstream connection from the listener's cluster and an L4 tunnel.
import net from 'node:net';
import type { Listener } from '../../config/types.js';
import type { ErrorCode } from '../../common/errors.js';
import type { WorkerContext } from '../context.js';
import type { ConnState, TrackedConnection } from '../registry.js';
import { Tunnel, abortSocket } from './tunnel.js';

class TcpSession implements TrackedConnection {
  readonly kind = 'tcp' as const;
  readonly state: ConnState = 'tunnel';
  tunnel: Tunnel | undefined;
  constructor(
    readonly id: number,
    readonly listener: string,
    readonly downstream: net.Socket,
  ) {}

  closeGracefully(): void {
    // An L4 stream has no message boundary: it runs until its peers close
    // it or the drain deadline (destroy) comes.
  }

  destroy(): void {
    if (this.tunnel) this.tunnel.destroy();
    else this.downstream.destroy();
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
    const session = new TcpSession(ctx.registry.allocateId(), name, socket);
    const started = performance.now();
    ctx.registry.add(session);
    ctx.metrics.connectionsTotal.labels(name).inc();
    ctx.metrics.connectionsActive.labels(name).inc();
    const cluster = ctx.clusters.get(config.cluster!);
    const endpoint = cluster?.pick();
    const upstreamAddr = endpoint?.address.text;
    let finished = false;
    const done = (error: ErrorCode | undefined, bytesIn: number, bytesOut: number): void => {
      if (finished) return;
      finished = true;
      ctx.metrics.connectionsActive.labels(name).dec();
      ctx.metrics.bytesIn.labels(name).inc(bytesIn);
      ctx.metrics.bytesOut.labels(name).inc(bytesOut);
      ctx.metrics.tcpSessions.labels(name, error ? 'error' : 'ok').inc();
      ctx.metrics.tcpDuration.labels(name).observe((performance.now() - started) / 1000);
      ctx.access.write({
        listener: name,
        kind: 'tcp',
        upstream: upstreamAddr,
        duration_ms: Math.round((performance.now() - started) * 1000) / 1000,
        bytes_in: bytesIn,
        bytes_out: bytesOut,
        error,
        client: socket.remoteAddress,
      });
      ctx.registry.remove(session);
    };

    if (!cluster || !endpoint) {
      socket.destroy();
      done('MOSN_ERR_NO_HEALTHY_UPSTREAM', 0, 0);
      return;
    }
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
      done('MOSN_ERR_DOWNSTREAM_RESET', 0, 0);
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
      done(code, 0, 0);
    });
    upstream.once('connect', () => {
      clearTimeout(connectTimer);
      upstream.removeAllListeners('error');
      socket.removeListener('error', onEarlyClientError);
      if (socket.destroyed) {
        endpoint.active--;
        upstream.destroy();
        done('MOSN_ERR_DOWNSTREAM_RESET', 0, 0);
        return;
      }
      const tunnel = new Tunnel(socket, upstream, config.timeouts.idle, (r) => {
        endpoint.active--;
        done(r.error, r.bytesDownToUp, r.bytesUpToDown);
      });
      session.tunnel = tunnel;
      tunnel.start();
    });
  }
}
