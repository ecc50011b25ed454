// Raw HTTP clients for process-level tests: every request reports the local
// port of the connection it used, so a failure can be traced to the server
// process that held that connection (see sockets.ts / acceptedPorts).
import fs from 'node:fs';
import http from 'node:http';

export interface Outcome {
  readonly ok: boolean;
  readonly status?: number;
  readonly body?: string;
  /** Error code (ECONNREFUSED, ECONNRESET, ...) or message when it failed. */
  readonly error?: string;
  /** Local (client-side) port of the connection, when it connected. */
  readonly localPort?: number;
  readonly headers?: http.IncomingHttpHeaders;
}

export interface RequestOptions {
  readonly port: number;
  readonly path?: string;
  readonly method?: string;
  /** A keep-alive agent, or a new connection with `Connection: close` when absent. */
  readonly agent?: http.Agent;
  readonly headers?: Record<string, string>;
  readonly timeoutMs?: number;
}

/** One request, never retried; resolves (never rejects) with what happened. */
export function request(o: RequestOptions): Promise<Outcome> {
  return new Promise((resolve) => {
    let localPort: number | undefined;
    let settled = false;
    const done = (r: Outcome): void => {
      if (settled) return;
      settled = true;
      resolve(r);
    };
    const req = http.request({
      host: '127.0.0.1',
      port: o.port,
      path: o.path ?? '/',
      method: o.method ?? 'GET',
      agent: o.agent ?? false,
      headers: { ...(o.agent ? {} : { connection: 'close' }), ...o.headers },
    });
    req.on('socket', (s) => {
      if (s.localPort !== undefined) localPort = s.localPort;
      else s.once('connect', () => (localPort = s.localPort));
    });
    if (o.timeoutMs) req.setTimeout(o.timeoutMs, () => req.destroy(Object.assign(new Error('client timeout'), { code: 'CLIENT_TIMEOUT' })));
    req.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, error: err.code ?? err.message, localPort }));
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (err: NodeJS.ErrnoException) => done({ ok: false, status: res.statusCode, error: err.code ?? err.message, localPort }));
      res.on('aborted', () => done({ ok: false, status: res.statusCode, error: 'ABORTED', localPort }));
      res.on('end', () => {
        if (!res.complete) done({ ok: false, status: res.statusCode, error: 'INCOMPLETE', localPort });
        else done({ ok: true, status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), localPort, headers: res.headers });
      });
    });
    req.end();
  });
}

/** Gets a URL and returns status and body (a convenience for admin reads). */
export async function get(port: number, path: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  const r = await request({ port, path, timeoutMs: 10_000 });
  if (!r.ok) throw new Error(`GET ${path} on port ${port} failed: ${r.error}`);
  return { status: r.status!, body: r.body!, headers: r.headers! };
}

/**
 * The client ports of the TCP connections `pid` holds that were accepted on
 * `listenPort` (from /proc/PID/fd socket inodes and /proc/net/tcp{,6}).
 * Read it while the process is stopped (SIGSTOP) to get an exact set.
 */
export function acceptedPorts(pid: number, listenPort: number): Set<number> {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]!);
    } catch {
      // fd closed meanwhile
    }
  }
  const ports = new Set<number>();
  for (const table of [`/proc/${pid}/net/tcp`, `/proc/${pid}/net/tcp6`]) {
    let text: string;
    try {
      text = fs.readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const local = f[1]!;
      const remote = f[2]!;
      const inode = f[9]!;
      if (!inodes.has(inode)) continue;
      const lport = parseInt(local.slice(local.lastIndexOf(':') + 1), 16);
      const rport = parseInt(remote.slice(remote.lastIndexOf(':') + 1), 16);
      if (lport === listenPort && rport !== 0) ports.add(rport);
    }
  }
  return ports;
}

/** The state letter of a process (R, S, T for stopped, Z, ...) from /proc. */
export function procState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}
