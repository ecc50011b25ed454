// npm run bench:ceiling -- [--rounds N] [--duration S] [--connections C] [--workers N]
//   [--minimal raw|rawc|jsup|jsall|srv ...]
//
// How far mosn-ts is from the ceiling of a Node proxy: nginx,
// scripts/minimal-proxy.cjs (by default `raw`: both sides on Node's native
// llhttp, no routing, metrics, timeouts, logs, error handling or migration;
// --minimal, repeatable, picks its modes, described in that file) and mosn-ts,
// alternating (A B C A B C ...), small keep-alive responses through the same
// backend (bench/lib/backend.ts) with wrk; medians of req/s and of CPU µs per
// request (all of a target's processes, from /proc). Prints a table; writes
// nothing. Run it on a quiet machine, after `npm run build`.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { readOptions } from './lib/args.js';
import { which } from './lib/install.js';
import { childPids, freePort, perRequest, procCounters, sleep, waitForPort } from './lib/proc.js';
import { median } from './lib/stats.js';
import { cleanEnv, startBackend, startMosn, startNginx, type Target } from './lib/targets.js';
import { runWrk } from './lib/wrk.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function parse(argv: string[]) {
  const o = { rounds: 3, durationS: 10, connections: 64, workers: os.cpus().length, minimal: [] as MinimalMode[] };
  readOptions('ceiling', argv, (flag, r) => {
    switch (flag) {
      case '--rounds': o.rounds = r.whole(); break;
      case '--duration': o.durationS = r.whole(); break;
      case '--connections': o.connections = r.whole(); break;
      case '--workers': o.workers = r.whole(); break;
      case '--minimal': o.minimal.push(r.choice(MINIMAL_MODES)); break;
      default: return false;
    }
    return true;
  });
  if (o.minimal.length === 0) o.minimal.push('raw');
  return o;
}

const MINIMAL_MODES = ['raw', 'rawc', 'jsup', 'jsall', 'srv'] as const;
type MinimalMode = (typeof MINIMAL_MODES)[number];

interface Runner {
  name: string;
  port: number;
  pids(): Promise<number[]>;
  stop(): Promise<void>;
}

function fromTarget(name: string, t: Target): Runner {
  return { name, port: t.http, pids: () => t.allPids(), stop: () => t.stop() };
}

async function startMinimal(mode: MinimalMode, backendPort: number, workers: number): Promise<Runner> {
  const port = await freePort();
  const p = execa(process.execPath, [path.join(ROOT, 'scripts/minimal-proxy.cjs'), mode, String(port), String(backendPort), String(workers)], {
    reject: false,
    env: cleanEnv(),
    extendEnv: false,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await waitForPort(port, 15_000, () => p.exitCode === null);
  return {
    name: `minimal ${mode}`,
    port,
    pids: async () => [p.pid!, ...childPids(p.pid!)],
    stop: async () => {
      p.kill('SIGKILL');
      await p;
    },
  };
}

async function main(): Promise<void> {
  const o = parse(process.argv.slice(2));
  const wrk = await which('wrk');
  const nginx = await which('nginx');
  if (!wrk || !nginx) throw new Error('wrk and nginx are needed (npm run bench:compare installs them)');
  const nginxVersion = /nginx\/(\S+)/.exec(String((await execa(nginx, ['-v'], { reject: false })).stderr))?.[1] ?? '0';
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mosn-bench-ceiling-'));
  const backend = await startBackend(ROOT, o.workers);
  const peer = { dir, workers: o.workers, backend, maxConnections: 1000, httpConnections: o.connections };
  const runners: Runner[] = [];
  try {
    runners.push(fromTarget('nginx', await startNginx(nginx, nginxVersion, undefined, peer)));
    for (const m of o.minimal) runners.push(await startMinimal(m, backend.http, o.workers));
    runners.push(fromTarget('mosn', await startMosn(ROOT, peer)));
    const job = { port: 0, path: '/', method: 'GET' as const, bodyBytes: 0, close: false, connections: o.connections, threads: 2 };
    for (const r of runners) await runWrk(wrk, dir, { ...job, port: r.port, durationMs: 2000 }); // warm-up
    const rows = new Map<string, { rps: number[]; cpu: number[] }>(runners.map((r) => [r.name, { rps: [], cpu: [] }]));
    for (let round = 1; round <= o.rounds; round++) {
      for (const r of runners) {
        const pids = await r.pids();
        const before = procCounters(pids);
        const res = await runWrk(wrk, dir, { ...job, port: r.port, durationMs: o.durationS * 1000 });
        const cpu = perRequest(before, procCounters(pids), res.requests).cpuUs;
        rows.get(r.name)!.rps.push(res.rps);
        rows.get(r.name)!.cpu.push(cpu);
        process.stderr.write(`round ${round}/${o.rounds} ${r.name.padEnd(12)} req/s ${Math.round(res.rps)}, CPU µs/req ${cpu.toFixed(1)}, errors ${res.errors + res.non2xx}\n`);
        await sleep(1000);
      }
    }
    const base = median(rows.get('nginx')!.rps);
    process.stdout.write(`\n| proxy | req/s | vs nginx | CPU µs/req |\n|---|---:|---:|---:|\n`);
    for (const [name, v] of rows) {
      const rps = median(v.rps);
      process.stdout.write(`| ${name} | ${Math.round(rps).toLocaleString('en-US')} | ${(rps / base).toFixed(2)}x | ${median(v.cpu).toFixed(1)} |\n`);
    }
    process.stdout.write(`\n${o.workers} workers each, wrk -t2 -c${o.connections}, ${o.rounds} rounds of ${o.durationS} s, medians; ${os.cpus().length} CPUs, node ${process.version}, nginx ${nginxVersion}\n`);
  } finally {
    for (const r of runners) await r.stop().catch(() => undefined);
    backend.proc.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:ceiling: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
