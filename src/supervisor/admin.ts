// The admin HTTP endpoint (loopback by default): /metrics /ready /live
// /config_dump /status.
import http from 'node:http';
import type net from 'node:net';
import type { HostPort } from '../config/types.js';
import type { Logger } from '../common/log.js';

export interface AdminHandlers {
  metrics(): Promise<{ contentType: string; body: string }>;
  ready(): boolean;
  configDump(): unknown;
  status(): Promise<unknown>;
}

/** `handle`: an already listening socket (taken over from a predecessor) instead of binding `addr`. */
export function startAdmin(addr: HostPort, h: AdminHandlers, log: Logger, handle?: unknown): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const url = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown): void => {
      const text = JSON.stringify(body, null, 2) + '\n';
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    };
    const text = (status: number, body: string): void => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return text(405, 'method not allowed\n');
    switch (url) {
      case '/metrics':
        h.metrics().then(
          (m) => {
            res.writeHead(200, { 'content-type': m.contentType, 'content-length': Buffer.byteLength(m.body) });
            res.end(m.body);
          },
          (err: unknown) => {
            log.error({ err }, 'metrics aggregation failed');
            text(500, 'metrics aggregation failed\n');
          },
        );
        return;
      case '/ready':
        return h.ready() ? text(200, 'ready\n') : text(503, 'not ready\n');
      case '/live':
        return text(200, 'live\n');
      case '/config_dump':
        return json(200, h.configDump());
      case '/status':
        h.status().then(
          (s) => json(200, s),
          (err: unknown) => json(500, { error: String(err) }),
        );
        return;
      default:
        return text(404, 'not found: try /metrics /ready /live /config_dump /status\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const onListening = (): void => {
      server.removeListener('error', reject);
      resolve(server);
    };
    if (handle) server.listen(handle as net.Server, onListening);
    else server.listen(addr.port, addr.host, onListening);
  });
}
