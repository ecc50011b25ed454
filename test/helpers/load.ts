// A small, steady load against a proxied HTTP listener, for asserting that
// reloads and upgrades lose nothing: N keep-alive GET loops (one connection
// each, re-opened only when the server says `Connection: close`) plus N
// loops that open a new connection per request. Every failure is recorded:
// errors by code, refused connections, resets, bad statuses or bodies.
import http from 'node:http';
import type net from 'node:net';

export interface LoadOptions {
  readonly port: number;
  readonly host?: string;
  /** Request path (default "/"). */
  readonly path?: string;
  /** Keep-alive loops (default 2). */
  readonly keepAlive?: number;
  /** New-connection-per-request loops (default 2). */
  readonly fresh?: number;
  /** Pause between two requests of one loop (default 2 ms), to keep the load light on a shared box. */
  readonly pauseMs?: number;
  /** Per-request deadline (default 10 s); a request that takes longer counts as an error. */
  readonly timeoutMs?: number;
  /** Extra check of a response; return a string to count it as bad. */
  readonly check?: (status: number, body: string, headers: http.IncomingHttpHeaders) => string | undefined;
}

export interface LoadCounts {
  /** Requests answered 200 (and passing `check`). */
  ok: number;
  /** Every failure, by code: ECONNREFUSED, ECONNRESET, EPIPE, TIMEOUT, HTTP_503, BAD_BODY, ... */
  errors: Record<string, number>;
  /** Connections refused (ECONNREFUSED). */
  refused: number;
  /** Connections reset or hung up (ECONNRESET, EPIPE, "socket hang up"). */
  resets: number;
  /** Responses with a status other than 200, or failing `check`. */
  badStatus: number;
  /** TCP connections the clients opened. */
  connections: number;
  /** Keep-alive responses that said `Connection: close`. */
  closeHeaders: number;
  /** A few examples of what went wrong, for the failure message. */
  samples: string[];
}

export interface Load {
  /** Live counts (a copy). */
  snapshot(): LoadCounts;
  /** Total failures so far. */
  failures(): number;
  /** Resolves once `n` more requests have succeeded (or rejects after timeoutMs). */
  progress(n?: number, timeoutMs?: number): Promise<void>;
  /** Stops every loop, waits for in-flight requests, returns the final counts. */
  stop(): Promise<LoadCounts>;
}

export function totalFailures(c: LoadCounts): number {
  return Object.values(c.errors).reduce((a, b) => a + b, 0);
}

export function startLoad(o: LoadOptions): Load {
  const counts: LoadCounts = { ok: 0, errors: {}, refused: 0, resets: 0, badStatus: 0, connections: 0, closeHeaders: 0, samples: [] };
  let running = true;
  const host = o.host ?? '127.0.0.1';
  const path = o.path ?? '/';
  const pause = o.pauseMs ?? 2;
  const timeoutMs = o.timeoutMs ?? 10_000;
  const agents: http.Agent[] = [];
  const waiters: { target: number; resolve: () => void }[] = [];

  const fail = (code: string, detail: string): void => {
    counts.errors[code] = (counts.errors[code] ?? 0) + 1;
    if (code === 'ECONNREFUSED') counts.refused++;
    else if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'HANGUP') counts.resets++;
    else if (code.startsWith('HTTP_') || code === 'BAD_BODY') counts.badStatus++;
    if (counts.samples.length < 10) counts.samples.push(`${code}: ${detail}`);
  };
  const succeed = (): void => {
    counts.ok++;
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (counts.ok >= waiters[i]!.target) {
        waiters[i]!.resolve();
        waiters.splice(i, 1);
      }
    }
  };

  const counting = (agent: http.Agent): http.Agent => {
    const create = agent.createConnection.bind(agent) as (...a: unknown[]) => net.Socket;
    (agent as unknown as { createConnection: (...a: unknown[]) => net.Socket }).createConnection = (...args: unknown[]) => {
      counts.connections++;
      return create(...args);
    };
    return agent;
  };

  const one = (agent: http.Agent, keepAlive: boolean, tag: string): Promise<void> =>
    new Promise((resolve) => {
      let settled = false;
      const done = (): void => {
        if (settled) return;
        settled = true;
        resolve();
      };
      const req = http.get({ host, port: o.port, path: `${path}${path.includes('?') ? '&' : '?'}load=${tag}`, agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('error', (err: NodeJS.ErrnoException) => {
          fail(codeOf(err), `${tag} response: ${err.message}`);
          done();
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (keepAlive && res.headers.connection === 'close') counts.closeHeaders++;
          const bad = status !== 200 ? `HTTP_${status}` : o.check?.(status, body, res.headers) !== undefined ? 'BAD_BODY' : undefined;
          if (bad) fail(bad, `${tag}: ${status} ${o.check?.(status, body, res.headers) ?? ''} ${body.slice(0, 200)}`);
          else succeed();
          done();
        });
      });
      req.setTimeout(timeoutMs, () => {
        fail('TIMEOUT', `${tag}: no answer within ${timeoutMs} ms`);
        req.destroy();
        done();
      });
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (!settled) fail(codeOf(err), `${tag}: ${err.message}`);
        done();
      });
    });

  const loop = async (keepAlive: boolean, i: number): Promise<void> => {
    const agent = counting(new http.Agent({ keepAlive, maxSockets: 1 }));
    agents.push(agent);
    let n = 0;
    while (running) {
      await one(agent, keepAlive, `${keepAlive ? 'ka' : 'new'}${i}-${n++}`);
      if (pause > 0 && running) await new Promise((r) => setTimeout(r, pause));
    }
  };

  const loops: Promise<void>[] = [];
  for (let i = 0; i < (o.keepAlive ?? 2); i++) loops.push(loop(true, i));
  for (let i = 0; i < (o.fresh ?? 2); i++) loops.push(loop(false, i));

  const copy = (): LoadCounts => ({ ...counts, errors: { ...counts.errors }, samples: [...counts.samples] });
  return {
    snapshot: copy,
    failures: () => totalFailures(counts),
    progress: (n = 20, ms = 10_000) =>
      new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`load made no progress: ${n} requests not done within ${ms} ms (${JSON.stringify(copy())})`)), ms);
        waiters.push({
          target: counts.ok + n,
          resolve: () => {
            clearTimeout(t);
            resolve();
          },
        });
      }),
    stop: async () => {
      running = false;
      await Promise.all(loops);
      for (const a of agents) a.destroy();
      return copy();
    },
  };
}

function codeOf(err: NodeJS.ErrnoException): string {
  if (err.code === 'ECONNRESET' && /socket hang up/i.test(err.message)) return 'HANGUP';
  return err.code ?? (/socket hang up/i.test(err.message) ? 'HANGUP' : err.name || 'ERROR');
}
