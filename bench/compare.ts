// npm run bench:compare -- [--rounds N] [--duration S] [--connections C[,C...]]
//   [--workers N] [--scenarios a,b] [--targets nginx,haproxy,mosn,direct]
//   [--smoke] [--write] [--out FILE] [--json] [--no-install] [--load auto|wrk|node]
//   [--warmup S] [--pause MS] [--idle N] [--tcp-streams N] [--threads T]
//   [--backend-procs N] [--upgrade-idle N] [--upgrade-sessions N] [--settle S] [--keep]
//
// mosn-ts side by side with nginx and HAProxy on this machine: the same
// backend, the same worker count, the same load tool, every scenario run with
// the targets alternating (A B C D A B C D ..., --rounds rounds), medians and
// ratios to nginx. Installs nginx (+ stream module), HAProxy and wrk with
// apt-get when they are missing (skipping a peer whose install fails), runs
// them as plain processes with their own config in a temp dir, on loopback.
//
// Scenarios (--scenarios, default all):
//   keepalive  HTTP/1.1 keep-alive, small responses: req/s, p50, p99
//   chunked    the same small responses without a length (chunked framing)
//   large      64 KiB responses
//   upload     1 MiB uploads (POST)
//   newconn    a new connection per request (Connection: close)
//   tcp-up     TCP bulk throughput, client -> backend (MB/s)
//   tcp-down   TCP bulk throughput, backend -> client (MB/s)
//   idle       N idle keep-alive connections held: RSS per worker (/proc VmRSS),
//              1 s after the last one opened and the lowest in the --settle S
//              seconds after that (default 30: V8 gives memory back only
//              after a few idle seconds)
//   upgrade    mosn-ts only: bench/upgrade.ts (time for an upgrade with 1,000
//              idle connections, connections migrated per second)
// The backend served directly ("direct") is the ceiling.
//
// Writes bench/RESULTS.md (between markers); --smoke (1 round, 1 s, small
// counts: proves it runs) and runs of some --scenarios or --targets only
// write to a temp file instead, unless --write.
// Not a timed test: run it on a quiet machine, and compare only within a run.
import { type ChildProcess, fork } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { HoldResult, HttpResult, Job, TcpResult } from './lib/agent.js';
import { ensureTools, type Tools } from './lib/install.js';
import { perRequest, procCounters, rssBytes, sleep } from './lib/proc.js';
import { markdown, scenarioText, upgradeText, writeResults, type Metric, type Report, type RunRecord, type ScenarioResult, type UpgradeResult } from './lib/report.js';
import { median, ratio } from './lib/stats.js';
import { HTTP_SCENARIOS, HTTP_SHAPES, type HttpScenario, type HttpShape } from './lib/shapes.js';
import { ALL_TARGETS, cleanEnv, directTarget, startBackend, startHaproxy, startMosn, startNginx, tsxExecArgv, type Backend, type Target, type TargetName } from './lib/targets.js';
import { runWrk } from './lib/wrk.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = path.join(ROOT, 'bench/RESULTS.md');

// ---- options ----------------------------------------------------------------

const TCP_SCENARIOS = ['tcp-up', 'tcp-down'] as const;
const ALL_SCENARIOS = [...HTTP_SCENARIOS, ...TCP_SCENARIOS, 'idle', 'upgrade'] as const;
type ScenarioName = (typeof ALL_SCENARIOS)[number];

interface Options {
  rounds: number;
  durationS: number;
  connections: number[];
  workers: number;
  backendProcs: number;
  scenarios: ScenarioName[];
  targets: TargetName[];
  smoke: boolean;
  write: boolean;
  out: string | undefined;
  json: boolean;
  install: boolean;
  load: 'auto' | 'wrk' | 'node';
  warmupS: number;
  pauseMs: number;
  idle: number;
  tcpStreams: number;
  threads: number;
  upgradeIdle: number;
  upgradeSessions: number;
  settleS: number;
  keep: boolean;
}

function usage(msg: string): never {
  process.stderr.write(`bench:compare: ${msg}\nsee the top of bench/compare.ts for the options\n`);
  process.exit(2);
}

function list<T extends string>(v: string, allowed: readonly T[], aliases: Record<string, T[]> = {}): T[] {
  const out: T[] = [];
  for (const x of v.split(',').map((s) => s.trim()).filter(Boolean)) {
    const xs = aliases[x] ?? [x as T];
    for (const y of xs) {
      if (!allowed.includes(y)) usage(`unknown value "${x}" (one of ${[...allowed, ...Object.keys(aliases)].join(', ')})`);
      if (!out.includes(y)) out.push(y);
    }
  }
  return out;
}

function parseOptions(argv: string[]): Options {
  const smoke = argv.includes('--smoke');
  const cpus = os.availableParallelism();
  const o: Options = {
    rounds: smoke ? 1 : 3,
    durationS: smoke ? 1 : 10,
    connections: smoke ? [16] : [64],
    workers: cpus,
    backendProcs: cpus,
    scenarios: [...ALL_SCENARIOS],
    targets: [...ALL_TARGETS],
    smoke,
    write: false,
    out: undefined,
    json: false,
    install: true,
    load: 'auto',
    warmupS: smoke ? 0 : 2,
    pauseMs: smoke ? 200 : 1000,
    idle: smoke ? 200 : 10_000,
    tcpStreams: smoke ? 2 : 4,
    threads: 2,
    upgradeIdle: smoke ? 100 : 1000,
    upgradeSessions: smoke ? 10 : 100,
    settleS: smoke ? 1 : 30,
    keep: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) usage(`${a} needs a value`);
      return v;
    };
    const num = (min = 1): number => {
      const v = Number(next());
      if (!Number.isFinite(v) || v < min) usage(`${a} needs a number >= ${min}`);
      return v;
    };
    switch (a) {
      case '--rounds': o.rounds = Math.round(num()); break;
      case '--duration': o.durationS = Math.round(num()); break;
      case '--connections': o.connections = next().split(',').map((x) => Math.round(Number(x))).filter((x) => x >= 1); break;
      case '--workers': o.workers = Math.round(num()); break;
      case '--backend-procs': o.backendProcs = Math.round(num()); break;
      case '--scenarios': o.scenarios = list(next(), ALL_SCENARIOS, { http: [...HTTP_SCENARIOS], tcp: [...TCP_SCENARIOS] }); break;
      case '--targets': o.targets = list(next(), ALL_TARGETS); break;
      case '--smoke': break;
      case '--write': o.write = true; break;
      case '--out': o.out = path.resolve(next()); break;
      case '--json': o.json = true; break;
      case '--no-install': o.install = false; break;
      case '--load': {
        const v = next();
        if (v !== 'auto' && v !== 'wrk' && v !== 'node') usage('--load is auto, wrk or node');
        o.load = v;
        break;
      }
      case '--warmup': o.warmupS = num(0); break;
      case '--pause': o.pauseMs = num(0); break;
      case '--idle': o.idle = Math.round(num()); break;
      case '--tcp-streams': o.tcpStreams = Math.round(num()); break;
      case '--threads': o.threads = Math.round(num()); break;
      case '--upgrade-idle': o.upgradeIdle = Math.round(num()); break;
      case '--upgrade-sessions': o.upgradeSessions = Math.round(num()); break;
      case '--settle': o.settleS = num(0); break;
      case '--keep': o.keep = true; break;
      case '-h':
      case '--help':
        process.stdout.write(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\nimport ')[0]!.replace(/^\/\/ ?/gm, '') + '\n');
        process.exit(0);
      default: usage(`unknown option ${a}`);
    }
  }
  if (o.connections.length === 0) usage('--connections needs at least one number');
  if (o.targets.length === 0) usage('--targets needs at least one target');
  return o;
}

// ---- the load agent (a separate process) ---------------------------------------

class Agent {
  #proc: ChildProcess;
  #next = 1;
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  ready: Promise<void>;

  constructor() {
    this.#proc = fork(path.join(ROOT, 'bench/lib/agent.ts'), [], { execArgv: tsxExecArgv(ROOT), env: cleanEnv(), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.ready = new Promise((resolve, reject) => {
      this.#pending.set(0, { resolve: () => resolve(), reject });
    });
    this.#proc.on('message', (m: { id: number; result?: unknown; error?: string }) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.error !== undefined) p.reject(new Error(m.error));
      else p.resolve(m.result);
    });
    this.#proc.on('exit', (code) => {
      for (const p of this.#pending.values()) p.reject(new Error(`the load agent exited (${code})`));
      this.#pending.clear();
    });
  }

  run<T>(job: Job, timeoutMs: number): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const t = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`agent ${job.kind} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (v) => {
          clearTimeout(t);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      this.#proc.send({ id, job });
    });
  }

  stop(): void {
    if (this.#proc.connected) this.#proc.disconnect();
    this.#proc.kill('SIGTERM');
  }
}

// ---- scenarios ----------------------------------------------------------------

const HTTP_METRICS: Metric[] = [
  { key: 'rps', label: 'req/s', digits: 0, better: 'higher' },
  { key: 'p50_ms', label: 'p50 ms', digits: 2, better: 'lower' },
  { key: 'p99_ms', label: 'p99 ms', digits: 2, better: 'lower' },
  { key: 'cpu_us', label: 'CPU µs/req', digits: 1, better: 'lower' },
  { key: 'sys_us', label: 'of it kernel µs/req', digits: 1, better: 'lower' },
  { key: 'errors', label: 'errors', digits: 0 },
  { key: 'backend_conns', label: 'backend conns opened', digits: 0 },
];
const TCP_METRICS: Metric[] = [
  { key: 'mb_per_s', label: 'MB/s', digits: 1, better: 'higher' },
  { key: 'errors', label: 'errors', digits: 0 },
];
const IDLE_METRICS: Metric[] = [
  { key: 'held', label: 'held', digits: 0 },
  { key: 'rss_worker_before_mb', label: 'RSS/worker before MB', digits: 1 },
  { key: 'rss_worker_mb', label: 'RSS/worker held MB', digits: 1, better: 'lower' },
  { key: 'rss_worker_settled_mb', label: 'RSS/worker settled MB', digits: 1, better: 'lower' },
  { key: 'rss_total_mb', label: 'RSS all processes MB', digits: 1, better: 'lower' },
  { key: 'kb_per_conn', label: 'KB per connection', digits: 1, better: 'lower' },
];

interface Ctx {
  o: Options;
  dir: string;
  tools: Tools;
  agent: Agent;
  targets: Target[];
  backend: Backend | undefined;
  loadTool: 'wrk' | 'node';
  log: (m: string) => void;
}

async function httpRun(ctx: Ctx, t: Target, shape: HttpShape, connections: number, durationMs: number): Promise<Record<string, number>> {
  const job = { port: t.http, path: shape.path, method: shape.method, bodyBytes: shape.bodyBytes, close: shape.close, connections, durationMs };
  const before = await ctx.backend!.stats();
  // The target's CPU time per request (all its processes): on a machine the
  // load tool and the backend share, what the proxy costs shows here first.
  const pids = await t.allPids();
  const cpuBefore = procCounters(pids);
  const r: HttpResult =
    ctx.loadTool === 'wrk'
      ? await runWrk(ctx.tools.wrk!, ctx.dir, { ...job, threads: ctx.o.threads })
      : await ctx.agent.run<HttpResult>({ kind: 'http', ...job }, durationMs + 60_000);
  if (!(r.requests > 0)) throw new Error(`no request completed (${r.errors} socket errors)`);
  const used = perRequest(cpuBefore, procCounters(pids), r.requests);
  const after = await ctx.backend!.stats();
  return { rps: r.rps, p50_ms: r.p50_ms, p99_ms: r.p99_ms, cpu_us: used.cpuUs, sys_us: used.sysUs, errors: r.errors + r.non2xx, requests: r.requests, backend_conns: after.http - before.http };
}

async function tcpRun(ctx: Ctx, t: Target, direction: 'up' | 'down', durationMs: number): Promise<Record<string, number>> {
  const r = await ctx.agent.run<TcpResult>({ kind: 'tcp', port: t.tcp!, direction, streams: ctx.o.tcpStreams, durationMs }, durationMs + 60_000);
  if (!(r.bytes > 0)) throw new Error(`no bytes went through (${r.errors} stream errors)`);
  return { mb_per_s: r.mb_per_s, errors: r.errors, bytes: r.bytes };
}

async function rss(pids: number[]): Promise<number> {
  return pids.reduce((a, p) => a + rssBytes(p), 0);
}

async function idleRun(ctx: Ctx, t: Target): Promise<Record<string, number>> {
  const MB = 1024 * 1024;
  const workers = await t.workerPids();
  const before = await rss(workers);
  let h: HoldResult | undefined;
  try {
    h = await ctx.agent.run<HoldResult>({ kind: 'hold', port: t.http, count: ctx.o.idle, batch: 200 }, 180_000);
    await sleep(ctx.o.smoke ? 300 : 1000);
    const pids = await t.workerPids();
    const held = await rss(pids);
    const total = await rss(await t.allPids());
    if (h.held < ctx.o.idle) ctx.log(`  ${t.name}: only ${h.held} of ${ctx.o.idle} connections held (${h.failed} failed)`);
    // The same connections, left alone: the lowest RSS seen in --settle seconds.
    let settled = held;
    for (const until = Date.now() + ctx.o.settleS * 1000; Date.now() < until; ) {
      await sleep(Math.min(1000, Math.max(0, until - Date.now())));
      settled = Math.min(settled, await rss(pids));
    }
    return {
      held: h.held,
      failed: h.failed,
      rss_worker_before_mb: before / t.workers / MB,
      rss_worker_mb: held / t.workers / MB,
      rss_worker_settled_mb: settled / t.workers / MB,
      rss_total_mb: total / MB,
      kb_per_conn: h.held > 0 ? (held - before) / h.held / 1024 : NaN,
      open_s: h.seconds,
    };
  } finally {
    await ctx.agent.run({ kind: 'release' }, 60_000).catch(() => undefined);
  }
}

function summarise(s: ScenarioResult): void {
  for (const t of s.targets) {
    const runs = s.rounds.filter((r) => r.target === t && !r.error);
    const med: Record<string, number> = {};
    for (const m of s.metrics) med[m.key] = median(runs.map((r) => r.values[m.key] ?? NaN));
    s.median[t] = med;
  }
  const base = s.median['nginx'];
  for (const t of s.targets) {
    const rat: Record<string, number> = {};
    for (const m of s.metrics) if (m.better) rat[m.key] = ratio(s.median[t]?.[m.key], base?.[m.key]);
    s.ratio_to_nginx[t] = rat;
  }
}

async function runScenario(
  ctx: Ctx,
  name: string,
  title: string,
  load: string,
  metrics: Metric[],
  eligible: Target[],
  once: (t: Target, durationMs: number) => Promise<Record<string, number>>,
  warm: boolean,
): Promise<ScenarioResult> {
  const { o, log } = ctx;
  const s: ScenarioResult = { name, title, load, metrics, targets: eligible.map((t) => t.name), median: {}, ratio_to_nginx: {}, rounds: [], notes: [] };
  log(`-- ${title} (${load})`);
  if (warm && o.warmupS > 0) {
    for (const t of eligible) {
      if (!t.alive()) continue;
      await once(t, o.warmupS * 1000).catch((err: unknown) => log(`  warm-up ${t.name}: ${(err as Error).message}`));
      await sleep(o.pauseMs);
    }
  }
  for (let round = 1; round <= o.rounds; round++) {
    for (const t of eligible) {
      const rec: RunRecord = { round, target: t.name, values: {} };
      if (!t.alive()) rec.error = 'the target is not running';
      else {
        try {
          rec.values = await once(t, o.durationS * 1000);
        } catch (err) {
          rec.error = (err as Error).message.split('\n')[0]!;
        }
      }
      s.rounds.push(rec);
      log(`  round ${round}/${o.rounds} ${t.name.padEnd(7)} ${rec.error ? `ERROR ${rec.error}` : metrics.map((m) => `${m.label} ${Number.isFinite(rec.values[m.key]) ? rec.values[m.key]!.toFixed(m.digits) : '–'}`).join(', ')}`);
      await sleep(o.pauseMs);
    }
  }
  summarise(s);
  return s;
}

async function runUpgrade(ctx: Ctx): Promise<UpgradeResult> {
  const { o } = ctx;
  const res: UpgradeResult = { idle_http: o.upgradeIdle, l4_sessions: o.upgradeSessions, workers: 2, median: { duration_ms: NaN, old_exited_ms: NaN, migration_per_s: NaN }, rounds: [] };
  ctx.log(`-- Upgrade speed: bench/upgrade.ts --idle ${o.upgradeIdle} --sessions ${o.upgradeSessions} --rounds ${o.rounds}`);
  const r = await execa(
    process.execPath,
    [path.join(ROOT, 'node_modules/tsx/dist/cli.mjs'), path.join(ROOT, 'bench/upgrade.ts'), '--idle', String(o.upgradeIdle), '--sessions', String(o.upgradeSessions), '--rounds', String(o.rounds), '--json'],
    { reject: false, env: cleanEnv(), extendEnv: false, timeout: 300_000 },
  );
  try {
    const out = JSON.parse(String(r.stdout).trim().split('\n').pop() ?? '') as { median: UpgradeResult['median']; rounds: Record<string, unknown>[] };
    res.median = out.median;
    res.rounds = out.rounds;
  } catch {
    res.error = `bench/upgrade.ts exited ${r.exitCode}: ${String(r.stderr).trim().split('\n').slice(-3).join(' | ')}`;
  }
  if (!o.json) process.stdout.write(`\n${upgradeText(res)}\n\n`);
  return res;
}

// ---- machine and versions ---------------------------------------------------------

async function machine(): Promise<Report['machine']> {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const nproc = Number(String((await execa('nproc', [], { reject: false })).stdout).trim()) || os.availableParallelism();
  return {
    nproc,
    cpu: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? '?',
    ram_gib: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: os.release(),
    loadavg_start: os.loadavg(),
    loadavg_end: [],
  };
}

async function mosnVersion(): Promise<string> {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  const rev = await execa('git', ['-C', ROOT, 'rev-parse', '--short', 'HEAD'], { reject: false });
  const dirty = await execa('git', ['-C', ROOT, 'status', '--porcelain', '--', 'src'], { reject: false });
  const r = String(rev.stdout).trim();
  return `${pkg.version}${r ? ` (${r}${String(dirty.stdout).trim() ? ', src/ modified' : ''})` : ''}`;
}

// ---- main ---------------------------------------------------------------------------

const RESULTS_HEADER = `# Benchmarks

\`npm run bench:compare\` writes the block below (see bench/compare.ts).
`;

async function main(): Promise<number> {
  const o = parseOptions(process.argv.slice(2));
  const log = (m: string): void => void process.stderr.write(`${m}\n`);
  const peerScenarios = o.scenarios.some((s) => s !== 'upgrade');
  const wantHttp = o.scenarios.some((s) => (HTTP_SCENARIOS as readonly string[]).includes(s));
  const tools = await ensureTools(
    {
      nginx: o.targets.includes('nginx') && peerScenarios,
      nginxStream: o.scenarios.some((s) => (TCP_SCENARIOS as readonly string[]).includes(s)),
      haproxy: o.targets.includes('haproxy') && peerScenarios,
      wrk: wantHttp && o.load !== 'node',
    },
    o.install,
    log,
  );
  let loadTool: 'wrk' | 'node' = 'node';
  if (wantHttp && o.load !== 'node') {
    if (tools.wrk) loadTool = 'wrk';
    else if (o.load === 'wrk') usage('wrk is not installed (and could not be installed)');
    else {
      tools.warnings.push('wrk is not installed: HTTP load comes from the Node client (bench/lib/agent.ts) instead');
      log(`WARNING: ${tools.warnings.at(-1)}`);
    }
  }
  const mach = await machine();
  const versions: Record<string, string> = { node: process.version, 'mosn-ts': await mosnVersion(), ...tools.versions };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mosn-bench-cmp-'));
  const skipped: Report['skipped'] = {};
  const targets: Target[] = [];
  let backend: Backend | undefined;
  const agent = new Agent();
  const cleanup = (): void => {
    for (const t of targets) t.kill();
    backend?.proc.kill('SIGTERM');
    agent.stop();
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    log(`bench:compare: ${sig}, stopping`);
    cleanup();
    process.exit(130);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const ctx: Ctx = { o, dir, tools, agent, targets, backend: undefined, loadTool, log };
  const scenarios: ScenarioResult[] = [];
  let upgrade: UpgradeResult | null = null;
  try {
    await agent.ready;
    if (peerScenarios) {
      backend = await startBackend(ROOT, o.backendProcs);
      ctx.backend = backend;
      log(`backend: HTTP 127.0.0.1:${backend.http}, TCP 127.0.0.1:${backend.tcp}, ${backend.pids.length} processes`);
      const peer = { dir, workers: o.workers, backend, maxConnections: o.scenarios.includes('idle') ? o.idle : 0, httpConnections: Math.max(...o.connections) };
      for (const name of o.targets) {
        try {
          if (name === 'nginx') {
            if (!tools.nginx) skipped.nginx = 'not installed';
            else targets.push(await startNginx(tools.nginx, tools.versions['nginx'] ?? '0', tools.nginxStream, peer));
          } else if (name === 'haproxy') {
            if (!tools.haproxy) skipped.haproxy = 'not installed';
            else targets.push(await startHaproxy(tools.haproxy, peer));
          } else if (name === 'mosn') targets.push(await startMosn(ROOT, peer));
          else targets.push(directTarget(backend));
          if (targets.at(-1)?.name === name) log(`${name}: HTTP 127.0.0.1:${targets.at(-1)!.http}${targets.at(-1)!.tcp ? `, TCP 127.0.0.1:${targets.at(-1)!.tcp}` : ''}`);
        } catch (err) {
          skipped[name] = (err as Error).message.split('\n')[0]!;
          tools.warnings.push(`${name} did not start: ${(err as Error).message}`);
          log(`WARNING: ${name} did not start, skipping it: ${(err as Error).message}`);
        }
      }
    }
    const wrkLoad = (c: number, shape: HttpShape): string =>
      loadTool === 'wrk'
        ? `wrk -t${Math.min(o.threads, c)} -c${c} -d${o.durationS}s --latency${shape.method === 'POST' || shape.close ? ' -s (Lua: ' + [shape.method === 'POST' ? `POST ${shape.bodyBytes / 1024 / 1024} MiB body` : '', shape.close ? 'Connection: close' : ''].filter(Boolean).join(', ') + ')' : ''} ${shape.path}`
        : `Node client, ${c} connections, ${o.durationS} s, ${shape.method} ${shape.path}${shape.close ? ', Connection: close' : ''}`;
    const done = (s: ScenarioResult): void => {
      scenarios.push(s);
      if (!o.json) process.stdout.write(`\n${scenarioText(s)}\n\n`);
    };
    for (const sc of o.scenarios) {
      if (sc === 'upgrade') continue;
      if ((HTTP_SCENARIOS as readonly string[]).includes(sc)) {
        const shape = HTTP_SHAPES[sc as HttpScenario];
        for (const c of o.connections) {
          const title = o.connections.length > 1 ? `${shape.title}, ${c} connections` : shape.title;
          const s = await runScenario(ctx, o.connections.length > 1 ? `${sc}@${c}` : sc, title, wrkLoad(c, shape), HTTP_METRICS, targets, (t, ms) => httpRun(ctx, t, shape, c, ms), true);
          s.notes.push('backend conns opened: connections the backend accepted during the run (upstream reuse; for direct, the client\'s own connections).');
          s.notes.push('CPU µs/req: user+system CPU time of all the target\'s processes (master/supervisor included) during the run ÷ requests; for direct, the backend\'s own. "of it kernel": the system part (syscalls, with loopback TCP delivery inside them).');
          done(s);
        }
      } else if (sc === 'tcp-up' || sc === 'tcp-down') {
        const dirn = sc === 'tcp-up' ? 'up' : 'down';
        const eligible = targets.filter((t) => t.tcp !== undefined);
        const s = await runScenario(
          ctx,
          sc,
          `TCP bulk throughput, ${dirn === 'up' ? 'client → backend' : 'backend → client'}`,
          `Node client, ${o.tcpStreams} streams, ${o.durationS} s, 256 KiB writes`,
          TCP_METRICS,
          eligible,
          (t, ms) => tcpRun(ctx, t, dirn, ms),
          true,
        );
        for (const t of targets) if (t.tcp === undefined) s.notes.push(`${t.name}: no TCP proxy (stream module missing)`);
        done(s);
      } else if (sc === 'idle') {
        const s = await runScenario(ctx, 'idle', `${o.idle.toLocaleString('en-US')} idle keep-alive connections held`, `${o.idle} connections, one GET each, then idle; VmRSS from /proc`, IDLE_METRICS, targets, (t) => idleRun(ctx, t), false);
        s.notes.push(`RSS/worker = sum of the worker processes' VmRSS ÷ workers, 1 s after the last connection opened ("held") and the lowest in the ${o.settleS} s after that ("settled", same connections, nothing else running); KB per connection = (held − before) ÷ connections held.`);
        for (const t of targets) s.notes.push(`${t.name}: ${t.workerNote}`);
        done(s);
      }
    }
    if (o.scenarios.includes('upgrade') && o.targets.includes('mosn')) upgrade = await runUpgrade(ctx);
  } finally {
    for (const t of targets) await t.stop().catch(() => t.kill());
    backend?.proc.kill('SIGTERM');
    agent.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  mach.loadavg_end = os.loadavg();

  // Every target that started has a median for every summary metric.
  const ok =
    (targets.length > 0 || !peerScenarios) &&
    scenarios.every((s) => s.targets.every((t) => s.metrics.filter((m) => m.better).every((m) => Number.isFinite(s.median[t]?.[m.key])))) &&
    (upgrade === null || !upgrade.error);
  const report: Report = {
    ok,
    smoke: o.smoke,
    date: new Date().toISOString(),
    machine: mach,
    versions,
    options: {
      rounds: o.rounds,
      duration_s: o.durationS,
      connections: o.connections.join(','),
      workers: o.workers,
      backend_procs: o.backendProcs,
      warmup_s: o.warmupS,
      pause_ms: o.pauseMs,
      idle: o.idle,
      settle_s: o.settleS,
      tcp_streams: o.tcpStreams,
      wrk_threads: o.threads,
      scenarios: o.scenarios.join(','),
    },
    load_tool: loadTool === 'wrk' ? `wrk ${tools.versions['wrk'] ?? ''} (HTTP), Node client bench/lib/agent.ts (TCP, idle connections)` : 'Node client bench/lib/agent.ts (HTTP, TCP, idle connections)',
    targets: targets.map((t) => t.name),
    worker_notes: Object.fromEntries(targets.map((t) => [t.name, t.workerNote])),
    skipped,
    warnings: tools.warnings,
    scenarios,
    upgrade,
    configs: Object.fromEntries(targets.filter((t) => t.config).map((t) => [t.name, t.config!])),
  };
  // Only a full run replaces the committed results: a smoke run, or one of
  // some scenarios or targets only, goes to a temp file unless --write.
  const partial = o.scenarios.length < ALL_SCENARIOS.length || o.targets.length < ALL_TARGETS.length;
  const tempName = o.smoke ? 'mosn-bench-compare-smoke-RESULTS.md' : 'mosn-bench-compare-partial-RESULTS.md';
  const toTemp = (o.smoke || partial) && !o.write && !o.out;
  const file = o.out ?? (toTemp ? path.join(os.tmpdir(), tempName) : RESULTS);
  if (toTemp) fs.rmSync(file, { force: true });
  writeResults(file, markdown(report), RESULTS_HEADER);
  report.results_file = file;
  if (!o.keep) fs.rmSync(dir, { recursive: true, force: true });
  else log(`kept ${dir}`);
  if (o.json) process.stdout.write(JSON.stringify(report) + '\n');
  else process.stdout.write(`${ok ? 'done' : 'done, with missing results (see above)'}; wrote ${file}\n`);
  return ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench:compare: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(2);
  },
);
