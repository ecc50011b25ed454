// The Node client of bench:compare, run as its own process (so it never
// shares an event loop with the harness or a target):
//   node --import tsx bench/lib/agent.ts
// It takes one command at a time over IPC and answers { id, result } or
// { id, error }:
//   http  a keep-alive (or connection-per-request) HTTP/1.1 load generator,
//         the fallback when wrk is not installed
//   tcp   bulk TCP throughput through the backend's sink ('U') or source ('D')
//   hold  opens N keep-alive connections, one request each, and keeps them
//   release  closes the held connections
import net from 'node:net';
import { percentile } from './stats.js';

export interface HttpJob {
  kind: 'http';
  port: number;
  path: string;
  method: 'GET' | 'POST';
  bodyBytes: number;
  /** A new connection per request (`Connection: close`). */
  close: boolean;
  connections: number;
  durationMs: number;
}

export interface HttpResult {
  requests: number;
  errors: number;
  non2xx: number;
  seconds: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
}

export interface TcpJob {
  kind: 'tcp';
  port: number;
  direction: 'up' | 'down';
  streams: number;
  durationMs: number;
}

export interface TcpResult {
  bytes: number;
  seconds: number;
  mb_per_s: number;
  errors: number;
}

export interface HoldJob {
  kind: 'hold';
  port: number;
  count: number;
  /** Connects in flight at once. */
  batch: number;
}

export interface HoldResult {
  held: number;
  failed: number;
  seconds: number;
}

export type Job = HttpJob | TcpJob | HoldJob | { kind: 'release' };

// ---- a minimal HTTP/1.1 response reader ------------------------------------

const CRLFCRLF = Buffer.from('\r\n\r\n');

/** Reads back-to-back responses from a byte stream; calls done() after each. */
class ResponseReader {
  #head: Buffer | undefined;
  #remaining = 0;
  #mode: 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailer' = 'head';
  #line = '';
  status = 0;
  keepAlive = true;

  constructor(private readonly done: (status: number, keepAlive: boolean) => void) {}

  feed(d: Buffer): void {
    let i = 0;
    while (i < d.length) {
      switch (this.#mode) {
        case 'head': {
          const buf = this.#head ? Buffer.concat([this.#head, d.subarray(i)]) : d.subarray(i);
          const end = buf.indexOf(CRLFCRLF);
          if (end < 0) {
            this.#head = Buffer.from(buf);
            return;
          }
          const consumedOfD = end + 4 - (this.#head?.length ?? 0);
          const head = buf.toString('latin1', 0, end);
          this.#head = undefined;
          i += consumedOfD;
          this.#startBody(head);
          break;
        }
        case 'length': {
          const n = Math.min(this.#remaining, d.length - i);
          this.#remaining -= n;
          i += n;
          if (this.#remaining === 0) this.#finish();
          break;
        }
        case 'chunk-size':
        case 'chunk-crlf':
        case 'trailer': {
          const nl = d.indexOf(0x0a, i);
          if (nl < 0) {
            this.#line += d.toString('latin1', i);
            return;
          }
          const line = (this.#line + d.toString('latin1', i, nl)).replace(/\r$/, '');
          this.#line = '';
          i = nl + 1;
          if (this.#mode === 'chunk-crlf') this.#mode = 'chunk-size';
          else if (this.#mode === 'trailer') {
            if (line === '') this.#finish();
          } else {
            const size = parseInt(line, 16);
            if (size === 0) this.#mode = 'trailer';
            else {
              this.#remaining = size;
              this.#mode = 'chunk-data';
            }
          }
          break;
        }
        case 'chunk-data': {
          const n = Math.min(this.#remaining, d.length - i);
          this.#remaining -= n;
          i += n;
          if (this.#remaining === 0) this.#mode = 'chunk-crlf';
          break;
        }
      }
    }
  }

  #startBody(head: string): void {
    this.status = Number(head.slice(9, 12));
    const lower = head.toLowerCase();
    this.keepAlive = !/\r\nconnection:[ \t]*close/.test(lower);
    if (/\r\ntransfer-encoding:[^\r]*chunked/.test(lower)) {
      this.#mode = 'chunk-size';
      return;
    }
    const m = /\r\ncontent-length:[ \t]*(\d+)/.exec(lower);
    this.#remaining = m ? Number(m[1]) : 0;
    if (this.#remaining === 0) this.#finish();
    else this.#mode = 'length';
  }

  #finish(): void {
    this.#mode = 'head';
    this.done(this.status, this.keepAlive);
  }
}

// ---- http load ------------------------------------------------------------

async function runHttp(job: HttpJob): Promise<HttpResult> {
  const body = job.bodyBytes > 0 ? Buffer.alloc(job.bodyBytes, 'z') : undefined;
  const head = Buffer.from(
    `${job.method} ${job.path} HTTP/1.1\r\nHost: bench\r\n` +
      (body ? `Content-Type: application/octet-stream\r\nContent-Length: ${body.length}\r\n` : '') +
      (job.close ? 'Connection: close\r\n' : '') +
      '\r\n',
    'latin1',
  );
  const latencies: number[] = [];
  let requests = 0;
  let errors = 0;
  let non2xx = 0;
  const start = performance.now();
  const deadline = start + job.durationMs;
  let end = deadline;

  const loop = (): Promise<void> =>
    new Promise((resolveLoop) => {
      let sock: net.Socket | undefined;
      let t0 = 0;
      let reader: ResponseReader;
      let stopped = false;
      // A response that never comes must not hang the run: give up 5 s after the deadline.
      const hardStop = setTimeout(() => {
        stopped = true;
        if (sock && !sock.destroyed) {
          errors++;
          sock.destroy();
        }
        resolveLoop();
      }, job.durationMs + 5000);
      const finishLoop = (): void => {
        stopped = true;
        clearTimeout(hardStop);
        resolveLoop();
      };
      const send = (): void => {
        t0 = performance.now();
        if (body) {
          sock!.cork();
          sock!.write(head);
          sock!.write(body);
          sock!.uncork();
        } else sock!.write(head);
      };
      const open = (): void => {
        if (stopped) return;
        if (performance.now() >= deadline) return finishLoop();
        const connectStart = performance.now();
        let finished = false;
        reader = new ResponseReader((status, keepAlive) => {
          requests++;
          latencies.push(performance.now() - (job.close ? connectStart : t0));
          if (status < 200 || status > 399) non2xx++;
          if (job.close || !keepAlive) {
            finished = true;
            sock!.destroy();
            open();
            return;
          }
          if (performance.now() >= deadline) {
            finished = true;
            sock!.destroy();
            finishLoop();
            return;
          }
          send();
        });
        const s = net.connect({ host: '127.0.0.1', port: job.port, noDelay: true });
        sock = s;
        s.on('connect', send);
        s.on('data', (d: Buffer) => reader.feed(d));
        s.on('error', () => undefined);
        s.on('close', () => {
          if (finished || stopped) return;
          finished = true;
          errors++;
          // Back off a little so a refusing target is not a busy loop.
          setTimeout(open, 10);
        });
      };
      open();
    });
  await Promise.all(Array.from({ length: job.connections }, loop));
  end = Math.max(performance.now(), end);
  const seconds = (end - start) / 1000;
  return {
    requests,
    errors,
    non2xx,
    seconds,
    rps: requests / seconds,
    p50_ms: percentile(latencies, 50),
    p99_ms: percentile(latencies, 99),
  };
}

// ---- tcp bulk -------------------------------------------------------------

const UP_CHUNK = Buffer.alloc(256 * 1024, 'u');

async function runTcp(job: TcpJob): Promise<TcpResult> {
  let errors = 0;
  const start = performance.now();
  const one = (): Promise<number> =>
    new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: job.port, allowHalfOpen: true });
      s.on('error', () => {
        errors++;
        resolve(0);
      });
      if (job.direction === 'down') {
        let bytes = 0;
        s.on('connect', () => s.write('D'));
        s.on('data', (d: Buffer) => (bytes += d.length));
        setTimeout(() => {
          s.destroy();
          resolve(bytes);
        }, job.durationMs);
        return;
      }
      let reply = '';
      let stopped = false;
      s.setEncoding('latin1');
      s.on('data', (d: string) => (reply += d));
      s.on('end', () => {
        s.destroy();
        const n = Number(reply.trim());
        // No count back: the proxy did not pass the half-close (or lost the session).
        if (!(n > 0)) errors++;
        resolve(n > 0 ? n : 0);
      });
      const pump = (): void => {
        while (!stopped) {
          if (!s.write(UP_CHUNK)) {
            s.once('drain', pump);
            return;
          }
        }
      };
      s.on('connect', () => {
        s.write('U');
        pump();
      });
      setTimeout(() => {
        stopped = true;
        s.end();
      }, job.durationMs);
    });
  const counts = await Promise.all(Array.from({ length: job.streams }, one));
  const seconds = (performance.now() - start) / 1000;
  const bytes = counts.reduce((a, b) => a + b, 0);
  return { bytes, seconds, mb_per_s: bytes / seconds / 1e6, errors };
}

// ---- idle connections -------------------------------------------------------

const held = new Set<net.Socket>();

async function hold(job: HoldJob): Promise<HoldResult> {
  const start = performance.now();
  let failed = 0;
  const req = Buffer.from('GET / HTTP/1.1\r\nHost: bench\r\n\r\n', 'latin1');
  const one = (): Promise<void> =>
    new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: job.port });
      let done = false;
      const finish = (ok: boolean): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (ok) held.add(s);
        else {
          failed++;
          s.destroy();
        }
        resolve();
      };
      const timer = setTimeout(() => finish(false), 30_000);
      const reader = new ResponseReader((status) => finish(status === 200));
      s.on('connect', () => s.write(req));
      s.on('data', (d: Buffer) => reader.feed(d));
      s.on('error', () => finish(false));
      s.on('close', () => {
        if (!done) finish(false);
        else held.delete(s);
      });
    });
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < job.count) {
      next++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(job.batch, job.count)) }, worker));
  // Still open after a moment (a target that closes idle connections at once
  // would otherwise look fine).
  await new Promise((r) => setTimeout(r, 200));
  return { held: [...held].filter((s) => !s.destroyed).length, failed, seconds: (performance.now() - start) / 1000 };
}

function release(): { released: number } {
  const n = held.size;
  const all = [...held];
  held.clear();
  for (const s of all) s.destroy();
  return { released: n };
}

// ---- IPC --------------------------------------------------------------------

async function run(job: Job): Promise<unknown> {
  switch (job.kind) {
    case 'http':
      return runHttp(job);
    case 'tcp':
      return runTcp(job);
    case 'hold':
      return hold(job);
    case 'release':
      return release();
  }
}

if (process.send) {
  process.on('message', (m: { id: number; job: Job }) => {
    run(m.job).then(
      (result) => process.send?.({ id: m.id, result }),
      (err: unknown) => process.send?.({ id: m.id, error: err instanceof Error ? err.message : String(err) }),
    );
  });
  process.on('disconnect', () => process.exit(0));
  process.send({ id: 0, result: 'ready' });
}
