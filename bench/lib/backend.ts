// The one backend every target of bench:compare proxies to (and that the
// "direct" target hits without a proxy, as the ceiling). Run as a child
// process: node --import tsx bench/lib/backend.ts [--procs N]
//
// A cluster primary with N worker processes (default: one per CPU) sharing
// two ports, so the backend is not the bottleneck on one core:
//   HTTP  GET  /       a small response ("hello, world\n")
//         GET  /64k    65,536 bytes
//         GET  /chunked the small response without a length (chunked framing)
//         POST /upload reads the whole body (any size), answers its length
//   TCP   first byte 'U': a sink; counts the bytes until the client's FIN,
//                         then answers "<count>\n" and closes
//         first byte 'D': a source; writes as fast as the reader takes
// The primary sends { type: 'ready', http, tcp, pids } over IPC when every
// worker listens, answers { type: 'stats', id } with the connections accepted
// so far ({ type: 'stats', id, http, tcp }), and exits when its parent
// disconnects.
import cluster from 'node:cluster';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';

const SMALL = Buffer.from('hello, world\n');
const LARGE = Buffer.alloc(64 * 1024, 'x');
const CHUNK = Buffer.alloc(256 * 1024, 'y');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function httpServer(): http.Server {
  const s = http.createServer({ requestTimeout: 0, keepAliveTimeout: 300_000 }, (req, res) => {
    if (req.method === 'POST') {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => {
        const body = `${n}\n`;
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    if (req.url === '/chunked') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(SMALL);
      return;
    }
    const body = req.url === '/64k' ? LARGE : req.url === '/' || req.url === '/small' ? SMALL : undefined;
    if (!body) {
      res.writeHead(404, { 'content-length': 0 });
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
    res.end(body);
  });
  s.headersTimeout = 310_000;
  return s;
}

function tcpServer(): net.Server {
  return net.createServer({ allowHalfOpen: true, noDelay: true }, (sock) => {
    sock.on('error', () => undefined);
    let mode: 'U' | 'D' | undefined;
    let count = 0;
    const source = (): void => {
      while (!sock.destroyed && sock.writable) {
        if (!sock.write(CHUNK)) {
          sock.once('drain', source);
          return;
        }
      }
    };
    sock.on('data', (d: Buffer) => {
      if (mode === undefined) {
        mode = d[0] === 0x44 /* D */ ? 'D' : 'U';
        if (mode === 'D') {
          source();
          return;
        }
        count += d.length - 1;
        return;
      }
      if (mode === 'U') count += d.length;
    });
    sock.on('end', () => {
      if (mode === 'U') sock.end(`${count}\n`);
      else sock.end();
    });
  });
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

if (cluster.isPrimary) {
  const procs = Number(arg('--procs') ?? os.availableParallelism());
  // Every worker listens on the same two ports (the cluster primary holds
  // one socket per address:port and hands connections out round-robin).
  const ports = { http: await freePort(), tcp: await freePort() };
  const pids: number[] = [];
  let listening = 0;
  let stopping = false;
  for (let i = 0; i < procs; i++) {
    const w = cluster.fork({ BENCH_BACKEND_PORTS: `${ports.http},${ports.tcp}` });
    w.on('message', (m: { type: string }) => {
      if (m.type !== 'listening') return;
      if (++listening === procs * 2) {
        for (const x of Object.values(cluster.workers ?? {})) if (x?.process.pid !== undefined) pids.push(x.process.pid);
        process.send?.({ type: 'ready', http: ports.http, tcp: ports.tcp, pids, primary: process.pid });
      }
    });
    w.on('exit', (code, signal) => {
      if (stopping) return;
      process.stderr.write(`backend worker ${w.process.pid} exited (${code ?? signal})\n`);
      process.exit(1);
    });
  }
  const stop = (): void => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 200).unref();
  };
  process.on('disconnect', stop);
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // { type: 'stats', id }: connections accepted so far, summed over the workers.
  process.on('message', (m: { type: string; id: number }) => {
    if (m.type !== 'stats') return;
    const ws = Object.values(cluster.workers ?? {}).filter((w) => w !== undefined);
    let pending = ws.length;
    const sum = { http: 0, tcp: 0 };
    for (const w of ws) {
      const onMsg = (r: { type: string; http: number; tcp: number }): void => {
        if (r.type !== 'stats') return;
        w.off('message', onMsg);
        sum.http += r.http;
        sum.tcp += r.tcp;
        if (--pending === 0) process.send?.({ type: 'stats', id: m.id, ...sum });
      };
      w.on('message', onMsg);
      w.send({ type: 'stats' });
    }
  });
} else {
  const [hp, tp] = (process.env['BENCH_BACKEND_PORTS'] ?? '0,0').split(',').map(Number) as [number, number];
  const h = httpServer();
  const t = tcpServer();
  const conns = { http: 0, tcp: 0 };
  h.on('connection', () => conns.http++);
  t.on('connection', () => conns.tcp++);
  process.on('message', (m: { type: string }) => {
    if (m.type === 'stats') process.send?.({ type: 'stats', ...conns });
  });
  h.listen({ host: '127.0.0.1', port: hp, backlog: 4096 }, () => {
    process.send?.({ type: 'listening', which: 'http', port: (h.address() as net.AddressInfo).port });
    t.listen({ host: '127.0.0.1', port: tp, backlog: 4096 }, () => {
      process.send?.({ type: 'listening', which: 'tcp', port: (t.address() as net.AddressInfo).port });
    });
  });
  process.on('SIGTERM', () => process.exit(0));
  process.on('disconnect', () => process.exit(0));
}
