// npm run soak -- [--rounds N] [--interval MS] [--workers N] [--json]
//
// Starts its own backends and mosn-ts, drives mixed load through alternating
// `mosnctl reload` and `mosnctl upgrade` rounds, and prints one JSON summary.
// Exits non-zero on any loss: a failed request, a refused or reset
// connection, a lost, duplicated or corrupted byte, a WebSocket message out
// of order. See docs/soak.md.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import WebSocket, { WebSocketServer } from 'ws';
import YAML from 'yaml';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Options {
  rounds: number;
  intervalMs: number;
  warmupMs: number;
  workers: number;
  json: boolean;
  /** Release directory for the upgrade rounds (default: the running one). */
  release: string | undefined;
  keepalive: number;
  posts: number;
  fresh: number;
  slow: number;
  streams: number;
  websockets: number;
  streamRate: number;
  /** Node binary to run mosn with. */
  node: string;
}

function parseOptions(argv: string[]): Options {
  const o: Options = {
    rounds: 20,
    intervalMs: 1000,
    warmupMs: 1500,
    workers: 2,
    json: false,
    release: undefined,
    keepalive: 6,
    posts: 3,
    fresh: 3,
    slow: 4,
    streams: 4,
    websockets: 4,
    streamRate: 2 * 1024 * 1024,
    node: process.execPath,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    switch (a) {
      case '--rounds': o.rounds = Number(next()); break;
      case '--interval': o.intervalMs = Number(next()); break;
      case '--warmup': o.warmupMs = Number(next()); break;
      case '--workers': o.workers = Number(next()); break;
      case '--release': o.release = path.resolve(next()); break;
      case '--stream-rate': o.streamRate = Number(next()); break;
      case '--node': o.node = path.resolve(next()); break;
      case '--json': o.json = true; break;
      default: throw new Error(`unknown option ${a}`);
    }
  }
  return o;
}

// ---- bookkeeping ---------------------------------------------------------

class Stats {
  requests: Record<string, number> = { keepalive_get: 0, keepalive_post: 0, new_connection: 0, slow_keepalive: 0 };
  errors: Record<string, number> = {};
  refused = 0;
  resets = 0;
  bytesLost = 0;
  bytesCorrupt = 0;
  streamBytes = 0;
  wsMessages = 0;
  slowReconnects = 0;
  steady: number[] = [];
  during: number[] = [];
  windows: [number, number][] = [];

  error(kind: string, err?: unknown): void {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    const key = code ? `${kind}:${code}` : kind;
    this.errors[key] = (this.errors[key] ?? 0) + 1;
    if (code === 'ECONNREFUSED') this.refused++;
    if (code === 'ECONNRESET' || code === 'EPIPE') this.resets++;
  }

  latency(start: number, ms: number): void {
    const inRound = this.windows.some(([a, b]) => start >= a && start <= b);
    (inRound ? this.during : this.steady).push(ms);
  }

  get errorCount(): number {
    return Object.values(this.errors).reduce((a, b) => a + b, 0);
  }
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! * 1000) / 1000;
}

// ---- backends ------------------------------------------------------------

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

async function startBackends(): Promise<{ http: number[]; tcp: number; close: () => void }> {
  const servers: net.Server[] = [];
  const httpPorts: number[] = [];
  for (let i = 0; i < 2; i++) {
    const s = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        res.setHeader('content-type', 'application/octet-stream');
        res.end(body.length > 0 ? body : `ok ${req.url}`);
      });
    });
    s.keepAliveTimeout = 60_000;
    const wss = new WebSocketServer({ server: s });
    wss.on('connection', (ws) => ws.on('message', (data, binary) => ws.send(data, { binary })));
    servers.push(s);
    httpPorts.push(await listen(s));
  }
  const sockets = new Set<net.Socket>();
  const tcp = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => undefined);
    s.pipe(s);
  });
  servers.push(tcp);
  const tcpPort = await listen(tcp);
  return {
    http: httpPorts,
    tcp: tcpPort,
    close: () => {
      for (const s of sockets) s.destroy();
      for (const s of servers) {
        (s as http.Server).closeAllConnections?.();
        s.close();
      }
    },
  };
}

// ---- load ----------------------------------------------------------------

function request(opts: http.RequestOptions, body?: Buffer): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(opts, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Load {
  stop(): void;
  done: Promise<void>;
}

function httpLoop(stats: Stats, port: number, kind: keyof Stats['requests']  , mode: 'get' | 'post' | 'fresh' | 'slow'): Load {
  let stopped = false;
  const agent = mode === 'fresh' ? undefined : new http.Agent({ keepAlive: true, maxSockets: 1 });
  let sockets = 0;
  if (agent) {
    const orig = agent.createConnection.bind(agent);
    agent.createConnection = ((...a: Parameters<typeof orig>) => {
      sockets++;
      return orig(...a);
    });
  }
  const done = (async () => {
    let n = 0;
    while (!stopped) {
      n++;
      const body = mode === 'post' ? Buffer.alloc(1024 + ((n * 7919) % 60000), n & 0xff) : undefined;
      const t0 = performance.now();
      try {
        const r = await request(
          {
            host: '127.0.0.1',
            port,
            path: `/${kind}/${n}`,
            method: body ? 'POST' : 'GET',
            agent: agent ?? false,
            headers: mode === 'fresh' ? { connection: 'close' } : {},
          },
          body,
        );
        stats.requests[kind] = (stats.requests[kind] ?? 0) + 1;
        stats.latency(t0, performance.now() - t0);
        if (r.status !== 200) stats.error(`${kind}:status_${r.status}`);
        else if (body ? !r.body.equals(body) : r.body.toString() !== `ok /${kind}/${n}`) stats.error(`${kind}:corrupt_body`);
      } catch (err) {
        stats.error(kind, err);
      }
      if (mode === 'slow') await sleep(250 + ((n * 131) % 650));
    }
    if (mode === 'slow') stats.slowReconnects += Math.max(0, sockets - 1);
    agent?.destroy();
  })();
  return { stop: () => (stopped = true), done };
}

/** Byte i of every stream: a pattern with a long period, so a lost, repeated or reordered chunk shows. */
function patternAt(i: number): number {
  return (i * 31 + Math.floor(i / 251) * 7) & 0xff;
}

function fillPattern(buf: Buffer, offset: number): void {
  for (let k = 0; k < buf.length; k++) buf[k] = patternAt(offset + k);
}

function tcpStream(stats: Stats, port: number, rate: number): Load {
  let stopped = false;
  let sent = 0;
  let received = 0;
  let corrupt = false;
  const sock = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  const done = new Promise<void>((resolve) => {
    sock.on('data', (chunk: Buffer) => {
      if (!corrupt) {
        for (let k = 0; k < chunk.length; k++) {
          if (chunk[k] !== patternAt(received + k)) {
            corrupt = true;
            stats.bytesCorrupt += chunk.length - k;
            stats.error('tcp_stream:corrupt');
            break;
          }
        }
      }
      received += chunk.length;
    });
    sock.on('error', (err) => stats.error('tcp_stream', err));
    sock.on('close', () => {
      stats.streamBytes += received;
      if (received < sent) {
        stats.bytesLost += sent - received;
        stats.error('tcp_stream:bytes_lost');
      } else if (received > sent) stats.error('tcp_stream:bytes_extra');
      resolve();
    });
  });
  sock.on('connect', () => {
    const chunkSize = 16 * 1024;
    const tick = 20;
    const perTick = Math.max(chunkSize, Math.floor((rate * tick) / 1000));
    const pump = (): void => {
      if (stopped) {
        sock.end();
        return;
      }
      let budget = perTick;
      while (budget > 0) {
        const b = Buffer.allocUnsafe(chunkSize);
        fillPattern(b, sent);
        sent += b.length;
        budget -= b.length;
        if (!sock.write(b)) {
          sock.once('drain', () => setTimeout(pump, tick));
          return;
        }
      }
      setTimeout(pump, tick);
    };
    pump();
  });
  return { stop: () => (stopped = true), done };
}

function wsClient(stats: Stats, port: number): Load {
  let stopped = false;
  let sent = 0;
  let expected = 0;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`);
  let timer: NodeJS.Timeout | undefined;
  const done = new Promise<void>((resolve) => {
    ws.on('message', (data) => {
      const seq = Number(Buffer.isBuffer(data) ? data.toString() : NaN);
      if (seq !== expected) stats.error('websocket:out_of_order');
      expected = seq + 1;
      stats.wsMessages++;
      if (stopped && expected === sent) ws.close(1000);
    });
    ws.on('error', (err) => stats.error('websocket', err));
    ws.on('close', (code) => {
      if (timer) clearInterval(timer);
      if (code !== 1000) stats.error(`websocket:close_${code}`);
      if (expected !== sent) stats.error('websocket:messages_lost');
      resolve();
    });
  });
  ws.on('open', () => {
    timer = setInterval(() => {
      if (stopped) return;
      ws.send(String(sent++));
    }, 20);
  });
  return {
    stop: () => {
      stopped = true;
      if (timer) clearInterval(timer);
      if (expected === sent && ws.readyState === WebSocket.OPEN) ws.close(1000);
    },
    done,
  };
}

// ---- mosn ----------------------------------------------------------------

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const be = await startBackends();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mosn-soak-'));
  const sock = path.join(dir, 'mosn.sock');
  const config = {
    workers: o.workers,
    control_socket: sock,
    admin: { address: '127.0.0.1:0' },
    upgrade: { ready_timeout: '10s', drain_timeout: '10s' },
    log: { level: 'warn', access_log: 'off' },
    listeners: [
      {
        name: 'web',
        address: '127.0.0.1:0',
        virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }],
      },
      { name: 'stream', address: '127.0.0.1:0', protocol: 'tcp', cluster: 'echo' },
    ],
    clusters: [
      { name: 'app', endpoints: be.http.map((p) => `127.0.0.1:${p}`) },
      { name: 'echo', endpoints: [`127.0.0.1:${be.tcp}`] },
    ],
  };
  const cfgFile = path.join(dir, 'mosn.yaml');
  fs.writeFileSync(cfgFile, YAML.stringify(config));
  // mosn runs as in production: no loader hooks inherited from this runner.
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  const mosn = execa(o.node, [path.join(ROOT, 'dist/cli/mosn.js'), 'start', '-c', cfgFile], { reject: false, stdio: ['ignore', 'pipe', 'pipe'], env, extendEnv: false });
  let mosnOut = '';
  mosn.stdout?.on('data', (c: Buffer) => (mosnOut += c.toString()));
  mosn.stderr?.on('data', (c: Buffer) => (mosnOut += c.toString()));
  const ctl = async (...args: string[]): Promise<{ code: number; out: unknown; err: string }> => {
    const r = await execa(process.execPath, [path.join(ROOT, 'dist/cli/mosnctl.js'), '--socket', sock, ...args, '--json'], { reject: false, env, extendEnv: false });
    let out: unknown;
    try {
      out = JSON.parse(String(r.stdout));
    } catch {
      out = r.stdout;
    }
    return { code: r.exitCode ?? -1, out, err: String(r.stderr) };
  };
  let status: { phase?: string; listeners?: { name: string; port: number }[]; admin?: { port: number } } = {};
  const deadline = Date.now() + 20_000;
  while (status.phase !== 'running') {
    if (Date.now() > deadline || mosn.exitCode !== null) throw new Error(`mosn did not start:\n${mosnOut}`);
    await sleep(100);
    const r = await ctl('status');
    if (r.code === 0) status = r.out as typeof status;
  }
  const port = (name: string): number => status.listeners!.find((l) => l.name === name)!.port;
  const web = port('web');
  const stream = port('stream');

  const stats = new Stats();
  const loads: Load[] = [];
  for (let i = 0; i < o.keepalive; i++) loads.push(httpLoop(stats, web, 'keepalive_get', 'get'));
  for (let i = 0; i < o.posts; i++) loads.push(httpLoop(stats, web, 'keepalive_post', 'post'));
  for (let i = 0; i < o.fresh; i++) loads.push(httpLoop(stats, web, 'new_connection', 'fresh'));
  for (let i = 0; i < o.slow; i++) loads.push(httpLoop(stats, web, 'slow_keepalive', 'slow'));
  for (let i = 0; i < o.streams; i++) loads.push(tcpStream(stats, stream, o.streamRate));
  for (let i = 0; i < o.websockets; i++) loads.push(wsClient(stats, web));

  await sleep(o.warmupMs);
  const rounds: Record<string, unknown>[] = [];
  let roundFailures = 0;
  for (let r = 1; r <= o.rounds; r++) {
    const kind = r % 2 === 1 ? 'reload' : 'upgrade';
    const start = performance.now();
    const window: [number, number] = [start, Infinity];
    stats.windows.push(window);
    const res = await ctl(kind, ...(kind === 'upgrade' && o.release ? [o.release] : []));
    const end = performance.now();
    window[1] = end;
    const out = res.out as { generation?: number; migrated?: number; remaining?: number; duration_ms?: number; old_generation_exited?: boolean };
    if (res.code !== 0) roundFailures++;
    rounds.push({
      round: r,
      kind,
      ok: res.code === 0,
      wall_ms: Math.round(end - start),
      duration_ms: out.duration_ms,
      generation: out.generation,
      migrated: out.migrated,
      remaining: out.remaining,
      old_generation_exited: out.old_generation_exited,
      ...(res.code === 0 ? {} : { error: res.err.trim() }),
    });
    if (!o.json) process.stderr.write(`round ${r} ${kind}: ${res.code === 0 ? `ok in ${out.duration_ms} ms, migrated ${out.migrated}` : res.err.trim()}\n`);
    await sleep(o.intervalMs);
  }
  for (const l of loads) l.stop();
  const settled = await Promise.race([Promise.all(loads.map((l) => l.done)).then(() => true), sleep(20_000).then(() => false)]);
  if (!settled) stats.error('load:did_not_finish');

  // Connection outcomes from the proxy's own counters.
  const metricsText = await new Promise<string>((resolve) => {
    http
      .get({ host: '127.0.0.1', port: status.admin!.port, path: '/metrics' }, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve(b));
      })
      .on('error', () => resolve(''));
  });
  const sum = (name: string, label?: string): Record<string, number> | number => {
    const out: Record<string, number> = {};
    let total = 0;
    for (const line of metricsText.split('\n')) {
      if (!line.startsWith(name)) continue;
      const m = /^(\w+)(\{[^}]*\})? ([\d.e+-]+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const v = Number(m[3]);
      total += v;
      if (label) {
        const lv = new RegExp(`${label}="([^"]*)"`).exec(m[2] ?? '')?.[1] ?? '';
        out[lv] = (out[lv] ?? 0) + v;
      }
    }
    return label ? out : total;
  };
  const summary = {
    rounds: o.rounds,
    workers: o.workers,
    node: String((await execa(o.node, ['--version'])).stdout).trim(),
    requests: stats.requests,
    requests_total: Object.values(stats.requests).reduce((a, b) => a + b, 0),
    websocket_messages: stats.wsMessages,
    stream_bytes: stats.streamBytes,
    errors: stats.errors,
    error_count: stats.errorCount,
    refused: stats.refused,
    resets: stats.resets,
    bytes_lost: stats.bytesLost,
    bytes_corrupt: stats.bytesCorrupt,
    round_failures: roundFailures,
    slow_client_reconnects: stats.slowReconnects,
    connections: {
      migrated: sum('mosn_connections_migrated_total', 'kind'),
      drained: sum('mosn_connections_drained_total', 'kind'),
      force_closed: sum('mosn_connections_force_closed_total', 'kind'),
    },
    round_durations_ms: rounds.map((r) => r['duration_ms']),
    latency_ms: {
      steady: { n: stats.steady.length, p50: pct(stats.steady, 50), p99: pct(stats.steady, 99) },
      during_rounds: { n: stats.during.length, p50: pct(stats.during, 50), p99: pct(stats.during, 99) },
    },
    details: rounds,
  };
  await ctl('stop');
  const stopTimer = setTimeout(() => mosn.kill('SIGKILL'), 15_000);
  await mosn;
  clearTimeout(stopTimer);
  be.close();
  fs.rmSync(dir, { recursive: true, force: true });
  const ok = stats.errorCount === 0 && roundFailures === 0 && stats.bytesLost === 0 && stats.bytesCorrupt === 0 && stats.refused === 0 && stats.resets === 0;
  process.stdout.write(JSON.stringify({ ok, ...summary }, null, o.json ? 0 : 2) + '\n');
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`soak: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(2);
  },
);
