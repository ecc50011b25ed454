// Small HTTP client helpers for tests: a keep-alive client that counts the
// TCP connections it opens, and /metrics parsing.
import http from 'node:http';
import type net from 'node:net';

export interface Reply {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
  /** Client-side port of the TCP connection that carried the exchange. */
  localPort: number;
}

export function request(opts: http.RequestOptions & { body?: string; timeoutMs?: number }): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', method: 'GET', ...opts }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers, localPort: req.socket?.localPort ?? -1 }));
    });
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error(`no answer to ${opts.path ?? '/'} within ${opts.timeoutMs ?? 10_000} ms`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** One keep-alive connection at a time; counts the connections it had to open. */
export class KeepAliveClient {
  readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  sockets = 0;
  readonly localPorts: number[] = [];

  constructor(readonly port: number) {
    const create = this.agent.createConnection.bind(this.agent) as (...a: unknown[]) => net.Socket;
    (this.agent as unknown as { createConnection: (...a: unknown[]) => net.Socket }).createConnection = (...args: unknown[]) => {
      this.sockets++;
      const s = create(...args);
      s.once('connect', () => this.localPorts.push(s.localPort ?? -1));
      return s;
    };
  }

  get(path: string, timeoutMs?: number): Promise<Reply> {
    return request({ port: this.port, path, agent: this.agent, timeoutMs });
  }

  close(): void {
    this.agent.destroy();
  }
}

export async function fetchMetrics(adminPort: number): Promise<string> {
  const r = await request({ port: adminPort, path: '/metrics', agent: false });
  if (r.status !== 200) throw new Error(`/metrics answered ${r.status}: ${r.body}`);
  return r.body;
}

/**
 * Sum of every sample of `name` whose labels include `labels` (all of them).
 * Returns undefined when no sample matches.
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  let sum: number | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const kv of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) have[kv[1]!] = kv[2]!;
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum = (sum ?? 0) + Number(m[3]);
  }
  return sum;
}
