// npm run bench:instructions -- [--shape small|large|upload] [--requests N]
//   [--warmup N] [--connections C] [--root DIR[,DIR...]] [--runs N] [--keep DIR]
//
// Instructions per proxied request in one mosn-ts worker, counted by
// valgrind (callgrind): user space only (JS, V8, Node, libc; not the
// kernel), and the same count for the same build and inputs whatever else
// the machine does. That makes it the number to A/B hot-path changes with on
// a shared 2-core VM, where req/s and CPU time swing by 10-20 % between
// rounds (bench/RESULTS.md). It does not replace bench:compare: syscalls and
// the kernel's share are not in it.
//
// How: a stand-in supervisor binds a listener, forks dist/worker/main.js
// under `valgrind --tool=callgrind --instr-atstart=no`, hands it the config
// and the listening socket over IPC as the real supervisor does, warms it up
// (--warmup requests: V8 optimises the hot path), switches instrumentation
// on with callgrind_control, runs --requests keep-alive requests on
// --connections connections to the backend (bench/lib/backend.ts) through
// the worker, switches it off and reads the total. --root runs the builds of
// several checkouts (each with its own dist/) one after the other; --keep
// saves each callgrind file there (callgrind_annotate shows where the
// instructions go by binary and function; JIT code appears as ???).
// Needs valgrind (apt-get install valgrind); under it a request is ~50x slower.
// Repeated runs of one build agree within 0.5 % mostly, but V8's JIT
// decisions sometimes land a run ~10 % off: --runs N reports the median.
import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import YAML from 'yaml';
import { bindListeningHandle } from '../src/common/node-internals.js';
import { parseConfig } from '../src/config/load.js';
import { workerNodeArgs } from '../src/supervisor/worker-process.js';
import { readOptions } from './lib/args.js';
import { HTTP_SHAPES } from './lib/shapes.js';
import { median } from './lib/stats.js';
import { startBackend } from './lib/targets.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** --shape names (bench:compare's scenarios keepalive, large, upload). */
const SHAPES = { small: HTTP_SHAPES.keepalive, large: HTTP_SHAPES.large, upload: HTTP_SHAPES.upload };
type Shape = keyof typeof SHAPES;

function parse(argv: string[]) {
  const o = { shape: 'small' as Shape, requests: 20_000, warmup: 20_000, connections: 8, roots: [ROOT], keep: undefined as string | undefined, runs: 1 };
  readOptions('instructions', argv, (flag, r) => {
    switch (flag) {
      case '--shape': o.shape = r.choice(Object.keys(SHAPES) as Shape[]); break;
      case '--requests': o.requests = r.whole(); break;
      case '--warmup': o.warmup = r.whole(); break;
      case '--connections': o.connections = r.whole(); break;
      case '--root': o.roots = r.value().split(',').map((d) => path.resolve(d)); break;
      case '--runs': o.runs = r.whole(); break;
      case '--keep': o.keep = path.resolve(r.value()); break;
      default: return false;
    }
    return true;
  });
  return o;
}

/** `n` requests over `agent`'s connections, `c` at a time; rejects on any failure. */
async function drive(port: number, agent: http.Agent, shape: Shape, n: number, c: number): Promise<void> {
  const s = SHAPES[shape];
  const body = s.bodyBytes > 0 ? Buffer.alloc(s.bodyBytes, 'z') : undefined;
  let started = 0;
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = http.request({ port, host: '127.0.0.1', path: s.path, method: s.method, agent, headers: body ? { 'content-length': body.length } : {} }, (res) => {
        if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
        res.resume();
        res.on('end', () => resolve());
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  const lane = async (): Promise<void> => {
    while (started < n) {
      started++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: c }, lane));
}

function waitFor<T>(child: ChildProcess, pred: (m: unknown) => T | undefined, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    const on = (m: unknown): void => {
      const v = pred(m);
      if (v === undefined) return;
      clearTimeout(t);
      child.off('message', on);
      resolve(v);
    };
    child.on('message', on);
    child.once('exit', (code) => reject(new Error(`the worker exited (${code}) while waiting for ${what}`)));
  });
}

async function callgrindControl(pid: number, arg: string): Promise<void> {
  const r = await execa('callgrind_control', [arg, String(pid)], { reject: false });
  const said = `${String(r.stdout)}\n${String(r.stderr)}`;
  if (r.exitCode !== 0 || !/OK\./.test(said)) throw new Error(`callgrind_control ${arg} ${pid}: ${said.trim()}`);
}

async function measure(root: string, o: ReturnType<typeof parse>, backendPort: number): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mosn-instr-'));
  const out = path.join(dir, 'callgrind.out');
  const config = parseConfig(
    YAML.stringify({
      workers: 1,
      control_socket: path.join(dir, 'mosn.sock'),
      log: { level: 'warn', access_log: 'off' },
      listeners: [{ name: 'web', address: '127.0.0.1:0', timeouts: { idle: '300s' }, virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'app' } }] }] }],
      clusters: [{ name: 'app', endpoints: [`127.0.0.1:${backendPort}`] }],
    }),
    'bench:instructions',
  );
  const bound = bindListeningHandle('127.0.0.1', 0);
  const worker = fork(path.join(root, 'dist/worker/main.js'), [], {
    execPath: 'valgrind',
    execArgv: ['--tool=callgrind', '--instr-atstart=no', '--smc-check=all-non-file', `--callgrind-out-file=${out}`, process.execPath, ...workerNodeArgs()],
    serialization: 'json',
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    env: { ...process.env, NODE_OPTIONS: '', MOSN_ROLE: 'worker' },
  });
  let stderr = '';
  worker.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.connections });
  try {
    const ready = waitFor(worker, (m) => ((m as { t?: string }).t === 'ready' ? true : undefined), 120_000, 'the worker to be ready');
    worker.send({ v: 1, t: 'init', generation: 1, workerId: 0, config, listeners: [{ name: 'web', address: bound.address, port: bound.port }] });
    worker.send({ v: 1, t: 'listener', name: 'web' }, bound.handle as never);
    await ready;
    await drive(bound.port, agent, o.shape, o.warmup, o.connections);
    await callgrindControl(worker.pid!, '--instr=on');
    await drive(bound.port, agent, o.shape, o.requests, o.connections);
    await callgrindControl(worker.pid!, '--instr=off');
    await callgrindControl(worker.pid!, '--dump');
    // The dump is written asynchronously by the valgrind process.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const files = fs.readdirSync(dir).filter((f) => f.startsWith('callgrind.out'));
      for (const f of files) {
        const m = /^totals:\s+(\d+)/m.exec(fs.readFileSync(path.join(dir, f), 'utf8'));
        if (m && Number(m[1]) > 0) {
          if (o.keep) {
            fs.mkdirSync(o.keep, { recursive: true });
            const kept = path.join(o.keep, `callgrind.${path.basename(root)}.${Date.now()}.out`);
            fs.copyFileSync(path.join(dir, f), kept);
            process.stdout.write(`kept ${kept} (callgrind_annotate it)\n`);
          }
          return Number(m[1]) / o.requests;
        }
      }
      if (Date.now() > deadline) throw new Error(`no callgrind dump in ${dir} (it holds: ${fs.readdirSync(dir).join(', ')})`);
      await new Promise((r) => setTimeout(r, 500));
    }
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${stderr}`);
  } finally {
    agent.destroy();
    worker.kill('SIGKILL');
    bound.handle.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  if ((await execa('valgrind', ['--version'], { reject: false })).exitCode !== 0) throw new Error('valgrind is needed (apt-get install valgrind)');
  const backend = await startBackend(ROOT, 1);
  try {
    for (const root of o.roots) {
      if (!fs.existsSync(path.join(root, 'dist/worker/main.js'))) throw new Error(`${root}/dist is missing: build it first`);
      const runs: number[] = [];
      for (let i = 0; i < o.runs; i++) runs.push(await measure(root, o, backend.http));
      const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
      const each = o.runs > 1 ? ` (runs: ${runs.map(fmt).join(', ')}; median)` : '';
      process.stdout.write(`${root}: ${o.shape}, ${o.requests} requests after ${o.warmup} warm-up, ${o.connections} connections: ${fmt(median(runs))} instructions per request${each}\n`);
    }
  } finally {
    backend.proc.kill('SIGTERM');
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:instructions: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
