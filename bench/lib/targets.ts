// The targets of bench:compare, each a plain process tree on loopback with
// its config in the run's temp dir: nginx, HAProxy, mosn-ts, and the backend
// itself ("direct", the ceiling). Never a system service.
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import YAML from 'yaml';
import { childPids, freePort, httpStatus, sleep, waitForPort } from './proc.js';

export type TargetName = 'nginx' | 'haproxy' | 'mosn' | 'direct';
export const ALL_TARGETS: TargetName[] = ['nginx', 'haproxy', 'mosn', 'direct'];

export interface Target {
  name: TargetName;
  /** HTTP port (proxying to the backend's HTTP port). */
  http: number;
  /** TCP port (proxying to the backend's TCP sink/source), if this target does TCP. */
  tcp?: number;
  /** How many workers the per-worker numbers divide by. */
  workers: number;
  /** What a "worker" is for this target, for the report. */
  workerNote: string;
  /** The processes that hold connections. */
  workerPids(): Promise<number[]>;
  /** Every process of the target (master/supervisor included). */
  allPids(): Promise<number[]>;
  alive(): boolean;
  /** The config file the target runs with (for the report), if any. */
  config?: string;
  stop(): Promise<void>;
  /** Synchronous last-resort kill (process exit). */
  kill(): void;
}

export interface Backend {
  http: number;
  tcp: number;
  pids: number[];
  primary: number;
  proc: ChildProcess;
  /** Connections the backend has accepted so far (all workers). */
  stats(): Promise<{ http: number; tcp: number }>;
}

/** Node flags that run a .ts file through tsx. */
export function tsxExecArgv(root: string): string[] {
  return ['--import', pathToFileURL(path.join(root, 'node_modules/tsx/dist/loader.mjs')).href];
}

/** The environment for child processes: no inherited NODE_OPTIONS (loader hooks of a test runner). */
export function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && k !== 'NODE_OPTIONS') env[k] = v;
  return { ...env, ...extra };
}

export async function startBackend(root: string, procs: number): Promise<Backend> {
  const proc = fork(path.join(root, 'bench/lib/backend.ts'), ['--procs', String(procs)], {
    execArgv: tsxExecArgv(root),
    env: cleanEnv(),
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ready = await new Promise<{ http: number; tcp: number; pids: number[]; primary: number }>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('the backend did not start within 30 s')), 30_000);
    proc.on('message', (m: { type: string; http: number; tcp: number; pids: number[]; primary: number }) => {
      if (m.type === 'ready') {
        clearTimeout(t);
        resolve(m);
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`the backend exited (${code}) during start`));
    });
  });
  let nextId = 1;
  const stats = (): Promise<{ http: number; tcp: number }> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const t = setTimeout(() => {
        proc.off('message', onMsg);
        reject(new Error('the backend did not answer a stats request'));
      }, 5000);
      const onMsg = (m: { type: string; id: number; http: number; tcp: number }): void => {
        if (m.type !== 'stats' || m.id !== id) return;
        clearTimeout(t);
        proc.off('message', onMsg);
        resolve({ http: m.http, tcp: m.tcp });
      };
      proc.on('message', onMsg);
      proc.send({ type: 'stats', id });
    });
  return { ...ready, proc, stats };
}

export function directTarget(be: Backend): Target {
  return {
    name: 'direct',
    http: be.http,
    tcp: be.tcp,
    workers: be.pids.length,
    workerNote: `${be.pids.length} Node backend processes (cluster)`,
    workerPids: async () => be.pids,
    allPids: async () => [be.primary, ...be.pids],
    alive: () => be.proc.exitCode === null && be.proc.signalCode === null,
    stop: async () => undefined, // the backend is stopped last, by the harness
    kill: () => undefined,
  };
}

/** A peer or mosn process: stdout ignored, stderr kept for error messages. */
function spawnProc(bin: string, args: string[], env: Record<string, string> = cleanEnv(), stdout?: string) {
  return execa(bin, args, { reject: false, env, extendEnv: false, stdin: 'ignore', stdout: stdout === undefined ? 'ignore' : { file: stdout }, stderr: 'pipe' });
}
type Proc = ReturnType<typeof spawnProc>;

function procAlive(p: Proc): boolean {
  return p.exitCode === null && p.signalCode === null;
}

async function stopProc(p: Proc, signal: NodeJS.Signals, graceMs = 5000): Promise<void> {
  if (!procAlive(p)) return;
  p.kill(signal);
  const done = await Promise.race([p.then(() => true), sleep(graceMs).then(() => false)]);
  if (!done) {
    p.kill('SIGKILL');
    await p;
  }
}

function captureStderr(p: Proc): () => string {
  let err = '';
  p.stderr?.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-4000)));
  return () => err;
}

async function waitHttpReady(port: number, p: Proc, stderr: () => string, what: string): Promise<void> {
  try {
    await waitForPort(port, 15_000, () => procAlive(p));
    const deadline = Date.now() + 10_000;
    let status = 0;
    while ((status = await httpStatus(port)) !== 200) {
      if (Date.now() > deadline) throw new Error(`GET / answered ${status}`);
      await sleep(100);
    }
  } catch (err) {
    throw new Error(`${what} did not start: ${(err as Error).message}\n${stderr()}`);
  }
}

export interface PeerOptions {
  dir: string;
  workers: number;
  backend: Backend;
  /** Connections each target must be able to hold (idle scenario). */
  maxConnections: number;
  /** The most concurrent HTTP requests a run makes (mosn-ts's upstream pool must not be the cap). */
  httpConnections: number;
  /** Extra environment for mosn-ts's supervisor (e.g. MOSN_WORKER_NODE_ARGS for profiling). */
  mosnEnv?: Record<string, string>;
  /** A file that gets mosn-ts's stdout, its workers' included (V8 traces); otherwise it is dropped. */
  mosnStdout?: string;
}

/** a >= b for dotted versions ("1.22.1" >= "1.21.4"). */
function versionAtLeast(a: string, b: string): boolean {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0);
  }
  return true;
}

export async function startNginx(bin: string, version: string, stream: string | undefined, o: PeerOptions): Promise<Target> {
  const dir = path.join(o.dir, 'nginx');
  fs.mkdirSync(dir, { recursive: true });
  const http = await freePort();
  const tcp = stream ? await freePort() : undefined;
  const conf = [
    '# bench:compare: nginx as an HTTP reverse proxy (upstream keep-alive) and a TCP (stream) proxy',
    ...(stream && stream !== 'static' ? [`load_module ${stream};`] : []),
    `worker_processes ${o.workers};`,
    `pid ${dir}/nginx.pid;`,
    `error_log ${dir}/error.log warn;`,
    // Each worker may hold every connection of the idle scenario (20000 is this machine's hard limit).
    'worker_rlimit_nofile 20000;',
    `events { worker_connections ${Math.min(19000, Math.max(4096, o.maxConnections + 2048))}; }`,
    'http {',
    '  access_log off;',
    `  client_body_temp_path ${dir}/client_body;`,
    `  proxy_temp_path ${dir}/proxy;`,
    '  keepalive_timeout 300s;',
    '  keepalive_requests 100000000;',
    '  client_max_body_size 16m;',
    '  upstream app {',
    `    server 127.0.0.1:${o.backend.http};`,
    '    keepalive 64;',
    '    keepalive_requests 100000000;',
    '    keepalive_timeout 60s;',
    '  }',
    '  server {',
    `    listen 127.0.0.1:${http};`,
    '    location / {',
    '      proxy_pass http://app;',
    '      proxy_http_version 1.1;',
    '      proxy_set_header Connection "";',
    // Stream request bodies to the upstream as mosn-ts and HAProxy do (nginx would spool 1 MiB uploads to disk).
    '      proxy_request_buffering off;',
    '    }',
    '  }',
    '}',
    ...(tcp
      ? [
          'stream {',
          `  upstream sink { server 127.0.0.1:${o.backend.tcp}; }`,
          '  server {',
          `    listen 127.0.0.1:${tcp};`,
          '    proxy_pass sink;',
          // Pass the client's FIN on and keep reading the answer (the upload sink replies after it), as mosn-ts and HAProxy do.
          ...(versionAtLeast(/[\d.]+/.exec(version)?.[0] ?? '0', '1.21.4') ? ['    proxy_half_close on;'] : []),
          '  }',
          '}',
        ]
      : []),
  ].join('\n');
  const file = path.join(dir, 'nginx.conf');
  fs.writeFileSync(file, conf + '\n');
  const p = spawnProc(bin, ['-p', dir, '-c', file, '-e', path.join(dir, 'error.log'), '-g', 'daemon off;']);
  const stderr = captureStderr(p);
  const errorLog = (): string => {
    try {
      return stderr() + fs.readFileSync(path.join(dir, 'error.log'), 'utf8').slice(-2000);
    } catch {
      return stderr();
    }
  };
  await waitHttpReady(http, p, errorLog, 'nginx');
  const master = p.pid!;
  return {
    name: 'nginx',
    http,
    ...(tcp ? { tcp } : {}),
    workers: o.workers,
    workerNote: `${o.workers} worker processes (worker_processes ${o.workers}), master not counted`,
    workerPids: async () => childPids(master),
    allPids: async () => [master, ...childPids(master)],
    alive: () => procAlive(p),
    config: conf,
    stop: () => stopProc(p, 'SIGQUIT'),
    kill: () => void p.kill('SIGTERM'),
  };
}

export async function startHaproxy(bin: string, o: PeerOptions): Promise<Target> {
  const dir = path.join(o.dir, 'haproxy');
  fs.mkdirSync(dir, { recursive: true });
  const http = await freePort();
  const tcp = await freePort();
  const conf = [
    '# bench:compare: HAProxy, mode http (server-side keep-alive) and mode tcp',
    'global',
    `  nbthread ${o.workers}`,
    `  maxconn ${Math.max(4096, o.maxConnections + 2048)}`,
    // HAProxy reserves 2 descriptors per connection and refuses to start when the hard limit
    // (20000 here) is below that; idle client connections take one each, so run with what there is.
    '  no strict-limits',
    'defaults',
    '  mode http',
    '  option http-keep-alive',
    '  timeout connect 5s',
    '  timeout client 300s',
    '  timeout server 300s',
    '  timeout http-keep-alive 300s',
    'frontend web',
    `  bind 127.0.0.1:${http}`,
    '  default_backend app',
    'backend app',
    // An idle pooled server connection may carry any client's request, the first one of a client
    // connection included, as nginx's upstream keepalive pool and mosn-ts's pool do ("safe", the
    // default, opens a server connection for the first request of every client connection).
    '  http-reuse always',
    `  server s1 127.0.0.1:${o.backend.http}`,
    'frontend l4',
    '  mode tcp',
    `  bind 127.0.0.1:${tcp}`,
    '  default_backend sink',
    'backend sink',
    '  mode tcp',
    `  server s1 127.0.0.1:${o.backend.tcp}`,
  ].join('\n');
  const file = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(file, conf + '\n');
  const p = spawnProc(bin, ['-db', '-f', file]);
  const stderr = captureStderr(p);
  await waitHttpReady(http, p, stderr, 'haproxy');
  const pid = p.pid!;
  return {
    name: 'haproxy',
    http,
    tcp,
    workers: o.workers,
    workerNote: `one process with ${o.workers} threads (nbthread ${o.workers}); per worker = its RSS / ${o.workers}`,
    workerPids: async () => [pid],
    allPids: async () => [pid],
    alive: () => procAlive(p),
    config: conf,
    stop: () => stopProc(p, 'SIGTERM'),
    kill: () => void p.kill('SIGTERM'),
  };
}

interface MosnStatus {
  phase?: string;
  listeners?: { name: string; port: number }[];
  generations?: { id: number; state: string; workers: { pid: number }[] }[];
}

export async function startMosn(root: string, o: PeerOptions): Promise<Target> {
  const dir = path.join(o.dir, 'mosn');
  fs.mkdirSync(dir, { recursive: true });
  const mosnJs = path.join(root, 'dist/cli/mosn.js');
  const mosnctlJs = path.join(root, 'dist/cli/mosnctl.js');
  if (!fs.existsSync(mosnJs)) throw new Error(`${mosnJs} is missing: run npm run build first`);
  const sock = path.join(dir, 'mosn.sock');
  const cfg = {
    workers: o.workers,
    control_socket: sock,
    admin: { address: '127.0.0.1:0' },
    log: { level: 'warn', access_log: 'off' },
    listeners: [
      { name: 'web', address: '127.0.0.1:0', timeouts: { idle: '300s' }, virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] },
      { name: 'l4', address: '127.0.0.1:0', protocol: 'tcp', cluster: 'sink' },
    ],
    clusters: [
      // nginx and HAProxy put no cap on upstream connections: neither does this (default 128).
      { name: 'app', endpoints: [`127.0.0.1:${o.backend.http}`], max_connections_per_endpoint: Math.max(128, o.httpConnections) },
      { name: 'sink', endpoints: [`127.0.0.1:${o.backend.tcp}`] },
    ],
  };
  const conf = YAML.stringify(cfg);
  const file = path.join(dir, 'mosn.yaml');
  fs.writeFileSync(file, conf);
  const env = cleanEnv(o.mosnEnv);
  const p = spawnProc(process.execPath, [mosnJs, 'start', '-c', file], env, o.mosnStdout);
  const stderr = captureStderr(p);
  const status = async (): Promise<MosnStatus> => {
    const r = await execa(process.execPath, [mosnctlJs, '--socket', sock, 'status', '--json'], { reject: false, env, extendEnv: false });
    if (r.exitCode !== 0) throw new Error(`mosnctl status: ${String(r.stderr).trim()}`);
    return JSON.parse(String(r.stdout)) as MosnStatus;
  };
  let s: MosnStatus = {};
  const deadline = Date.now() + 30_000;
  while (s.phase !== 'running') {
    if (!procAlive(p) || Date.now() > deadline) throw new Error(`mosn did not start:\n${stderr()}`);
    await sleep(100);
    s = await status().catch(() => ({}));
  }
  const port = (n: string): number => s.listeners!.find((l) => l.name === n)!.port;
  const http = port('web');
  const tcp = port('l4');
  await waitHttpReady(http, p, stderr, 'mosn');
  const workerPids = async (): Promise<number[]> => {
    const st = await status();
    const gens = st.generations ?? [];
    const current = gens.filter((g) => g.state === 'current');
    return (current.length > 0 ? current : gens).flatMap((g) => g.workers.map((w) => w.pid));
  };
  return {
    name: 'mosn',
    http,
    tcp,
    workers: o.workers,
    workerNote: `${o.workers} worker processes (workers: ${o.workers}), supervisor not counted`,
    workerPids,
    allPids: async () => [p.pid!, ...(await workerPids())],
    alive: () => procAlive(p),
    config: conf,
    stop: async () => {
      await execa(process.execPath, [mosnctlJs, '--socket', sock, 'stop'], { reject: false, env, extendEnv: false, timeout: 15_000 });
      await stopProc(p, 'SIGINT');
    },
    kill: () => void p.kill('SIGINT'),
  };
}
