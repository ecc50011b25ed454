// npm run bench:upgrade -- [--kind reload|upgrade] [--idle N] [--sessions N] [--rounds N] [--json]
//
// Upgrade speed with many live connections: N idle HTTP keep-alive
// connections and M idle L4 sessions are held open while `mosnctl upgrade`
// runs; reports how long the upgrade took until the old generation exited,
// and the migration rate. Every connection is checked afterwards (same TCP
// connection still answers). Not a timed test: numbers go to bench/RESULTS.md.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import YAML from 'yaml';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const opt = (name: string, def: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const IDLE = opt('--idle', 1000);
const SESSIONS = opt('--sessions', 100);
const ROUNDS = opt('--rounds', 3);
const JSON_OUT = args.includes('--json');
/** reload: new worker generation; upgrade: full supervisor handover (one more relay hop). */
const KIND = args.includes('--kind') ? args[args.indexOf('--kind') + 1]! : 'upgrade';
if (KIND !== 'reload' && KIND !== 'upgrade') throw new Error('--kind is reload or upgrade');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

class HttpConn {
  readonly sock: net.Socket;
  #buf = '';
  #waiting: ((ok: boolean) => void) | undefined;
  closed = false;
  constructor(port: number) {
    this.sock = net.connect({ host: '127.0.0.1', port });
    this.sock.setEncoding('latin1');
    this.sock.on('data', (d: string) => {
      this.#buf += d;
      if (this.#waiting && /\r\n\r\n[\s\S]*ok$/.test(this.#buf)) {
        const w = this.#waiting;
        this.#waiting = undefined;
        this.#buf = '';
        w(true);
      }
    });
    this.sock.on('close', () => {
      this.closed = true;
      this.#waiting?.(false);
    });
    this.sock.on('error', () => undefined);
  }
  request(): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.closed) return resolve(false);
      this.#waiting = resolve;
      this.sock.write('GET / HTTP/1.1\r\nhost: bench\r\n\r\n');
    });
  }
}

class L4Conn {
  readonly sock: net.Socket;
  #waiting: ((ok: boolean) => void) | undefined;
  #want = '';
  #got = '';
  closed = false;
  constructor(port: number) {
    this.sock = net.connect({ host: '127.0.0.1', port });
    this.sock.setEncoding('latin1');
    this.sock.on('data', (d: string) => {
      this.#got += d;
      if (this.#waiting && this.#got === this.#want) {
        const w = this.#waiting;
        this.#waiting = undefined;
        this.#got = '';
        w(true);
      }
    });
    this.sock.on('close', () => {
      this.closed = true;
      this.#waiting?.(false);
    });
    this.sock.on('error', () => undefined);
  }
  ping(n: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.closed) return resolve(false);
      this.#want = `ping ${n}\n`;
      this.#waiting = resolve;
      this.sock.write(this.#want);
    });
  }
}

async function inBatches<T>(items: T[], size: number, fn: (x: T) => Promise<boolean>): Promise<number> {
  let ok = 0;
  for (let i = 0; i < items.length; i += size) {
    const r = await Promise.all(items.slice(i, i + size).map(fn));
    ok += r.filter(Boolean).length;
  }
  return ok;
}

async function main(): Promise<void> {
  const echo = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => undefined);
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mosn-bench-up-'));
  const sockPath = path.join(dir, 'mosn.sock');
  const cfg = {
    workers: 2,
    control_socket: sockPath,
    admin: { address: '127.0.0.1:0' },
    upgrade: { ready_timeout: '10s', drain_timeout: '30s' },
    log: { level: 'warn', access_log: 'off' },
    listeners: [
      { name: 'web', address: '127.0.0.1:0', virtual_hosts: [{ name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, direct_response: { status: 200, body: 'ok' } }] }] },
      { name: 'l4', address: '127.0.0.1:0', protocol: 'tcp', cluster: 'echo' },
    ],
    clusters: [{ name: 'echo', endpoints: [`127.0.0.1:${(echo.address() as net.AddressInfo).port}`] }],
  };
  fs.writeFileSync(path.join(dir, 'mosn.yaml'), YAML.stringify(cfg));
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  // MOSN_BENCH_CPU_PROF=DIR profiles every mosn process (supervisor and workers).
  const prof = process.env['MOSN_BENCH_CPU_PROF'];
  const profArgs = prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [];
  if (prof) env['MOSN_WORKER_NODE_ARGS'] = profArgs.join(' ');
  const mosn = execa(process.execPath, [...profArgs, path.join(ROOT, 'dist/cli/mosn.js'), 'start', '-c', path.join(dir, 'mosn.yaml')], { reject: false, env, extendEnv: false, stdio: ['ignore', 'ignore', 'pipe'] });
  const ctl = async (...a: string[]): Promise<Record<string, unknown>> => {
    const r = await execa(process.execPath, [path.join(ROOT, 'dist/cli/mosnctl.js'), '--socket', sockPath, ...a, '--json'], { reject: false, env, extendEnv: false });
    if (r.exitCode !== 0) throw new Error(`mosnctl ${a.join(' ')}: ${String(r.stderr)}`);
    return JSON.parse(String(r.stdout)) as Record<string, unknown>;
  };
  let status: { phase?: string; listeners?: { name: string; port: number }[] } = {};
  for (let i = 0; status.phase !== 'running'; i++) {
    if (i > 200) throw new Error('mosn did not start');
    await sleep(100);
    status = (await ctl('status').catch(() => ({})));
  }
  const port = (n: string): number => status.listeners!.find((l) => l.name === n)!.port;
  const https = Array.from({ length: IDLE }, () => new HttpConn(port('web')));
  const l4s = Array.from({ length: SESSIONS }, () => new L4Conn(port('l4')));
  const warm = (await inBatches(https, 200, (c) => c.request())) + (await inBatches(l4s, 100, (c) => c.ping(0)));
  if (warm !== IDLE + SESSIONS) throw new Error(`only ${warm} of ${IDLE + SESSIONS} connections came up`);
  const rounds: Record<string, unknown>[] = [];
  for (let r = 1; r <= ROUNDS; r++) {
    await sleep(500);
    const res = await ctl(KIND);
    const t = res['timings'] as { ready: number; handed_over: number; old_exited: number | null };
    const migrated = Number(res['migrated']);
    const okHttp = await inBatches(https, 200, (c) => c.request());
    const okL4 = await inBatches(l4s, 100, (c) => c.ping(r));
    const window = (t.old_exited ?? t.handed_over) - t.ready;
    rounds.push({
      round: r,
      duration_ms: res['duration_ms'],
      ready_ms: t.ready,
      handed_over_ms: t.handed_over,
      old_exited_ms: t.old_exited,
      migrated,
      migration_per_s: Math.round(migrated / (window / 1000)),
      still_working: { http: okHttp, l4: okL4 },
    });
    if (!JSON_OUT) process.stderr.write(`round ${r}: ${JSON.stringify(rounds.at(-1))}\n`);
  }
  const med = (k: string): number => {
    const xs = rounds.map((r) => Number(r[k])).sort((a, b) => a - b);
    return xs[Math.floor(xs.length / 2)]!;
  };
  const summary = {
    machine: `${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.cpus()[0]?.model ?? '?'}`,
    node: process.version,
    kind: KIND,
    idle_http: IDLE,
    l4_sessions: SESSIONS,
    median: { duration_ms: med('duration_ms'), old_exited_ms: med('old_exited_ms'), migration_per_s: med('migration_per_s') },
    rounds,
  };
  process.stdout.write(JSON.stringify(summary, null, JSON_OUT ? 0 : 2) + '\n');
  for (const c of https) c.sock.destroy();
  for (const c of l4s) c.sock.destroy();
  await ctl('stop').catch(() => undefined);
  await mosn;
  echo.close();
  fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:upgrade: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
